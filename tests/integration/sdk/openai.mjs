// The official OpenAI SDK through the gateway (or straight at the mock).
// args: base_url (e.g. http://127.0.0.1:GW/openai/v1), token (sent as the API key),
//       op: chat | chat_stream | responses | responses_stream | embeddings,
//       model, prompt, stream_options (passed as given), abort_after (stream: abort
//       after N chunks), headers, task, agent, timeout_ms, input (embeddings).
import OpenAI from 'openai';
import { args, main } from './common.mjs';

const a = args();
const client = new OpenAI({
  apiKey: a.token,
  baseURL: a.base_url,
  maxRetries: 0,
  timeout: a.timeout_ms,
  defaultHeaders: a.headers,
  organization: null,
  project: null,
});
const messages = [{ role: 'user', content: a.prompt }];

main(async () => {
  switch (a.op) {
    case 'chat': {
      const r = await client.chat.completions.create({ model: a.model, messages, ...(a.extra ?? {}) });
      return { text: r.choices[0].message.content, usage: r.usage, id: r.id, model: r.model,
               finish_reason: r.choices[0].finish_reason };
    }
    case 'chat_stream': {
      const body = { model: a.model, messages, stream: true, ...(a.extra ?? {}) };
      if (a.stream_options !== undefined) body.stream_options = a.stream_options;
      const stream = await client.chat.completions.create(body);
      let text = '', chunks = 0, usage = null, usageChunks = 0, finish = null, nullUsage = 0;
      for await (const c of stream) {
        chunks++;
        if (c.choices.length === 0 && c.usage) usageChunks++;
        if (c.usage) usage = c.usage;
        if (c.usage === null) nullUsage++;
        for (const ch of c.choices) {
          text += ch.delta?.content ?? '';
          if (ch.finish_reason) finish = ch.finish_reason;
        }
        if (c.x_groq?.usage) usage = c.x_groq.usage;
        if (a.abort_after && chunks >= a.abort_after) {
          stream.controller.abort();
          return { text, chunks, aborted: true };
        }
      }
      return { text, chunks, usage, usage_chunks: usageChunks, null_usage_chunks: nullUsage,
               finish_reason: finish };
    }
    case 'responses': {
      const r = await client.responses.create({ model: a.model, input: a.prompt });
      return { text: r.output_text, usage: r.usage, status: r.status };
    }
    case 'responses_stream': {
      const stream = await client.responses.create({ model: a.model, input: a.prompt, stream: true });
      let text = '', usage = null, events = [];
      for await (const ev of stream) {
        events.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') usage = ev.response.usage;
      }
      return { text, usage, events };
    }
    case 'embeddings': {
      const r = await client.embeddings.create({ model: a.model, input: a.input ?? a.prompt,
                                                  ...(a.extra ?? {}) });
      return { count: r.data.length, dims: r.data[0].embedding.length,
               first: Array.from(r.data[0].embedding).slice(0, 3), usage: r.usage };
    }
    default:
      throw new Error(`unknown op ${a.op}`);
  }
});
