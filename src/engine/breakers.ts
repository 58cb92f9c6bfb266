// Circuit breakers per upstream target (provider + baseURL + model), backed by opossum.
// opossum supplies the state machine (open → half-open after the cooldown → a single
// probe → closed or open again); the rule for opening is ours: N failures of the
// classes that say something about the target's health, inside a rolling window.
import CircuitBreaker from 'opossum';
import { countsAgainstBreaker } from '../core/failure.ts';
import type { BreakerSettings, FailureClass, Target } from '../core/types.ts';
import type { AttemptOutcome } from './outcome.ts';
import { RoutingState } from './routing-state.ts';

export type BreakerState = 'closed' | 'open' | 'halfOpen';

export interface BreakerLabels {
  provider: string;
  model: string;
}

export type BreakerListener = (labels: BreakerLabels, state: BreakerState) => void;

/**
 * The pure opening rule: the failures still inside the window (oldest dropped) and
 * whether they reach the threshold.
 */
export function recordFailure(failureTimes: readonly number[], now: number, settings: BreakerSettings): { failureTimes: number[]; open: boolean } {
  const kept = failureTimes.filter((t) => now - t < settings.windowMs);
  kept.push(now);
  return { failureTimes: kept, open: kept.length >= settings.failureThreshold };
}

type Action = () => Promise<unknown>;

interface Entry {
  breaker: CircuitBreaker<[Action], unknown>;
  settings: BreakerSettings;
  labels: BreakerLabels;
  /** Counted failures since the circuit last closed (opossum's own stats are percentage-based and outlive a close). */
  failureTimes: number[];
}

/** Carries a counted failure through opossum, which only learns of failures by rejection. */
class CountedFailure<T> extends Error {
  readonly code = 'COUNTED_FAILURE';
  readonly outcome: AttemptOutcome<T>;
  constructor(outcome: AttemptOutcome<T>) {
    super('upstream failure counted by the circuit breaker');
    this.outcome = outcome;
  }
}

export type Gated<T> = AttemptOutcome<T> | { kind: 'circuitOpen'; reason: string };

/** An attempt cancelled while it was the half-open probe: it proved nothing, so the circuit opens again. */
class UnprovenProbe extends Error {
  readonly code = 'UNPROVEN_PROBE';
  readonly outcome: AttemptOutcome<unknown>;
  constructor(outcome: AttemptOutcome<unknown>) {
    super('half-open probe cancelled before it answered');
    this.outcome = outcome;
  }
}

export class BreakerRegistry {
  readonly #entries = new Map<string, Entry>();
  /** Routing's memory of the same targets (health, rate-limit marks, buckets, demotions), kept and dropped with the breakers. */
  readonly routing = new RoutingState();
  readonly #listener: BreakerListener;
  readonly #now: () => number;

  constructor(listener: BreakerListener = () => {}, now: () => number = Date.now) {
    this.#listener = listener;
    this.#now = now;
  }

  /** Runs the attempt through the target's breaker, or reports that its circuit is open. */
  run<T>(step: Target, settings: BreakerSettings, attempt: () => Promise<AttemptOutcome<T>>): Promise<Gated<T>> {
    const entry = this.#entry(step, settings);
    return entry.breaker.closed ? this.#runClosed(entry, attempt) : this.#runThrough(entry, attempt);
  }

