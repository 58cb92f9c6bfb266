// Token buckets for a target's local limits (`limits: {rpm, tpm}`): each holds at most one
// minute's allowance and refills continuously, so a burst up to the per-minute rate is let
// through and then requests are spaced out. Pure: the caller keeps the bucket and the clock.
import type { Limits } from '../core/types.ts';

const MINUTE_MS = 60_000;

export interface Bucket {
  tokens: number;
  /** Clock time of the last refill. */
  at: number;
}

/** A full bucket for a per-minute rate. */
export function fullBucket(perMinute: number, now: number): Bucket {
  return { tokens: perMinute, at: now };
}

export function refill(bucket: Bucket, perMinute: number, now: number): Bucket {
  const elapsed = Math.max(0, now - bucket.at);
  return { tokens: Math.min(perMinute, bucket.tokens + (elapsed * perMinute) / MINUTE_MS), at: Math.max(now, bucket.at) };
}

/** How long until `amount` tokens are available (0: now; Infinity: never, it exceeds the bucket). */
export function waitFor(bucket: Bucket, perMinute: number, amount: number, now: number): number {
  if (amount > perMinute) return Infinity;
  const current = refill(bucket, perMinute, now);
  if (current.tokens >= amount) return 0;
  return Math.ceil(((amount - current.tokens) * MINUTE_MS) / perMinute);
}

export interface LimitBuckets {
  rpm?: Bucket;
  tpm?: Bucket;
}

export type Take = { ok: true; buckets: LimitBuckets } | { ok: false; reason: string; waitMs: number };

/**
 * Takes one request and `tokens` tokens from a target's buckets, both or neither. A refusal
 * says which limit and how long until it would pass.
 */
export function takeFromLimits(limits: Limits, buckets: LimitBuckets, tokens: number, now: number): Take {
  const rpm = limits.rpm === undefined ? undefined : refill(buckets.rpm ?? fullBucket(limits.rpm, now), limits.rpm, now);
  const tpm = limits.tpm === undefined ? undefined : refill(buckets.tpm ?? fullBucket(limits.tpm, now), limits.tpm, now);
  if (rpm && limits.rpm !== undefined && rpm.tokens < 1) {
    const waitMs = waitFor(rpm, limits.rpm, 1, now);
    return { ok: false, waitMs, reason: `local limit rpm ${limits.rpm} reached; next request allowed in ${waitMs}ms` };
  }
  if (tpm && limits.tpm !== undefined && tpm.tokens < tokens) {
    const waitMs = waitFor(tpm, limits.tpm, tokens, now);
    const reason = Number.isFinite(waitMs)
      ? `local limit tpm ${limits.tpm} reached; ${tokens} tokens allowed in ${waitMs}ms`
      : `local limit tpm ${limits.tpm}: this request needs ~${tokens} tokens, more than a minute's allowance`;
    return { ok: false, waitMs, reason };
  }
  const next: LimitBuckets = {};
  if (rpm) next.rpm = { tokens: rpm.tokens - 1, at: rpm.at };
  if (tpm) next.tpm = { tokens: tpm.tokens - tokens, at: tpm.at };
  return { ok: true, buckets: next };
}
