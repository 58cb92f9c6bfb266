// Decisions taken just before a target is called: does it fit the budget, and is it time to
// hedge (start the next target in parallel because the current one is silent)? Pure.
import { usd, worstCaseCost, type RequestFacts, type WorstCase } from './estimate.ts';
import type { Target } from '../core/types.ts';

/**
 * Why a target does not fit the request's budget, or undefined when it does. `committedUSD` is
 * what the request has already spent plus the worst case of the attempts still in flight
 * (a hedge must fit next to the attempt it races). An unpriced target always fits.
 */
export function overBudget(worst: WorstCase, maxCostUSD: number | undefined, committedUSD: number): string | undefined {
  if (maxCostUSD === undefined || worst.kind === 'unpriced') return undefined;
  const left = maxCostUSD - committedUSD;
  const of =
    committedUSD > 0
      ? ` the ${usd(Math.max(0, left))} left of budget.maxCostPerRequestUSD ${usd(maxCostUSD)}`
      : ` budget.maxCostPerRequestUSD ${usd(maxCostUSD)}`;
  if (worst.kind === 'unbounded')
    return `over budget: output is not bounded (no max_tokens in the request, no maxOutputTokens on the step), so the worst case exceeds${of}`;
  if (worst.usd <= left + 1e-12) return undefined;
  return `over budget: worst case ${usd(worst.usd)} (~${worst.inputTokens} input + ${worst.outputTokens} output tokens) exceeds${of}`;
}

/** Whether the request can be served at all within its budget: some target fits an untouched budget. */
export function anyAffordable(steps: readonly Target[], facts: RequestFacts, maxCostUSD: number | undefined): boolean {
  return maxCostUSD === undefined || steps.some((s) => overBudget(worstCaseCost(s, facts), maxCostUSD, 0) === undefined);
}

export interface HedgeFacts {
  /** policy.hedge.afterMs; 0 disables hedging. */
  afterMs: number;
  /** policy.hedge.maxInFlight: hedges allowed next to the attempt they hedge. */
  maxInFlight: number;
  /** Attempts in flight now (the hedged one included). */
  inFlight: number;
  /** Time since the latest attempt started. */
  sinceLastStartMs: number;
  /** Time left before the chain deadline. */
  remainingMs: number;
  /** Whether any target is left to hedge with. */
  candidates: boolean;
}

export type HedgeDecision = { kind: 'now' } | { kind: 'wait'; ms: number } | { kind: 'no' };

/**
 * Hedge now, wait until it is time, or not at all (disabled, nothing in flight, as many hedges
 * in flight as allowed, no target left, or the deadline comes first).
 */
export function hedgeDecision(f: HedgeFacts): HedgeDecision {
  if (f.afterMs <= 0 || f.inFlight === 0 || f.inFlight > f.maxInFlight || !f.candidates || f.remainingMs <= 0) return { kind: 'no' };
  const wait = f.afterMs - f.sinceLastStartMs;
  if (wait >= f.remainingMs) return { kind: 'no' };
  return wait <= 0 ? { kind: 'now' } : { kind: 'wait', ms: wait };
}
