// Google's Gemini API (api: gemini): POST ${baseURL}/models/<model>:generateContent, or
// :streamGenerateContent?alt=sse for streams, with x-goog-api-key. No caller speaks
// Gemini's format, so every request is translated from the canonical one.
import { parseJson } from '../../core/json.ts';
import type { Target } from '../../core/types.ts';
import { canonicalOf } from '../canonical.ts';
import type { CallerRequest, Decoded, PreparedRequest, StreamDecoder, UpstreamCodec } from '../codec.ts';
import { GeminiStreamToChat, chatRequestToGemini, geminiErrorToOpenAI, geminiResponseToChat } from './translate.ts';

export const geminiUpstream: UpstreamCodec = {
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    const chat = canonicalOf(call);
    const translated = chatRequestToGemini({ ...chat.value, model: step.model }, call.stream);
    const headers: Record<string, string> = {
      ...step.provider.headers,
      'content-type': 'application/json',
      accept: call.stream ? 'text/event-stream' : 'application/json',
    };
    if (step.provider.apiKey) headers['x-goog-api-key'] = step.provider.apiKey;
    return {
      url: `${step.provider.baseURL}${translated.value.path}`,
      headers,
      body: JSON.stringify(translated.value.body),
      dropped: [...chat.dropped, ...translated.dropped],
      passthrough: false,
    };
  },
  toCanonical: (body, step) => geminiResponseToChat(body, step.model),
  streamFraming: 'sse',
  streamDecoder: (step) => new GeminiStreamDecoder(step.model),
  errorToCanonical: geminiErrorToOpenAI,
  // No caller speaks Gemini: its bodies are always built from the (already capped) canonical request.
  capOutput: (body) => body,
  secretHeaders: ['x-goog-api-key'],
  prefillByDefault: false,
};

class GeminiStreamDecoder implements StreamDecoder {
  readonly #translator: GeminiStreamToChat;

  constructor(model: string) {
    this.#translator = new GeminiStreamToChat(model);
  }

  /** Gemini sends no [DONE]: true once a finishReason (or a blocked prompt) was seen. */
  get finished(): boolean {
    return this.#translator.finished;
  }

  decode(message: { event?: string | undefined; data: string }): Decoded {
    const data = parseJson(message.data);
    if (typeof data !== 'object' || data === null) return { kind: 'malformed' };
    return { kind: 'piece', piece: { chunks: this.#translator.push(data), raw: { data: message.data } } };
  }
}
