// The official Google GenAI SDK (@google/genai) through the gateway (or at the mock).
// args: base_url (e.g. http://127.0.0.1:GW/gemini: the SDK adds /v1beta/models/...),
//       token (sent as x-goog-api-key), op: generate | generate_stream,
//       model, prompt, api_version, headers, task, agent, timeout_ms.
import { GoogleGenAI } from '@google/genai';
import { args, main } from './common.mjs';

const a = args();
const ai = new GoogleGenAI({
  apiKey: a.token,
  vertexai: false,
  httpOptions: {
    baseUrl: a.base_url,
    ...(a.api_version ? { apiVersion: a.api_version } : {}),
    headers: a.headers,
    timeout: a.timeout_ms,
    retryOptions: { attempts: 1 },
  },
});

main(async () => {
  switch (a.op) {
    case 'generate': {
      const r = await ai.models.generateContent({ model: a.model, contents: a.prompt });
      return { text: r.text, usage: r.usageMetadata ?? null,
               finish_reason: r.candidates?.[0]?.finishReason ?? null };
    }
    case 'generate_stream': {
      const stream = await ai.models.generateContentStream({ model: a.model, contents: a.prompt });
      let text = '', usage = null, chunks = 0, finish = null;
      for await (const c of stream) {
        chunks++;
        text += c.text ?? '';
        if (c.usageMetadata) usage = c.usageMetadata;
        if (c.candidates?.[0]?.finishReason) finish = c.candidates[0].finishReason;
      }
      return { text, usage, chunks, finish_reason: finish };
    }
    default:
      throw new Error(`unknown op ${a.op}`);
  }
});
