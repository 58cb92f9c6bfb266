// When an upstream says it will refuse a target for a while, every request of every chain
// should know: a 429's Retry-After, or rate-limit headers saying a quota is used up until its
// reset (OpenAI/Groq/DeepSeek style x-ratelimit-remaining-* / x-ratelimit-reset-*, Anthropic's
// anthropic-ratelimit-*-remaining / -reset). Pure: headers in, a delay and its reason out.
import { header, type HeaderBag } from '../core/retry-after.ts';

/** Longest mark trusted from a header (a daily quota reset is real; a year is a bug). */
export const MAX_MARK_MS = 24 * 60 * 60 * 1000;

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/**
 * A reset duration as upstreams write it: Go-style "1s", "6m0s", "20ms", "1h2m3.5s", or
 * plain seconds ("30", "0.5"). Undefined for anything else.
 */
export function parseResetDuration(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  if (!/^(\d+(\.\d+)?(h|ms|us|µs|ns|m|s))+$/.test(value)) return undefined;
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/g)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
  }
  return Math.ceil(total);
}

/** A reset given as a duration or as an RFC 3339 / HTTP date (Anthropic), in ms from now. */
function parseReset(text: string, nowEpochMs: number): number | undefined {
  const duration = parseResetDuration(text);
  if (duration !== undefined) return duration;
  if (!/^\d{4}-\d{2}-\d{2}T|^[A-Z][a-z]{2},/.test(text.trim())) return undefined;
  const at = Date.parse(text.trim());
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowEpochMs);
}

const DIMENSIONS: ReadonlyArray<{ remaining: string; reset: string }> = [
  { remaining: 'x-ratelimit-remaining-requests', reset: 'x-ratelimit-reset-requests' },
  { remaining: 'x-ratelimit-remaining-tokens', reset: 'x-ratelimit-reset-tokens' },
  { remaining: 'anthropic-ratelimit-requests-remaining', reset: 'anthropic-ratelimit-requests-reset' },
  { remaining: 'anthropic-ratelimit-tokens-remaining', reset: 'anthropic-ratelimit-tokens-reset' },
  { remaining: 'anthropic-ratelimit-input-tokens-remaining', reset: 'anthropic-ratelimit-input-tokens-reset' },
  { remaining: 'anthropic-ratelimit-output-tokens-remaining', reset: 'anthropic-ratelimit-output-tokens-reset' },
];

export interface RateMark {
  /** How long the target is unavailable, from now. */
  delayMs: number;
  reason: string;
}

/** The quota the headers say is used up (remaining 0) with the latest reset, if any. */
export function exhaustedQuota(headers: HeaderBag, nowEpochMs: number): RateMark | undefined {
  let found: RateMark | undefined;
  for (const dim of DIMENSIONS) {
    const remaining = header(headers, dim.remaining)?.trim();
    const reset = header(headers, dim.reset);
    if (remaining === undefined || !/^\d+$/.test(remaining) || Number(remaining) !== 0 || reset === undefined) continue;
    const delayMs = parseReset(reset, nowEpochMs);
    if (delayMs === undefined || delayMs <= 0) continue;
    if (!found || delayMs > found.delayMs) found = { delayMs, reason: `${dim.remaining} 0, reset ${reset.trim()}` };
  }
  return found;
}

export interface RateFacts {
  /** The upstream's HTTP status (429 for a rate-limit refusal; 2xx for an answer). */
  status?: number;
  /** Retry-After / retry-after-ms, already parsed (core/retry-after.ts). */
  retryAfterMs?: number;
  headers?: HeaderBag;
}

/**
 * How long a target should be left alone by every request after this answer: a 429's
 * Retry-After, else any answer's exhausted quota. Undefined when nothing says so.
 */
export function rateLimitMark(facts: RateFacts, nowEpochMs: number): RateMark | undefined {
  if (facts.status === 429 && facts.retryAfterMs !== undefined && facts.retryAfterMs > 0) {
    return { delayMs: Math.min(facts.retryAfterMs, MAX_MARK_MS), reason: `429 with Retry-After ${facts.retryAfterMs}ms` };
  }
  const quota = facts.headers ? exhaustedQuota(facts.headers, nowEpochMs) : undefined;
  return quota && { delayMs: Math.min(quota.delayMs, MAX_MARK_MS), reason: quota.reason };
}
