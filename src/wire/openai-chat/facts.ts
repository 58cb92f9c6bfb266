// The routing facts of an OpenAI request (chat, completions, embeddings): its output limit
// (max_completion_tokens, else max_tokens), its n, whether it produces output at all.
import { isJsonObject } from '../../core/json.ts';
import type { RequestFacts as RoutingFacts } from '../../routing/estimate.ts';
import type { RequestFacts } from '../codec.ts';
import { positiveInt, withInputEstimate } from '../facts.ts';

/** What budgets, limits and the order read, from an OpenAI body for an operation. */
export function requestFacts(body: unknown, operation?: string): RoutingFacts {
  const record = isJsonObject(body) ? body : {};
  const requested = positiveInt(record['max_completion_tokens']) ?? positiveInt(record['max_tokens']);
  return withInputEstimate(body, {
    ...(requested === undefined ? {} : { requestedMaxOutput: requested }),
    choices: positiveInt(record['n']) ?? 1,
    producesOutput: operation !== 'embeddings',
  });
}

/** All the facts of an OpenAI body: the routing facts, whether it streams and declares tools. */
export function openAIFacts(body: unknown, operation: string): RequestFacts {
  const record = isJsonObject(body) ? body : {};
  const tools = Array.isArray(record['tools']) && record['tools'].length > 0;
  return Object.assign(requestFacts(body, operation), { stream: record['stream'] === true, tools });
}
