// A Clock whose time only moves when a test lets it: sleeps are timers on a queue, and
// runUntil() fires them in time order (draining promise callbacks between timers) until the
// promise under test settles. Concurrent attempts, hedge timers and backoff sleeps all meet on
// the same timeline, so "no first byte after 200ms" is exact and costs no real time.
import type { Clock } from '../../src/engine/clock.ts';

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

export const FAKE_START = 1_000;
export const FAKE_EPOCH = 1_770_000_000_000;

export class FakeClock implements Clock {
  #t = FAKE_START;
  #seq = 0;
  readonly #timers: Timer[] = [];
  /** Every sleep asked for, in order (ms). */
  readonly sleeps: number[] = [];

  now(): number {
    return this.#t;
  }

  epochMs(): number {
    return FAKE_EPOCH + this.#t;
  }

  /** Moves time forward without firing anything (an attempt that "took" this long). */
  advance(ms: number): void {
    this.#t += ms;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return this.after(ms, signal);
  }

  /** A timer like sleep() that is not recorded in `sleeps` (for fakes of work that takes time, e.g. an upstream). */
  after(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the abort reason, as node:timers/promises rejects
        reject(signal.reason);
        return;
      }
      const timer: Timer = {
        at: this.#t + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#timers.indexOf(timer);
        if (i >= 0) this.#timers.splice(i, 1);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the abort reason, as node:timers/promises rejects
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Timers still waiting (a test can assert nothing was left behind). */
  get pending(): number {
    return this.#timers.length;
  }

  /** Fires timers in time order until `promise` settles; fails if it can never settle. */
  async runUntil<T>(promise: Promise<T>, limit = 10_000): Promise<T> {
    let settled = false;
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let i = 0; i < limit; i++) {
      await drain();
      if (settled) return promise;
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers.shift();
      if (!next) throw new Error('the promise is waiting, but no timer is left to fire');
      this.#t = Math.max(this.#t, next.at);
      next.resolve();
    }
    throw new Error(`still not settled after ${limit} timers`);
  }
}

/** Lets every queued promise callback run. */
async function drain(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}
