// Request facts as every caller codec builds them: the codec reads its own fields (output
// limit, choices, stream, tools); the input estimate is the same rule for every format.
import { CHARS_PER_TOKEN } from '../routing/estimate.ts';
import type { RequestFacts } from './codec.ts';

/** What a caller codec read from its body; everything but the input estimate. */
export type ReadFacts = Omit<RequestFacts, 'inputTokens'>;

/**
 * The facts with the input estimate (characters / CHARS_PER_TOKEN of the body's JSON).
 * Serialising a long prompt costs real time, and only budgets, tpm limits and the
 * "cheapest" order read the estimate: it is computed on first use, once.
 */
export function withInputEstimate<F extends Omit<ReadFacts, 'stream' | 'tools'> & Partial<ReadFacts>>(
  body: unknown,
  read: F,
): F & { readonly inputTokens: number } {
  let inputTokens: number | undefined;
  const facts = {
    get inputTokens(): number {
      inputTokens ??= Math.ceil(safeJson(body).length / CHARS_PER_TOKEN);
      return inputTokens;
    },
  };
  // Object.assign keeps the getter (a spread would call it).
  return Object.assign(facts, read);
}

/** A positive integer, or undefined (nonsense limits are ignored, not trusted). */
export function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

function safeJson(body: unknown): string {
  try {
    return JSON.stringify(body) ?? '';
  } catch {
    return '';
  }
}