  /**
   * A closed circuit lets every attempt through and its opening rule is ours (#count), so the
   * attempt runs without opossum's fire(): per call that was an args copy, two events feeding
   * rolling stats nothing reads, a promise with then/catch closures and two clock reads
   * (~1.5 KB and a few µs a request, docs/bench/findings.md). What opossum would do with the
   * result when the circuit changed meanwhile is done here: a failure while half-open opens
   * it again, an answer while half-open closes it.
   */
  async #runClosed<T>(entry: Entry, attempt: () => Promise<AttemptOutcome<T>>): Promise<Gated<T>> {
    const outcome = await attempt();
    const { breaker } = entry;
    if (outcome.kind === 'failure' && countsAgainstBreaker(outcome.failure.class)) {
      if (breaker.halfOpen) breaker.open();
      else if (breaker.closed) this.#count(entry);
    } else if (outcome.kind !== 'aborted' && breaker.halfOpen) breaker.close();
    return outcome;
  }

  /** Open or half-open: opossum decides whether the attempt runs (the single probe) and what its result does. */
  async #runThrough<T>(entry: Entry, attempt: () => Promise<AttemptOutcome<T>>): Promise<Gated<T>> {
    const action: Action = async () => {
      const probing = entry.breaker.halfOpen;
      const outcome = await attempt();
      if (outcome.kind === 'failure' && countsAgainstBreaker(outcome.failure.class)) {
        // Half-open, opossum must see the failure to open the circuit again. Otherwise the
        // opening rule is ours alone: counted here, a failure skips opossum's rejection path,
        // which would build an Error and total its rolling stats, read by nothing (~10 µs a
        // failure, perf on the bench's 503 case).
        if (entry.breaker.halfOpen) throw new CountedFailure(outcome);
        if (entry.breaker.closed) this.#count(entry);
        return outcome;
      }
      // A probe cancelled (caller gone, hedge lost) must not close the circuit it was testing.
      if (outcome.kind === 'aborted' && probing) throw new UnprovenProbe(outcome);
      return outcome;
    };
    try {
      return (await entry.breaker.fire(action)) as AttemptOutcome<T>;
    } catch (error) {
      if (error instanceof CountedFailure) return error.outcome;
      if (error instanceof UnprovenProbe) return error.outcome as AttemptOutcome<T>;
      if (CircuitBreaker.isOurError(error as Error)) {
        return { kind: 'circuitOpen', reason: entry.breaker.halfOpen ? 'circuit half-open, probe in flight' : 'circuit open' };
      }
      throw error;
    }
  }

  /**
   * A failure found after the attempt had already been let through as a success: a stream
   * that broke after its first event. It counts like any other; a half-open probe that
   * broke this way proved nothing, so its circuit opens again.
   */
  recordLateFailure(step: Target, settings: BreakerSettings, failure: FailureClass, wasProbe: boolean): void {
    if (!countsAgainstBreaker(failure)) return;
    const entry = this.#entry(step, settings);
    if (!entry.breaker.closed) return;
    if (wasProbe) {
      entry.breaker.open();
      return;
    }
    this.#count(entry);
  }

  /** One counted failure of a closed circuit, which opens it when the window holds enough. */
  #count(entry: Entry): void {
    const next = recordFailure(entry.failureTimes, this.#now(), entry.settings);
    entry.failureTimes = next.failureTimes;
    if (next.open) entry.breaker.open();
  }

  state(target: string): BreakerState | undefined {
    const entry = this.#entries.get(target);
    return entry && stateOf(entry.breaker);
  }

  /** Keep the breakers of targets that still exist (their state survives a reload); drop the rest. */
  retain(targets: ReadonlySet<string>): void {
    this.routing.retain(targets);
    for (const [target, entry] of this.#entries) {
      if (!targets.has(target)) {
        entry.breaker.shutdown();
        this.#entries.delete(target);
      }
    }
  }

  snapshot(): Array<BreakerLabels & { target: string; state: BreakerState }> {
    return [...this.#entries].map(([target, e]) => ({ target, ...e.labels, state: stateOf(e.breaker) }));
  }

  shutdown(): void {
    this.retain(new Set());
  }

  #entry(step: Target, settings: BreakerSettings): Entry {
    const existing = this.#entries.get(step.target);
    if (existing && sameSettings(existing.settings, settings)) return existing;
    const entry = this.#create(step, settings);
    // New settings on reload: a fresh breaker, but an open circuit stays open.
    if (existing) {
      if (existing.breaker.opened) entry.breaker.open();
      existing.breaker.shutdown();
    }
    this.#entries.set(step.target, entry);
    return entry;
  }

  #create(step: Target, settings: BreakerSettings): Entry {
    const labels = { provider: step.provider.name, model: step.model };
    const breaker = new CircuitBreaker<[Action], unknown>((action: Action) => action(), {
      name: step.target,
      timeout: false, // attempts enforce their own timeouts
      resetTimeout: settings.cooldownMs,
      rollingCountTimeout: settings.windowMs,
      rollingCountBuckets: 10,
      // Never open on a percentage: only shouldOpen() below decides.
      errorThresholdPercentage: 100,
      // opossum's defaults keep every call's latency in the window and, every bucket
      // interval (and on every failure), concatenate and sort them all for percentiles:
      // at a few thousand requests per second that is a stall of several ms every few
      // seconds and megabytes held. We decide opening from our own failure times and read
      // none of its stats, so both are off.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      volumeThreshold: Number.MAX_SAFE_INTEGER,
    });
    const entry: Entry = { breaker, settings, labels, failureTimes: [] };
    breaker.on('open', () => this.#listener(labels, 'open'));
    breaker.on('halfOpen', () => this.#listener(labels, 'halfOpen'));
    breaker.on('close', () => {
      entry.failureTimes = [];
      this.#listener(labels, 'closed');
    });
    this.#listener(labels, 'closed');
    return entry;
  }
}

function stateOf(breaker: CircuitBreaker<[Action], unknown>): BreakerState {
  if (breaker.opened) return 'open';
  return breaker.halfOpen ? 'halfOpen' : 'closed';
}

function sameSettings(a: BreakerSettings, b: BreakerSettings): boolean {
  return a.failureThreshold === b.failureThreshold && a.windowMs === b.windowMs && a.cooldownMs === b.cooldownMs;
}
