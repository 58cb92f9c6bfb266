// Google's Gemini API (api: gemini): POST ${baseURL}/models/<model>:generateContent, or
// :streamGenerateContent?alt=sse for streams, with x-goog-api-key. No caller speaks
// Gemini's format, so every request is translated from the canonical one.
import type { Step } from '../../core/types.ts';
import { GeminiStreamToChat, chatRequestToGemini, geminiErrorToOpenAI, geminiResponseToChat } from './translate.ts';
import { canonicalOf, parseEventData, type CallerRequest, type Decoded, type PreparedRequest, type StreamDecoder, type WireAdapter } from '../../upstream/wire.ts';

export const geminiAdapter: WireAdapter = {
  api: 'gemini',
  prepare(call: CallerRequest, step: Step): PreparedRequest {
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
  streamDecoder: (step) => new GeminiStreamDecoder(step.model),
  errorToOpenAI: geminiErrorToOpenAI,
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
    const data = parseEventData(message.data);
    if (typeof data !== 'object' || data === null) return { kind: 'malformed' };
    return { kind: 'piece', piece: { chunks: this.#translator.push(data), raw: { data: message.data } } };
  }
}
