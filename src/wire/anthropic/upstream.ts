// The Anthropic Messages wire format (api: anthropic): POST ${baseURL}/messages with
// x-api-key and anthropic-version. Anthropic callers are passed through; everyone else's
// request is translated from the canonical format, and the answers back into it.
import { isJsonObject, parseJson, type JsonObject } from '../../core/json.ts';
import type { Target } from '../../core/types.ts';
import { canonicalOf } from '../canonical.ts';
import type { CallerRequest, Decoded, PreparedRequest, StreamDecoder, UpstreamCodec } from '../codec.ts';
import { capOutputTokens } from '../openai-chat/output-cap.ts';
import { ANTHROPIC_VERSION, AnthropicStreamToChat, anthropicErrorToOpenAI, anthropicResponseToChat, chatRequestToAnthropic } from './translate.ts';

export const anthropicUpstream: UpstreamCodec = {
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    const passthrough = call.format === 'anthropic';
    let body: JsonObject;
    let dropped: string[] = [];
    if (passthrough) {
      body = { ...call.body, model: step.model };
    } else {
      const chat = canonicalOf(call);
      const translated = chatRequestToAnthropic({ ...chat.value, model: step.model });
      body = translated.value;
      if (call.stream) body['stream'] = true;
      dropped = [...chat.dropped, ...translated.dropped];
    }
    const headers: Record<string, string> = {
      'anthropic-version': ANTHROPIC_VERSION,
      ...(passthrough ? call.passHeaders : {}),
      ...step.provider.headers,
      'content-type': 'application/json',
      accept: call.stream ? 'text/event-stream' : 'application/json',
    };
    if (step.provider.apiKey) headers['x-api-key'] = step.provider.apiKey;
    return { url: `${step.provider.baseURL}/messages`, headers, body: JSON.stringify(body), dropped, passthrough };
  },
  toCanonical: (body, step) => anthropicResponseToChat(body, step.model),
  streamFraming: 'sse',
  streamDecoder: (step) => new AnthropicStreamDecoder(step.model),
  errorToCanonical: (_status, body) => anthropicErrorToOpenAI(body),
  // max_tokens, required by the Messages API, is lowered to the cap.
  capOutput: (body, cap) => capOutputTokens(body, cap, { endpoint: 'chat' }),
  secretHeaders: ['x-api-key'],
  prefillByDefault: true,
};

class AnthropicStreamDecoder implements StreamDecoder {
  readonly #translator: AnthropicStreamToChat;

  constructor(model: string) {
    this.#translator = new AnthropicStreamToChat(model);
  }

  /** True at message_stop. */
  get finished(): boolean {
    return this.#translator.finished;
  }

  decode(message: { event?: string | undefined; data: string }): Decoded {
    const data = parseJson(message.data);
    if (!isJsonObject(data)) return { kind: 'malformed' };
    const chunks = this.#translator.push(message.event ?? '', data);
    return { kind: 'piece', piece: { chunks, raw: { ...(message.event ? { event: message.event } : {}), data: message.data } } };
  }
}
