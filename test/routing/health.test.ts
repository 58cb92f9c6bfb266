// Health per target (EWMA error rate and latency) and adaptive demotion: a step clearly worse
// than the next is demoted for DEMOTION_MS, then recovers with its history forgotten.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALPHA, DEMOTION_MS, MIN_SAMPLES, NO_HEALTH, combine, demotionReason, observe, type Health, type HealthSample } from '../../src/routing/health.ts';
import { RoutingState } from '../../src/engine/routing-state.ts';

function feed(samples: HealthSample[], from: Health = NO_HEALTH): Health {
  return samples.reduce(observe, from);
}

const ok = (latencyMs: number): HealthSample => ({ kind: 'ok', latencyMs });
const fail = (): HealthSample => ({ kind: 'failure', failure: 'serverError' });
const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

describe('observe', () => {
  const rows: Array<{ proves: string; samples: HealthSample[]; want: Health }> = [
    // The first sample is taken as it is (no bias towards 0).
    { proves: 'first success', samples: [ok(200)], want: { samples: 1, errorRate: 0, latencySamples: 1, latencyMs: 200 } },
    // The first failure sets the error rate to 1.
    { proves: 'first failure', samples: [fail()], want: { samples: 1, errorRate: 1, latencySamples: 0, latencyMs: 0 } },
    // Then each sample moves the average by ALPHA of the difference.
    { proves: 'EWMA step', samples: [fail(), ok(100)], want: { samples: 2, errorRate: 1 - ALPHA, latencySamples: 1, latencyMs: 100 } },
    // Latency averages successes only.
    { proves: 'latency EWMA', samples: [ok(100), ok(200)], want: { samples: 2, errorRate: 0, latencySamples: 2, latencyMs: 100 + ALPHA * 100 } },
    // A bad request says nothing about the target's health.
    {
      proves: 'badRequest ignored',
      samples: [ok(100), { kind: 'failure', failure: 'badRequest' }, { kind: 'failure', failure: 'contentFiltered' }],
      want: { samples: 1, errorRate: 0, latencySamples: 1, latencyMs: 100 },
    },
    // A cancelled attempt (lost a hedge race) counts as slow, not as failed.
    {
      proves: 'cancelled adds a latency lower bound',
      samples: [ok(100), { kind: 'cancelled', afterMs: 600 }],
      want: { samples: 1, errorRate: 0, latencySamples: 2, latencyMs: 100 + ALPHA * 500 },
    },
    // ...but never makes a target look faster than it was measured.
    {
      proves: 'cancelled faster than known is ignored',
      samples: [ok(500), { kind: 'cancelled', afterMs: 100 }],
      want: { samples: 1, errorRate: 0, latencySamples: 1, latencyMs: 500 },
    },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const got = feed(row.samples);
      assert.equal(got.samples, row.want.samples);
      assert.equal(got.latencySamples, row.want.latencySamples);
      assert.ok(Math.abs(got.errorRate - row.want.errorRate) < 1e-9, `errorRate ${got.errorRate}`);
      assert.ok(Math.abs(got.latencyMs - row.want.latencyMs) < 1e-9, `latencyMs ${got.latencyMs}`);
    });
  }

  // A group is judged on all its targets, weighted by their samples.
  test('combine weights by samples', () => {
    const a: Health = { samples: 3, errorRate: 1, latencySamples: 1, latencyMs: 100 };
    const b: Health = { samples: 1, errorRate: 0, latencySamples: 3, latencyMs: 300 };
    assert.deepEqual(combine([a, b]), { samples: 4, errorRate: 0.75, latencySamples: 4, latencyMs: 250 });
    assert.deepEqual(combine([]), { samples: 0, errorRate: 0, latencySamples: 0, latencyMs: 0 });
  });
});

