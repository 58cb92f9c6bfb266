// How well a target has been doing lately: exponentially weighted error rate and latency,
// and the rule that demotes a step clearly worse than the next one (policy.adaptive). Pure.
import type { FailureClass } from '../core/types.ts';
import { countsAgainstBreaker } from '../core/failure.ts';

/** Weight of the newest sample: about the last 2/ALPHA samples matter. */
export const ALPHA = 0.2;
/** Samples a step needs before it can be judged. */
export const MIN_SAMPLES = 5;
/** A demoted step stays demoted this long, then starts afresh. */
export const DEMOTION_MS = 30_000;
/** Error rate from which a step is "failing", and by how much it must exceed the next step's. */
export const ERROR_RATE_BAD = 0.5;
export const ERROR_RATE_MARGIN = 0.3;
/** Latency ratio and absolute gap that make a step "clearly slower" than the next. */
export const LATENCY_RATIO = 2;
export const LATENCY_GAP_MS = 500;

export interface Health {
  /** Outcomes that say something about health (successes and counted failures). */
  samples: number;
  /** EWMA of 1 for a counted failure, 0 for a success. */
  errorRate: number;
  /** Successes with a measured latency. */
  latencySamples: number;
  /** EWMA of the time to the answer (streams: to the first event), ms. */
  latencyMs: number;
}

export const NO_HEALTH: Health = Object.freeze({ samples: 0, errorRate: 0, latencySamples: 0, latencyMs: 0 });

export type HealthSample =
  | { kind: 'ok'; latencyMs: number }
  | { kind: 'failure'; failure: FailureClass }
  /** Cancelled after this long without an answer (a hedge answered first): its latency is at least that. */
  | { kind: 'cancelled'; afterMs: number };

function ewma(previous: number, sample: number, count: number): number {
  // The first sample is taken as it is; a plain EWMA would start biased towards 0.
  return count === 0 ? sample : previous + ALPHA * (sample - previous);
}

/**
 * The health after one more outcome. Failures that say nothing about the target (bad requests,
 * filters) leave it as it was; a cancelled attempt adds a latency sample only (a lower bound:
 * a target that always loses the hedge race is still seen as slow), and only if it is slower
 * than what is already known.
 */
export function observe(health: Health, sample: HealthSample): Health {
  if (sample.kind === 'cancelled') {
    if (health.latencySamples > 0 && sample.afterMs <= health.latencyMs) return health;
    return { ...health, latencyMs: ewma(health.latencyMs, sample.afterMs, health.latencySamples), latencySamples: health.latencySamples + 1 };
  }
  if (sample.kind === 'failure' && !countsAgainstBreaker(sample.failure)) return health;
  const next: Health = {
    samples: health.samples + 1,
    errorRate: ewma(health.errorRate, sample.kind === 'ok' ? 0 : 1, health.samples),
    latencySamples: health.latencySamples,
    latencyMs: health.latencyMs,
  };
  if (sample.kind === 'ok') {
    next.latencyMs = ewma(health.latencyMs, sample.latencyMs, health.latencySamples);
    next.latencySamples = health.latencySamples + 1;
  }
  return next;
}

/** Several targets (a group) seen as one step: samples summed, rates weighted by samples. */
export function combine(healths: readonly Health[]): Health {
  const samples = healths.reduce((n, h) => n + h.samples, 0);
  const latencySamples = healths.reduce((n, h) => n + h.latencySamples, 0);
  return {
    samples,
    errorRate: samples === 0 ? 0 : healths.reduce((sum, h) => sum + h.errorRate * h.samples, 0) / samples,
    latencySamples,
    latencyMs: latencySamples === 0 ? 0 : healths.reduce((sum, h) => sum + h.latencyMs * h.latencySamples, 0) / latencySamples,
  };
}

const pct = (rate: number): string => `${Math.round(rate * 100)}%`;

/**
 * Why a step is clearly worse than the step after it, or undefined. Both need MIN_SAMPLES
 * to compare error rates; latency is compared only when both have measured successes.
 */
export function demotionReason(self: Health, next: Health): string | undefined {
  if (self.samples < MIN_SAMPLES) return undefined;
  if (next.samples >= MIN_SAMPLES && self.errorRate >= ERROR_RATE_BAD && self.errorRate - next.errorRate >= ERROR_RATE_MARGIN) {
    return `error rate ${pct(self.errorRate)} vs ${pct(next.errorRate)} of the next step`;
  }
  if (
    self.latencySamples >= MIN_SAMPLES &&
    next.latencySamples >= MIN_SAMPLES &&
    self.latencyMs >= LATENCY_RATIO * next.latencyMs &&
    self.latencyMs - next.latencyMs >= LATENCY_GAP_MS
  ) {
    return `latency ${Math.round(self.latencyMs)}ms vs ${Math.round(next.latencyMs)}ms of the next step`;
  }
  return undefined;
}
