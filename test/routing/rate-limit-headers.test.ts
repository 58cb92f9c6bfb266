// Rate-limit answers that keep a target away from every request: a 429's Retry-After, or
// x-ratelimit-remaining-* 0 with its reset ("1s", "6m0s", "20ms"), Anthropic's RFC 3339 resets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_MARK_MS, exhaustedQuota, parseResetDuration, rateLimitMark, type RateFacts } from '../../src/routing/rate-limit-headers.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('parseResetDuration', () => {
  const rows: Array<[text: string, want: number | undefined, proves: string]> = [
    ['1s', 1000, 'seconds'],
    ['6m0s', 360_000, 'Go-style minutes and seconds'],
    ['20ms', 20, 'milliseconds (not minutes)'],
    ['1h2m3.5s', 3_723_500, 'hours, minutes and fractional seconds'],
    ['7.66s', 7660, 'fractional seconds as Groq writes them'],
    ['30', 30_000, 'a bare number is seconds'],
    ['0.5', 500, 'bare fractional seconds'],
    [' 2s ', 2000, 'whitespace tolerated'],
    ['1500us', 2, 'microseconds round up to whole ms'],
    ['soon', undefined, 'garbage is not trusted'],
    ['-1s', undefined, 'negative durations are not trusted'],
    ['5x', undefined, 'unknown unit'],
    ['', undefined, 'empty'],
  ];
  for (const [text, want, proves] of rows) {
    test(`${JSON.stringify(text)}: ${proves}`, () => assert.equal(parseResetDuration(text), want));
  }
});

describe('rateLimitMark', () => {
  const rows: Array<{ proves: string; facts: RateFacts; want: { delayMs: number; reason: RegExp } | undefined }> = [
    // A 429 with Retry-After marks the target for that long.
    { proves: '429 Retry-After', facts: { status: 429, retryAfterMs: 30_000 }, want: { delayMs: 30_000, reason: /429 with Retry-After 30000ms/ } },
    // A 429 without Retry-After but with an exhausted request quota: its reset.
    {
      proves: '429 with exhausted requests quota',
      facts: { status: 429, headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' } },
      want: { delayMs: 360_000, reason: /x-ratelimit-remaining-requests 0, reset 6m0s/ },
    },
    // Both quotas exhausted: the later reset wins.
    {
      proves: 'the later of two resets',
      facts: {
        status: 429,
        headers: {
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '1s',
          'x-ratelimit-remaining-tokens': '0',
          'x-ratelimit-reset-tokens': '20ms',
        },
      },
      want: { delayMs: 1000, reason: /requests 0, reset 1s/ },
    },
    // A successful answer that used the last request of the window marks the target too.
    {
      proves: '200 with remaining 0',
      facts: { status: 200, headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s' } },
      want: { delayMs: 2000, reason: /remaining-requests 0/ },
    },
    // Quota left: no mark.
    {
      proves: 'remaining above 0',
      facts: { status: 200, headers: { 'x-ratelimit-remaining-requests': '12', 'x-ratelimit-reset-requests': '2s' } },
      want: undefined,
    },
    // Anthropic's resets are RFC 3339 instants.
    {
      proves: 'Anthropic RFC 3339 reset',
      facts: { status: 429, headers: { 'anthropic-ratelimit-requests-remaining': '0', 'anthropic-ratelimit-requests-reset': '2026-01-01T00:00:05Z' } },
      want: { delayMs: 5000, reason: /anthropic-ratelimit-requests-remaining 0/ },
    },
    // A Retry-After on anything but a 429 does not mark every request (a 503's is about that one answer).
    { proves: 'Retry-After on a 503 does not mark', facts: { status: 503, retryAfterMs: 5000 }, want: undefined },
    // A garbage reset is ignored.
    {
      proves: 'garbage reset',
      facts: { status: 429, headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': 'later' } },
      want: undefined,
    },
    // Marks are capped: a header asking for a year gets a day.
    { proves: 'capped', facts: { status: 429, retryAfterMs: 365 * 24 * 3600 * 1000 }, want: { delayMs: MAX_MARK_MS, reason: /Retry-After/ } },
    // Array header values (a repeated header) are read.
    {
      proves: 'array header values',
      facts: { status: 200, headers: { 'x-ratelimit-remaining-tokens': ['0'], 'x-ratelimit-reset-tokens': ['3s'] } },
      want: { delayMs: 3000, reason: /tokens 0/ },
    },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const mark = rateLimitMark(row.facts, NOW);
      if (!row.want) {
        assert.equal(mark, undefined);
        return;
      }
      assert.equal(mark?.delayMs, row.want.delayMs);
      assert.match(mark?.reason ?? '', row.want.reason);
    });
  }

  // No headers at all: nothing exhausted.
  test('exhaustedQuota of no headers', () => assert.equal(exhaustedQuota({}, NOW), undefined));
});
