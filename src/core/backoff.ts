import type { Backoff } from './types.ts';

/**
 * Delay before retry number `retry` (1 = first retry) of one step: exponential
 * ceiling base·2^(retry-1), capped at maxMs; "full" jitter picks uniformly below the
 * ceiling so that many clients retrying together spread out (AWS "Exponential
 * Backoff and Jitter").
 */
export function backoffDelay(retry: number, backoff: Backoff, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry - 1));
  return backoff.jitter === 'full' ? Math.floor(random() * ceiling) : ceiling;
}
