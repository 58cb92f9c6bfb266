import type { Backoff } from './types.ts';

/**
 * Delay before retry number `retry` (1 = first retry) of one step: exponential
 * ceiling base·2^(retry-1), capped at maxMs; "full" jitter picks uniformly below the
 * ceiling so that many clients retrying together spread out (AWS "Exponential
 * Backoff and Jitter").
 */
export function backoffDelay(retry: number, backoff: BackoffShape, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry - 1));
  if (backoff.jitter === 'full') return Math.floor(random() * ceiling);
  // "Equal" jitter never goes below half the ceiling: for reconnect loops, where a
  // near-zero wait would hammer a server that is just coming back.
  if (backoff.jitter === 'equal') return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  return ceiling;
}

/** Backoff as configured for retries, or with equal jitter for reconnect loops. */
export type BackoffShape = Omit<Backoff, 'jitter'> & { jitter: Backoff['jitter'] | 'equal' };
