// What the engine tells an observer while it walks a chain: every attempt it starts, every
// record it keeps (attempts and skipped steps), every wait. Tracing builds its span tree from
// these, so spans are not threaded through the engine; with no observer nothing is called.
import type { Step } from '../core/types.ts';
import type { BreakerState } from './breakers.ts';
import type { AttemptRecord, UpstreamFailure } from './outcome.ts';

/** backoff and retryAfter: before retrying a target; hedge: the silence after which a hedge started. */
export type WaitKind = 'backoff' | 'retryAfter' | 'hedge';

export interface AttemptStart {
  step: Step;
  attempt: number;
  hedge: boolean;
  /** The target's circuit when the attempt started (a half-open circuit: this attempt is its probe). */
  circuit: BreakerState;
  route?: string;
}

/** One started attempt, as the observer follows it. */
export interface ObservedAttempt {
  /** Runs the attempt in the observer's context (what the upstream request carries, e.g. traceparent). */
  within<R>(run: () => R): R;
}

export interface ChainObserver {
  attemptStarted(start: AttemptStart): ObservedAttempt;
  /** Every record the engine keeps, with the attempt it ends (none for a step skipped before it started). */
  recorded(record: AttemptRecord, attempt: ObservedAttempt | undefined, step: Step): void;
  /** A wait the engine begins now; the returned function ends it. */
  waitStarted(kind: WaitKind, step: Step, plannedMs: number): () => void;
  /** A wait that is already over: it began `ms` ago. */
  waited(kind: WaitKind, step: Step, ms: number): void;
  /** The answer that won failed after it was chosen (a stream that broke); its record has been updated. */
  failedLate(failure: UpstreamFailure, step: Step): void;
}
