// The lifetime of one attempt: one AbortController that fires when the attempt's
// total time is up, when the chain deadline passes, or when the caller goes away.
// Aborting it closes the upstream connection.
import { timeOutAfterArrivedIo } from '../core/late-timers.ts';

export type AbortCause = 'timeout' | 'client';

export class AttemptScope {
  readonly controller = new AbortController();
  readonly endsAt: number;
  #cause: AbortCause | undefined;
  #disposed = false;
  readonly #timer: NodeJS.Timeout;
  readonly #clientSignal: AbortSignal;
  readonly #onClientAbort = (): void => this.#abort('client');
  readonly #now: () => number;

  constructor(now: () => number, endsAt: number, clientSignal: AbortSignal) {
    this.#now = now;
    this.endsAt = endsAt;
    this.#clientSignal = clientSignal;
    this.#timer = timeOutAfterArrivedIo(AttemptScope.#expire, Math.max(0, endsAt - now()), this);
    if (clientSignal.aborted) this.#abort('client');
    else clientSignal.addEventListener('abort', this.#onClientAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the attempt was aborted, if it was. */
  get cause(): AbortCause | undefined {
    return this.#cause;
  }

  remainingMs(): number {
    return Math.max(0, this.endsAt - this.#now());
  }

  /** Give up on the attempt now, e.g. a first-byte or idle timeout noticed by a reader. */
  timeOut(): void {
    this.#abort('timeout');
  }

  /** The attempt is over: stop the timer and the listener; the connection stays reusable if it finished. */
  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    this.#clientSignal.removeEventListener('abort', this.#onClientAbort);
  }

  /** The total time is up, and an answer that arrived by then has had its turn to be read (late-timers.ts). */
  static #expire(scope: AttemptScope): void {
    if (!scope.#disposed) scope.#abort('timeout');
  }

  #abort(cause: AbortCause): void {
    if (this.#cause) return;
    this.#cause = cause;
    this.controller.abort(new Error(cause === 'timeout' ? 'attempt timed out' : 'caller went away'));
  }
}
