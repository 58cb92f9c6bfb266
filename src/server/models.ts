// GET /v1/models and /v1/models/{id}: the chains are the models this proxy serves, so SDK
// calls and UIs that list models work without a default upstream. OpenAI's list shape, or
// Anthropic's when the request carries `anthropic-version` (what Anthropic's SDKs send).
import type { ConfigSnapshot } from '../chain/store.ts';
import type { JsonObject } from '../core/json.ts';

export const OWNED_BY = 'llm-fallback';

export type ModelsReply = { status: number; body: JsonObject };

/** The chains as a model list, sorted by name. `anthropic`: the caller is an Anthropic client. */
export function listModels(snapshot: ConfigSnapshot, anthropic: boolean): ModelsReply {
  const names = [...snapshot.chains.keys()].sort();
  if (!anthropic) return { status: 200, body: { object: 'list', data: names.map((id) => openAIModel(id, snapshot)) } };
  return {
    status: 200,
    body: { data: names.map((id) => anthropicModel(id, snapshot)), has_more: false, first_id: names[0] ?? null, last_id: names[names.length - 1] ?? null },
  };
}

/** One chain as a model; a 404 in the caller's shape naming the known chains when there is none. */
export function retrieveModel(snapshot: ConfigSnapshot, id: string, anthropic: boolean): ModelsReply {
  if (snapshot.chains.has(id)) return { status: 200, body: anthropic ? anthropicModel(id, snapshot) : openAIModel(id, snapshot) };
  const known = [...snapshot.chains.keys()].sort().join(', ') || '(none)';
  const message = `The model \`${id}\` does not exist: no fallback chain serves it. Known chains: ${known}`;
  return anthropic
    ? { status: 404, body: { type: 'error', error: { type: 'not_found_error', message } } }
    : { status: 404, body: { error: { message, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } } };
}

/** `created`: when the configuration holding the chain was loaded (a chain has no other date). */
function openAIModel(id: string, snapshot: ConfigSnapshot): JsonObject {
  return { id, object: 'model', created: Math.floor(snapshot.loadedAt.getTime() / 1000), owned_by: OWNED_BY };
}

function anthropicModel(id: string, snapshot: ConfigSnapshot): JsonObject {
  return { type: 'model', id, display_name: id, created_at: snapshot.loadedAt.toISOString() };
}