describe('demotionReason', () => {
  const failing = feed(times(MIN_SAMPLES, fail()));
  const healthy = feed(times(MIN_SAMPLES, ok(100)));
  const slow = feed(times(MIN_SAMPLES, ok(1500)));
  const rows: Array<{ proves: string; self: Health; next: Health; want: RegExp | undefined }> = [
    // Failing against a healthy next step: demoted, with the numbers.
    { proves: 'error rate clearly worse', self: failing, next: healthy, want: /^error rate 100% vs 0% of the next step$/ },
    // Both failing: no point moving one behind the other.
    { proves: 'both failing', self: failing, next: failing, want: undefined },
    // Too few samples to judge.
    { proves: 'too few samples', self: feed(times(MIN_SAMPLES - 1, fail())), next: healthy, want: undefined },
    // The next step must have been seen too.
    { proves: 'next step unseen', self: failing, next: NO_HEALTH, want: undefined },
    // Clearly slower: 15x and 1400 ms behind.
    { proves: 'latency clearly worse', self: slow, next: healthy, want: /^latency 1500ms vs 100ms of the next step$/ },
    // Twice as slow but only 100 ms apart is not "clearly".
    { proves: 'small absolute gap', self: feed(times(MIN_SAMPLES, ok(200))), next: healthy, want: undefined },
    // Healthy first step: never demoted.
    { proves: 'healthy', self: healthy, next: slow, want: undefined },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const why = demotionReason(row.self, row.next);
      if (row.want) assert.match(why ?? '', row.want);
      else assert.equal(why, undefined);
    });
  }
});

describe('RoutingState: demotion and recovery on a fake clock', () => {
  // Demoted for DEMOTION_MS, then the demotion ends and the target's history is forgotten,
  // so it is judged afresh (here: no longer demotable until MIN_SAMPLES new samples).
  test('demote, hold, recover with fresh health', () => {
    const state = new RoutingState();
    for (let i = 0; i < MIN_SAMPLES; i++) state.observe('a', { kind: 'failure', failure: 'timeout' });
    const t0 = 10_000;
    state.demote('chat', ['a'], t0, 1_770_000_000_000, 'error rate 100% vs 0% of the next step');
    assert.match(state.demotion('chat', ['a'], t0 + 1) ?? '', /^error rate 100% vs 0% of the next step \(until 2026-02-02T02:40:30\.000Z\)$/);
    assert.equal(state.demotion('other-chain', ['a'], t0 + 1), undefined, 'demotion is per chain');
    assert.ok(state.demotion('chat', ['a'], t0 + DEMOTION_MS - 1), 'still demoted just before the end');
    assert.equal(state.health('a').samples, MIN_SAMPLES);
    assert.equal(state.demotion('chat', ['a'], t0 + DEMOTION_MS), undefined, 'recovered');
    assert.equal(state.health('a').samples, 0, 'history forgotten on recovery');
  });

  // Marks: the later one wins, they end on time (with a few ms of slack), and retain() drops unknown targets.
  test('marks and retain', () => {
    const state = new RoutingState();
    state.mark('a', 0, 0, 1000, 'first');
    state.mark('a', 0, 0, 500, 'shorter, ignored');
    assert.equal(state.unavailable('a', 900)?.reason, 'first');
    assert.equal(state.unavailable('a', 996), undefined, 'within the slack of the end');
    state.mark('b', 0, 0, 1000, 'b');
    state.observe('b', { kind: 'ok', latencyMs: 1 });
    state.retain(new Set(['a']));
    assert.equal(state.unavailable('b', 1), undefined);
    assert.equal(state.health('b').samples, 0);
  });

  // Buckets persist between takes and start afresh when the limits change (a reload).
  test('buckets follow the configured limits', () => {
    const state = new RoutingState();
    assert.equal(state.take('a', { rpm: 1 }, 0, 0).ok, true);
    assert.equal(state.take('a', { rpm: 1 }, 0, 1).ok, false);
    assert.equal(state.take('a', { rpm: 2 }, 0, 2).ok, true, 'new limits: a new full bucket');
    assert.equal(state.take('a', undefined, 0, 3).ok, true, 'no limits: always');
  });
});
