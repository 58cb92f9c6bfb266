// What routing remembers between requests, per upstream target (the breakers' key, so it
// survives reloads the same way): health (EWMA error rate and latency), "unavailable until"
// marks from rate-limit answers, local token buckets, and adaptive demotions. Times are the
// engine clock's (Clock.now); the wall time of a mark is kept for people reading it.
import type { Limits } from '../core/types.ts';
import { NO_HEALTH, observe, DEMOTION_MS, type Health, type HealthSample } from '../routing/health.ts';
import { takeFromLimits, type LimitBuckets, type Take } from '../routing/token-bucket.ts';

export interface Mark {
  /** Clock.now() until which the target is left alone. */
  until: number;
  /** The same instant as wall-clock epoch ms, for /config and logs. */
  untilEpochMs: number;
  reason: string;
}

interface BucketEntry {
  limits: Limits;
  buckets: LimitBuckets;
}

export interface TargetView {
  health: Health;
  rateLimited?: { until: string; reason: string };
}

/** A mark ending within this much of now counts as over (timers fire a little early or late). */
const MARK_SLACK_MS = 5;

export class RoutingState {
  readonly #health = new Map<string, Health>();
  readonly #marks = new Map<string, Mark>();
  readonly #buckets = new Map<string, BucketEntry>();
  /** Keyed by chain name and target: demotion is relative to a chain's next step. */
  readonly #demotions = new Map<string, { chain: string; target: string; until: number; untilEpochMs: number; reason: string }>();

  /** Targets with prefill `auto` that rejected a prefilled request: later resumes restart there instead. */
  readonly #rejectsPrefill = new Set<string>();

  rejectsPrefill(target: string): boolean {
    return this.#rejectsPrefill.has(target);
  }

  prefillRejected(target: string): void {
    this.#rejectsPrefill.add(target);
  }

  health(target: string): Health {
    return this.#health.get(target) ?? NO_HEALTH;
  }

  observe(target: string, sample: HealthSample): void {
    this.#health.set(target, observe(this.health(target), sample));
  }

  /** Leaves the target alone for every request until now + delayMs (a later mark is kept). */
  mark(target: string, now: number, epochNow: number, delayMs: number, reason: string): void {
    const until = now + delayMs;
    const existing = this.#marks.get(target);
    if (existing && existing.until >= until) return;
    this.#marks.set(target, { until, untilEpochMs: epochNow + delayMs, reason });
  }

  /** The mark that keeps the target unavailable now, if any. */
  unavailable(target: string, now: number): Mark | undefined {
    const mark = this.#marks.get(target);
    if (!mark) return undefined;
    if (mark.until - MARK_SLACK_MS <= now) {
      this.#marks.delete(target);
      return undefined;
    }
    return mark;
  }

  /** Takes one request and `tokens` from the target's local limits, or says why not. New limits start full buckets. */
  take(target: string, limits: Limits | undefined, tokens: number, now: number): Take {
    if (!limits || (limits.rpm === undefined && limits.tpm === undefined)) return { ok: true, buckets: {} };
    const entry = this.#buckets.get(target);
    const same = entry && entry.limits.rpm === limits.rpm && entry.limits.tpm === limits.tpm;
    const taken = takeFromLimits(limits, same ? entry.buckets : {}, tokens, now);
    if (taken.ok) this.#buckets.set(target, { limits, buckets: taken.buckets });
    return taken;
  }

  /**
   * Why the chain's step made of these targets is demoted now, if it is. A demotion that ran
   * out ends here, and the targets' health starts afresh so the step is judged on new samples.
   */
  demotion(chain: string, targets: readonly string[], now: number): string | undefined {
    let reason: string | undefined;
    for (const target of targets) {
      const key = demotionKey(chain, target);
      const d = this.#demotions.get(key);
      if (!d) continue;
      if (d.until <= now) {
        this.#demotions.delete(key);
        this.#health.delete(target);
        continue;
      }
      reason ??= `${d.reason} (until ${new Date(d.untilEpochMs).toISOString()})`;
    }
    return reason;
  }

  demote(chain: string, targets: readonly string[], now: number, epochNow: number, reason: string): void {
    for (const target of targets) {
      this.#demotions.set(demotionKey(chain, target), { chain, target, until: now + DEMOTION_MS, untilEpochMs: epochNow + DEMOTION_MS, reason });
    }
  }

  view(target: string, now: number): TargetView {
    const mark = this.unavailable(target, now);
    const view: TargetView = { health: this.health(target) };
    if (mark) view.rateLimited = { until: new Date(mark.untilEpochMs).toISOString(), reason: mark.reason };
    return view;
  }

  /** Forget targets no configured chain uses any more (like BreakerRegistry.retain). */
  retain(targets: ReadonlySet<string>): void {
    for (const map of [this.#health, this.#marks, this.#buckets]) {
      for (const target of map.keys()) if (!targets.has(target)) map.delete(target);
    }
    for (const [key, d] of this.#demotions) if (!targets.has(d.target)) this.#demotions.delete(key);
    for (const target of this.#rejectsPrefill) if (!targets.has(target)) this.#rejectsPrefill.delete(target);
  }
}

function demotionKey(chain: string, target: string): string {
  return `${chain}\u0000${target}`;
}
