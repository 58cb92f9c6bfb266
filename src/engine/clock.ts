import { setTimeout as delay } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

/** Time as the engine sees it; tests can substitute their own. */
export interface Clock {
  /** Monotonic milliseconds, for deadlines. */
  now(): number;
  /** Wall-clock epoch milliseconds, for HTTP dates (Retry-After). */
  epochMs(): number;
  /** Resolves after ms, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, { signal });
  },
};
