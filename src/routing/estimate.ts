// What a request may cost before it is sent: its input tokens (estimated), the most output
// it may produce (bounded by the caller's max_tokens and the step's cap), and from those the
// worst-case cost of sending it to a target. Budgets, token buckets and the cheapest-first
// order all start from here.
import { costOf } from '../core/cost.ts';
import type { Price, Target } from '../core/types.ts';

/**
 * Input tokens are estimated as characters / 4 of the request body's JSON (the usual rule of
 * thumb for English text with BPE tokenizers). The JSON's quotes, keys and the request's
 * other fields make it an over-estimate for short prompts, which is the safe side for a
 * budget; it under-estimates CJK text, which a chain with budgets on such traffic should
 * cover with a larger margin.
 */
export const CHARS_PER_TOKEN = 4;

/** Output assumed for ordering by price when neither the request nor the step bounds it. */
export const NOMINAL_OUTPUT_TOKENS = 1000;

/**
 * What routing knows about a request. The caller codec computes it (src/wire/facts.ts);
 * routing never reads a wire field.
 */
export interface RequestFacts {
  /** Estimated input tokens. */
  readonly inputTokens: number;
  /** The request's own output limit (max_tokens, max_output_tokens…), if it set one. */
  requestedMaxOutput?: number;
  /** Number of choices asked for (n); each may be as long as the limit. */
  choices: number;
  /** Embeddings produce no output tokens. */
  producesOutput: boolean;
}

/** The most output tokens a target may produce for the request, or undefined when nothing bounds it. */
export function outputBound(step: Pick<Target, 'maxOutputTokens'>, facts: RequestFacts): number | undefined {
  if (!facts.producesOutput) return 0;
  const caps = [facts.requestedMaxOutput, step.maxOutputTokens].filter((v): v is number => v !== undefined);
  if (caps.length === 0) return undefined;
  return Math.min(...caps) * facts.choices;
}

export type WorstCase = { kind: 'unpriced' } | { kind: 'unbounded' } | { kind: 'bounded'; usd: number; inputTokens: number; outputTokens: number };

/**
 * The most the request can cost on a target: estimated input at the full (uncached) rate plus
 * the output bound at the output rate. Unbounded when output is not bounded and costs money;
 * unpriced when no price is known (such a target is never refused for its cost).
 */
export function worstCaseCost(step: Pick<Target, 'maxOutputTokens' | 'price'>, facts: RequestFacts): WorstCase {
  const price: Price | undefined = step.price;
  if (!price) return { kind: 'unpriced' };
  const outputTokens = outputBound(step, facts);
  if (outputTokens === undefined && price.outputPerMTok > 0) return { kind: 'unbounded' };
  const out = outputTokens ?? 0;
  const usd = costOf({ inputTokens: facts.inputTokens, outputTokens: out, cachedInputTokens: 0 }, price);
  return { kind: 'bounded', usd, inputTokens: facts.inputTokens, outputTokens: out };
}

/** A cost to sort by (cheapest first): the bounded worst case, or nominal output when unbounded; undefined when unpriced. */
export function orderingCost(step: Pick<Target, 'maxOutputTokens' | 'price'>, facts: RequestFacts): number | undefined {
  if (!step.price) return undefined;
  const out = outputBound(step, facts) ?? NOMINAL_OUTPUT_TOKENS * facts.choices;
  return costOf({ inputTokens: facts.inputTokens, outputTokens: out, cachedInputTokens: 0 }, step.price);
}

/** Tokens a request takes from a target's tokens-per-minute bucket: input estimate plus the output bound (or nothing when unbounded). */
export function tokensForLimits(step: Pick<Target, 'maxOutputTokens'>, facts: RequestFacts): number {
  return facts.inputTokens + (outputBound(step, facts) ?? 0);
}

/** "$0.0123" with enough digits to tell small amounts apart. */
export function usd(value: number): string {
  if (!Number.isFinite(value)) return 'unbounded';
  if (value === 0) return '$0';
  return `$${value >= 0.01 ? value.toFixed(4) : value.toPrecision(2)}`;
}
