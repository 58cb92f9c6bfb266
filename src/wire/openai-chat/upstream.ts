// The OpenAI Chat Completions wire format as an upstream (OpenAI, DeepSeek, GLM, Kimi, Qwen,
// Mistral, vLLM…): how to address it and read its answers. Its answers are the canonical
// format already; OpenAI callers' bodies are replayed as sent (model substituted).
import { isJsonObject, parseJson, type JsonObject } from '../../core/json.ts';
import type { Target, Usage } from '../../core/types.ts';
import { canonicalOf } from '../canonical.ts';
import type { CallerRequest, Decoded, PreparedRequest, StreamDecoder, UpstreamCodec } from '../codec.ts';
import { capOutputTokens } from './output-cap.ts';
import type { OpenAIErrorBody } from './types.ts';

export type Endpoint = 'chat' | 'completions' | 'embeddings';

export const ENDPOINT_PATHS: Record<Endpoint, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
};

export interface BuiltRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The caller's body, replayed with the step's model and the provider's key (never the caller's). */
export function buildOpenAIRequest(endpoint: Endpoint, callerBody: JsonObject, step: Target, stream: boolean): BuiltRequest {
  const body: JsonObject = { ...callerBody, model: step.model };
  if (stream) {
    // Always ask for usage so cost is known; the extra chunk is stripped again if the caller did not ask.
    const given = typeof callerBody['stream_options'] === 'object' && callerBody['stream_options'] !== null ? callerBody['stream_options'] : {};
    body['stream_options'] = { ...given, include_usage: true };
  }
  const headers: Record<string, string> = {
    ...step.provider.headers,
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
  };
  if (step.provider.apiKey) headers['authorization'] = `Bearer ${step.provider.apiKey}`;
  return { url: `${step.provider.baseURL}${ENDPOINT_PATHS[endpoint]}`, headers, body: JSON.stringify(body) };
}

export function usageFromOpenAI(body: JsonObject): Usage | undefined {
  const usage = body['usage'];
  if (typeof usage !== 'object' || usage === null) return undefined;
  const u = usage as JsonObject;
  const details = (typeof u['prompt_tokens_details'] === 'object' && u['prompt_tokens_details'] !== null ? u['prompt_tokens_details'] : {}) as JsonObject;
  return {
    inputTokens: numberOr0(u['prompt_tokens']),
    outputTokens: numberOr0(u['completion_tokens']),
    cachedInputTokens: numberOr0(details['cached_tokens']),
  };
}

/** finish_reason of every choice (chat and text completions alike). */
export function finishReasons(body: JsonObject): unknown[] {
  const choices = body['choices'];
  if (!Array.isArray(choices)) return [];
  return choices.map((c: unknown) => (typeof c === 'object' && c !== null ? (c as JsonObject)['finish_reason'] : undefined));
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

// ---------------------------------------------------------------------------------------
// The adapter

/** The OpenAI endpoint an operation of an OpenAI caller maps to ('messages', 'responses'… of other callers: chat). */
export function endpointOf(operation: string): Endpoint {
  return operation === 'completions' || operation === 'embeddings' ? operation : 'chat';
}

/** OpenAI-format upstreams: the caller's body replayed for OpenAI callers, the canonical request otherwise. */
export const openAIUpstream: UpstreamCodec = {
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    if (call.format === 'openai') {
      return { ...buildOpenAIRequest(endpointOf(call.operation), call.body, step, call.stream), dropped: [], passthrough: true };
    }
    const chat = canonicalOf(call);
    return { ...buildOpenAIRequest('chat', chat.value, step, call.stream), dropped: chat.dropped, passthrough: false };
  },
  // The canonical format is OpenAI's own (completions and embeddings answers included: they are only ever passed through).
  toCanonical: (body) => body,
  streamFraming: 'sse',
  streamDecoder: () => new OpenAIStreamDecoder(),
  errorToCanonical: openAIErrorBody,
  capOutput: (body, cap, context) => capOutputTokens(body, cap, { endpoint: endpointOf(context.operation), provider: { baseURL: context.baseURL } }),
  secretHeaders: ['authorization'],
  prefillByDefault: false,
};

class OpenAIStreamDecoder implements StreamDecoder {
  #finished = false;

  get finished(): boolean {
    return this.#finished;
  }

  decode(message: { event?: string | undefined; data: string }): Decoded {
    if (message.data === '[DONE]') return { kind: 'done' };
    const chunk = parseJson(message.data);
    if (!isJsonObject(chunk)) return { kind: 'malformed' };
    if (finishReasons(chunk).some((r) => typeof r === 'string')) this.#finished = true;
    return { kind: 'piece', piece: { chunks: [chunk], raw: { data: message.data } } };
  }
}

/** Any error body an OpenAI-compatible upstream (or a gateway in front of it) may send -> OpenAI's shape. */
export function openAIErrorBody(status: number, body: unknown): OpenAIErrorBody {
  const inner: unknown = Array.isArray(body) && body.length === 1 ? body[0] : body;
  const error = isJsonObject(inner) && isJsonObject(inner['error']) ? inner['error'] : undefined;
  const fallbackType = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  if (!error) {
    const message = typeof inner === 'string' && inner.trim() !== '' ? inner.trim().slice(0, 1000) : `upstream error (HTTP ${status})`;
    return { error: { message, type: fallbackType, param: null, code: null } };
  }
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null);
  return {
    error: {
      ...error,
      message: text(error['message']) ?? `upstream error (HTTP ${status})`,
      type: text(error['type']) ?? text(error['status']) ?? fallbackType,
      param: text(error['param']),
      code: text(error['code']),
    },
  };
}
