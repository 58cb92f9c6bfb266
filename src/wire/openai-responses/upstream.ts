// The upstream codec: `api: openai-responses`, POST ${baseURL}/responses with
// `Authorization: Bearer <key>`. A Responses caller's body is passed through (store forced
// to false: the sidecar keeps nothing and asks the provider to keep nothing either); every
// other caller's request is translated from the canonical one, and the answers back into it.
import type { Target } from '../../core/types.ts';
import type { CallerRequest, CanonicalError, Decoded, PreparedRequest, StreamDecoder, UpstreamCodec } from '../codec.ts';
import type { JsonObject } from '../openai-chat/types.ts';
import { isRecord } from '../translation-helpers.ts';
import { responsesResponseToChat } from './answer.ts';
import { chatRequestToResponses } from './request.ts';
import { ResponsesStreamToChat } from './stream-in.ts';

export const responsesUpstream: UpstreamCodec = {
  prepare(request: CallerRequest, step: Target): PreparedRequest {
    const passthrough = request.format === 'openai-responses';
    let body: JsonObject;
    let dropped: string[] = [];
    if (passthrough) {
      body = { ...request.body, model: step.model, store: false };
    } else {
      if (request.canonical instanceof Error) throw request.canonical;
      const translated = chatRequestToResponses({ ...request.canonical.value, model: step.model, ...(request.stream ? { stream: true } : {}) });
      body = translated.value;
      dropped = [...request.canonical.dropped, ...translated.dropped];
    }
    const headers: Record<string, string> = {
      ...step.provider.headers,
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
    };
    if (step.provider.apiKey) headers['authorization'] = `Bearer ${step.provider.apiKey}`;
    return { url: `${step.provider.baseURL}/responses`, headers, body: JSON.stringify(body), dropped, passthrough };
  },
  toCanonical: (body, step) => responsesResponseToChat(body, step.model),
  streamFraming: 'sse',
  streamDecoder: (step) => new ResponsesStreamDecoder(step.model),
  errorToCanonical: responsesErrorToCanonical,
  capOutput: (body, cap) => {
    const given = body['max_output_tokens'];
    return { ...body, max_output_tokens: typeof given === 'number' && given > 0 ? Math.min(given, cap) : cap };
  },
  secretHeaders: ['authorization'],
  prefillByDefault: false,
};

class ResponsesStreamDecoder implements StreamDecoder {
  readonly #translator: ResponsesStreamToChat;

  constructor(model: string) {
    this.#translator = new ResponsesStreamToChat(model);
  }

  get finished(): boolean {
    return this.#translator.finished;
  }

  decode(message: { event?: string | undefined; data: string }): Decoded {
    let event: unknown;
    try {
      event = JSON.parse(message.data);
    } catch {
      return { kind: 'malformed' };
    }
    if (!isRecord(event)) return { kind: 'malformed' };
    const chunks = this.#translator.push(event);
    return { kind: 'piece', piece: { chunks, raw: { ...(message.event ? { event: message.event } : {}), data: message.data } } };
  }
}

/** The Responses API's errors are OpenAI's shape; a gateway's text or odd body is made into it. */
export function responsesErrorToCanonical(status: number, body: unknown): CanonicalError {
  const error = isRecord(body) && isRecord(body['error']) ? body['error'] : undefined;
  const fallbackType = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  if (!error) {
    const message = typeof body === 'string' && body.trim() !== '' ? body.trim().slice(0, 1000) : `upstream error (HTTP ${status})`;
    return { error: { message, type: fallbackType, param: null, code: null } };
  }
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  return {
    error: {
      ...error,
      message: text(error['message']) ?? `upstream error (HTTP ${status})`,
      type: text(error['type']) ?? fallbackType,
      param: text(error['param']),
      code: text(error['code']),
    },
  };
}
