// The OpenAI wire format (OpenAI, DeepSeek, GLM, Kimi, Qwen, Mistral, vLLM…):
// how to address an upstream and read its answers.
import type { Step, Usage } from '../core/types.ts';

export type Endpoint = 'chat' | 'completions' | 'embeddings';

export const ENDPOINT_PATHS: Record<Endpoint, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
};

export type JsonObject = Record<string, unknown>;

export interface BuiltRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The caller's body, replayed with the step's model and the provider's key (never the caller's). */
export function buildOpenAIRequest(endpoint: Endpoint, callerBody: JsonObject, step: Step, stream: boolean): BuiltRequest {
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

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
