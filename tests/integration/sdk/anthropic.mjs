// The official Anthropic SDK through the gateway (or straight at the mock).
// args: base_url (e.g. http://127.0.0.1:GW/anthropic), token (sent as x-api-key),
//       op: messages | messages_stream | stream_helper | count_tokens,
//       model, prompt, max_tokens, abort_after, headers, task, agent, timeout_ms.
import Anthropic from '@anthropic-ai/sdk';
import { args, main } from './common.mjs';

const a = args();
const client = new Anthropic({
  apiKey: a.token,
  baseURL: a.base_url,
  maxRetries: 0,
  timeout: a.timeout_ms,
  defaultHeaders: a.headers,
});
const messages = [{ role: 'user', content: a.prompt }];
const max_tokens = a.max_tokens ?? 256;

main(async () => {
  switch (a.op) {
    case 'messages': {
      const r = await client.messages.create({ model: a.model, max_tokens, messages });
      return { text: r.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
               usage: r.usage, stop_reason: r.stop_reason };
    }
    case 'messages_stream': {
      const stream = await client.messages.create({ model: a.model, max_tokens, messages, stream: true });
      let text = '', usage = {}, events = [];
      for await (const ev of stream) {
        events.push(ev.type);
        if (ev.type === 'message_start') usage = { ...ev.message.usage };
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
        if (ev.type === 'message_delta' && ev.usage) {
          for (const [k, v] of Object.entries(ev.usage)) if (v !== null && v !== undefined) usage[k] = v;
        }
        if (a.abort_after && events.length >= a.abort_after) {
          stream.controller.abort();
          return { text, events, aborted: true };
        }
      }
      return { text, usage, events };
    }
    case 'stream_helper': {
      const stream = client.messages.stream({ model: a.model, max_tokens, messages });
      const m = await stream.finalMessage();
      return { text: m.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
               usage: m.usage, stop_reason: m.stop_reason };
    }
    case 'count_tokens': {
      const r = await client.messages.countTokens({ model: a.model, messages });
      return { input_tokens: r.input_tokens };
    }
    default:
      throw new Error(`unknown op ${a.op}`);
  }
});
