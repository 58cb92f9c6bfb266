import type { Price, Usage } from './types.ts';

const PER_MILLION = 1_000_000;

/**
 * USD cost of one attempt's usage. Cached input tokens are part of the input count
 * (as OpenAI reports them) and are billed at the cached rate when one is set.
 */
export function costOf(usage: Usage, price: Price | undefined): number {
  if (!price) return 0;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const cachedRate = price.cachedInputPerMTok ?? price.inputPerMTok;
  const input = (usage.inputTokens - cached) * price.inputPerMTok + cached * cachedRate;
  return (input + usage.outputTokens * price.outputPerMTok) / PER_MILLION;
}

/** Costs are summed in float; round for headers and logs to a stable, exact-looking number. */
export function roundUSD(value: number): number {
  return Math.round(value * 1e10) / 1e10;
}

export const NO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 });

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
  };
}
