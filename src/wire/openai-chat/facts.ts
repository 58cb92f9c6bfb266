// The routing facts of an OpenAI request (chat, completions, embeddings): its output limit
// (max_completion_tokens, else max_tokens), its n, whether it produces output at all.
import { isJsonObject, type JsonObject } from '../../core/json.ts';
import type { RequestFacts as RoutingFacts } from '../../routing/estimate.ts';
import type { RequestFacts } from '../codec.ts';
import { positiveInt, withInputEstimate } from '../facts.ts';

/** What budgets, limits and the order read, from an OpenAI body for an operation. */
export function requestFacts(body: unknown, operation?: string): RoutingFacts {
  return withInputEstimate(body, readFacts(isJsonObject(body) ? body : {}, operation));
}

/** All the facts of an OpenAI body: the routing facts, whether it streams and declares tools. */
export function openAIFacts(body: unknown, operation: string): RequestFacts {
  const record = isJsonObject(body) ? body : {};
  const tools = Array.isArray(record['tools']) && record['tools'].length > 0;
  return withInputEstimate(body, { ...readFacts(record, operation), stream: record['stream'] === true, tools });
}

function readFacts(record: JsonObject, operation: string | undefined): { requestedMaxOutput?: number; choices: number; producesOutput: boolean } {
  const requested = positiveInt(record['max_completion_tokens']) ?? positiveInt(record['max_tokens']);
  const read: { requestedMaxOutput?: number; choices: number; producesOutput: boolean } = {
    choices: positiveInt(record['n']) ?? 1,
    producesOutput: operation !== 'embeddings',
  };
  if (requested !== undefined) read.requestedMaxOutput = requested;
  return read;
}
