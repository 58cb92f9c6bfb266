import type { HeaderBag } from '../core/retry-after.ts';
import type { FailureClass, Target, Usage } from '../core/types.ts';

/** An upstream failure as the engine decides on it. */
export interface UpstreamFailure {
  class: FailureClass;
  message: string;
  status?: number;
  retryAfterMs?: number;
  /** The upstream's response headers, when it answered (rate-limit headers mark the target for every request). */
  headers?: HeaderBag;
  /**
   * The upstream's own error response, returned when it is the last word: as it came
   * (`body`), or, from an upstream of another format than the caller's, as `error` in the
   * canonical error shape, which the caller's codec writes at the server edge (`body` then
   * holds the same error as JSON, for logs and tests).
   */
  response?: { status: number; contentType: string; body: string; error?: { error: { [key: string]: unknown } } };
  /** Tokens billed even though the attempt failed (e.g. a content_filter finish). */
  usage?: Usage;
}

/** One attempt's result: the value to serve, a classified failure, or the caller went away. */
export type AttemptOutcome<T> = { kind: 'success'; value: T; status: number } | { kind: 'failure'; failure: UpstreamFailure } | { kind: 'aborted' };

/** 'cancelled': stopped by the engine because another attempt (a hedge) answered first. */
export type AttemptVerdict = FailureClass | 'ok' | 'skipped' | 'aborted' | 'cancelled';

/** How an attempt started as a hedge ended: it answered first, another did, it failed, or the request was given up. */
export type HedgeResult = 'won' | 'lost' | 'failed' | 'aborted';

/** A skip reason with a stable code, for reasons callers and operators act on. */
export interface CodedSkip {
  code: string;
  message: string;
}

/** What the request log, headers and metrics say about one attempt (or skipped step). */
export interface AttemptRecord {
  step: number;
  provider: string;
  model: string;
  /** 1-based attempt number on this step; 0 for a skipped step. */
  attempt: number;
  outcome: AttemptVerdict;
  /** Why a step was skipped, or what was decided after a failure. */
  reason?: string;
  /** A skip's constant reason code, when it has one (e.g. local_credentials_refused): shown in x-llm-fallback-attempts. */
  skipCode?: string;
  /** Why this target was tried at this point, when more than the listed order decided it (priority, weights, demotion, hedge). */
  route?: string;
  /** Set on attempts started as hedges. */
  hedge?: HedgeResult;
  status?: number;
  ms: number;
  costUSD: number;
  usage?: Usage;
}

export interface AttemptContext {
  /** 1-based attempt number on this step. */
  attempt: number;
  /** Clock.now() value by which the whole request must be over. */
  deadlineAt: number;
  /**
   * Aborts when the caller goes away, or when the engine cancels this attempt (another one
   * answered first). Each attempt has its own; aborting it must close the upstream connection.
   */
  signal: AbortSignal;
}

/** The engine's attempt port: one call of a step, however the protocol goes (src/upstream/attempt.ts). */
export type AttemptFn<T> = (step: Target, ctx: AttemptContext) => Promise<AttemptOutcome<T>>;
