// The routing planner: priority modes, demotion, weighted picks within a step group, and the
// notes that explain every place.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  choosePriority,
  groupsOf,
  orderSteps,
  orderTargets,
  planOrder,
  stepsToDemote,
  type CircuitState,
  type PlanInput,
  type StepGroup,
} from '../../src/routing/plan.ts';
import { NO_HEALTH, demotionReason, type Health } from '../../src/routing/health.ts';
import type { RequestFacts } from '../../src/routing/estimate.ts';
import { targetKey, type Price, type Priority, type Provider, type Target } from '../../src/core/types.ts';
import { seeded } from '../support/seeded-random.ts';

const provider: Provider = { name: 'p', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: 'k', keySource: 'env:K', headers: {} };

function target(index: number, model: string, extra: Partial<Target> = {}): Target {
  return { index, provider, model, retries: 0, timeouts: { firstByteMs: 1000, idleMs: 1000, totalMs: 1000 }, target: targetKey(provider, model), ...extra };
}

const FACTS: RequestFacts = { inputTokens: 1000, requestedMaxOutput: 1000, choices: 1, producesOutput: true };
const measured = (latencyMs: number, samples = 5): Health => ({ samples, errorRate: 0, latencySamples: samples, latencyMs });

describe('choosePriority', () => {
  const rows: Array<{ proves: string; asked?: string; chainDefault?: Priority; want: Priority; note?: RegExp }> = [
    // No header, no default: listed order.
    { proves: 'default is quality', want: 'quality' },
    // The chain's default applies without a header.
    { proves: 'chain default', chainDefault: 'cheapest', want: 'cheapest' },
    // The header wins over the default, case-insensitively.
    { proves: 'header wins', asked: ' Speed ', chainDefault: 'cheapest', want: 'speed' },
    // A wrong value is ignored with a note, never an error.
    {
      proves: 'unknown value noted',
      asked: 'fastest',
      chainDefault: 'cheapest',
      want: 'cheapest',
      note: /"fastest" is not one of speed, quality, cheapest; cheapest used/,
    },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const got = choosePriority(row.asked, row.chainDefault);
      assert.equal(got.priority, row.want);
      if (row.note) assert.match(got.note ?? '', row.note);
      else assert.equal(got.note, undefined);
    });
  }
});

describe('groupsOf', () => {
  // Consecutive targets with one index form a step; a plain step is a group of one.
  test('groups by index', () => {
    const groups = groupsOf([target(0, 'a'), target(0, 'b'), target(1, 'c')]);
    assert.deepEqual(
      groups.map((g) => [g.index, g.targets.map((t) => t.model)]),
      [
        [0, ['a', 'b']],
        [1, ['c']],
      ],
    );
  });

  // Made once per chain: the same steps give the same groups, other steps their own.
  test('the groups of one list of steps are made once', () => {
    const steps = [target(0, 'a'), target(1, 'b')];
    assert.equal(groupsOf(steps), groupsOf(steps));
    assert.notEqual(groupsOf([...steps]), groupsOf(steps));
  });
});

describe('orderSteps', () => {
  const price = (inputPerMTok: number, outputPerMTok: number): Price => ({ inputPerMTok, outputPerMTok });
  const groups: readonly StepGroup[] = groupsOf([
    target(0, 'big', { price: price(10, 30) }),
    target(1, 'mid', { price: price(1, 2) }),
    target(2, 'free-unknown'),
    target(3, 'tiny', { price: price(0.1, 0.2) }),
  ]);
  const health: Record<string, Health> = { big: measured(900), mid: measured(300), tiny: measured(600) };
  const rows: Array<{ proves: string; priority: Priority; demoted?: number[]; want: string[]; notes?: Record<string, RegExp> }> = [
    // Quality is the listed order, with no notes.
    { proves: 'quality: listed', priority: 'quality', want: ['big', 'mid', 'free-unknown', 'tiny'], notes: { big: /^$/ } },
    // Speed: measured latency ascending, unmeasured steps after measured ones.
    {
      proves: 'speed: by EWMA latency',
      priority: 'speed',
      want: ['mid', 'tiny', 'big', 'free-unknown'],
      notes: { mid: /priority speed: 300ms EWMA/, 'free-unknown': /no latency measured yet/ },
    },
    // Cheapest: the request's estimated cost ascending, unpriced last.
    {
      proves: 'cheapest: by price',
      priority: 'cheapest',
      want: ['tiny', 'mid', 'big', 'free-unknown'],
      notes: { tiny: /priority cheapest: ~\$0\.00030/, 'free-unknown': /no price known/ },
    },
    // A demoted step goes after the next one.
    { proves: 'demoted moves one place', priority: 'quality', demoted: [0], want: ['mid', 'big', 'free-unknown', 'tiny'], notes: { big: /^demoted: slow$/ } },
    // Two demoted in a row go after the next healthy step, keeping their order.
    { proves: 'two demoted', priority: 'quality', demoted: [0, 1], want: ['free-unknown', 'big', 'mid', 'tiny'] },
    // The last step demoted has nothing to go behind: it stays last.
    { proves: 'last demoted stays', priority: 'quality', demoted: [3], want: ['big', 'mid', 'free-unknown', 'tiny'] },
    // Demotion applies after the priority order.
    { proves: 'demotion after speed order', priority: 'speed', demoted: [1], want: ['tiny', 'mid', 'big', 'free-unknown'] },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const ranked = orderSteps({
        groups,
        priority: row.priority,
        demoted: (i) => (row.demoted?.includes(i) ? 'slow' : undefined),
        health: (t) => health[t.split('|')[2] ?? ''] ?? NO_HEALTH,
        facts: FACTS,
      });
      assert.deepEqual(
        ranked.map((r) => r.group.targets[0]?.model),
        row.want,
      );
      for (const [model, note] of Object.entries(row.notes ?? {})) {
        assert.match(ranked.find((r) => r.group.targets[0]?.model === model)?.notes.join('; ') ?? '', note, model);
      }
    });
  }
});

describe('orderTargets: weights', () => {
  const PICKS = 20_000;
  const TOLERANCE = 0.02;
  const rows: Array<{ proves: string; weights: number[]; circuits?: Record<string, CircuitState>; firstShare: number[] }> = [
    // 1:3 → a quarter and three quarters of first picks.
    { proves: '1:3', weights: [1, 3], firstShare: [0.25, 0.75] },
    // 2:1:1.
    { proves: '2:1:1', weights: [2, 1, 1], firstShare: [0.5, 0.25, 0.25] },
    // Equal weights share evenly.
    { proves: 'equal', weights: [1, 1, 1, 1], firstShare: [0.25, 0.25, 0.25, 0.25] },
    // An open circuit takes no first picks; the others share by weight.
    { proves: 'open circuit excluded', weights: [1, 1, 2], circuits: { m0: 'open' }, firstShare: [0, 1 / 3, 2 / 3] },
    // A half-open target is not picked first either (its probe comes after the closed ones).
    { proves: 'half-open after closed', weights: [5, 1], circuits: { m0: 'halfOpen' }, firstShare: [0, 1] },
    // Weight 0 is a standby: never first while a weighted target is closed.
    { proves: 'weight 0 standby', weights: [0, 1], firstShare: [0, 1] },
  ];
  for (const row of rows) {
    test(`first-pick shares ${row.proves} within ±${TOLERANCE * 100}% over ${PICKS} picks`, () => {
      const group: StepGroup = { index: 0, targets: row.weights.map((weight, i) => target(0, `m${i}`, { weight })) };
      const circuit = (t: string): CircuitState | undefined => row.circuits?.[t.split('|')[2] ?? ''];
      const random = seeded(42);
      const counts = row.weights.map(() => 0);
      for (let i = 0; i < PICKS; i++) {
        const order = orderTargets(group, circuit, random);
        assert.equal(order.length, row.weights.length, 'every target appears once');
        assert.equal(new Set(order.map((o) => o.step.model)).size, row.weights.length);
        const first = Number(order[0]?.step.model.slice(1));
        counts[first] = (counts[first] ?? 0) + 1;
      }
      counts.forEach((count, i) => {
        const share = count / PICKS;
        assert.ok(Math.abs(share - (row.firstShare[i] ?? 0)) <= TOLERANCE, `m${i}: ${share} vs ${row.firstShare[i]}`);
      });
    });
  }

  // The order within a group explains itself; non-closed targets come last in listed order.
  test('notes and the place of open, half-open and standby targets', () => {
    const group: StepGroup = {
      index: 0,
      targets: [target(0, 'open', { weight: 5 }), target(0, 'w1'), target(0, 'standby', { weight: 0 }), target(0, 'half', { weight: 2 })],
    };
    const circuits: Record<string, CircuitState> = { open: 'open', half: 'halfOpen' };
    const order = orderTargets(
      group,
      (t) => circuits[t.split('|')[2] ?? ''],
      () => 0,
    );
    assert.deepEqual(
      order.map((o) => [o.step.model, o.route]),
      [
        ['w1', 'weighted pick: weight 1 of 1'],
        ['standby', 'weight 0: standby after the weighted targets'],
        ['open', 'circuit open: after the closed targets'],
        ['half', 'circuit halfOpen: after the closed targets'],
      ],
    );
  });

  // A plain step (one target) has no note: listed order needs no explanation.
  test('single target: no note', () => {
    assert.deepEqual(
      orderTargets(
        { index: 0, targets: [target(0, 'only')] },
        () => undefined,
        () => 0.5,
      ).map((o) => o.route),
      [undefined],
    );
  });
});

describe('planOrder', () => {
  // A group's targets all come before the next step; notes join the step's and the target's.
  test('the whole group before the next step', () => {
    const input: PlanInput = {
      groups: groupsOf([target(0, 'a', { weight: 1 }), target(0, 'b', { weight: 1 }), target(1, 'next')]),
      priority: 'quality',
      demoted: () => undefined,
      health: () => NO_HEALTH,
      circuit: () => undefined,
      facts: FACTS,
      random: () => 0.99,
    };
    const order = planOrder(input);
    assert.deepEqual(
      order.map((o) => o.step.model),
      ['b', 'a', 'next'],
    );
    assert.deepEqual(
      order.map((o) => o.route),
      ['weighted pick: weight 1 of 2', 'weighted pick: weight 1 of 2', undefined],
    );
  });

  // Priority notes and demotion notes are joined for every target of the step.
  test('notes combine', () => {
    const order = planOrder({
      groups: groupsOf([target(0, 'a'), target(1, 'b')]),
      priority: 'speed',
      demoted: (i) => (i === 0 ? 'error rate 90% vs 0% of the next step' : undefined),
      health: (t) => (t.endsWith('|a') ? measured(100) : measured(200)),
      circuit: () => undefined,
      facts: FACTS,
      random: () => 0.5,
    });
    assert.deepEqual(
      order.map((o) => [o.step.model, o.route]),
      [
        ['b', 'priority speed: 200ms EWMA'],
        ['a', 'priority speed: 100ms EWMA; demoted: error rate 90% vs 0% of the next step'],
      ],
    );
  });
});

describe('stepsToDemote', () => {
  const bad: Health = { samples: 10, errorRate: 0.9, latencySamples: 0, latencyMs: 0 };
  const good: Health = { samples: 10, errorRate: 0, latencySamples: 10, latencyMs: 100 };
  const groups = groupsOf([target(0, 'a'), target(1, 'b'), target(2, 'c')]);
  const rows: Array<{ proves: string; health: Health[]; demoted?: number[]; want: number[] }> = [
    // The first step failing against a healthy second: demoted.
    { proves: 'first worse than second', health: [bad, good, good], want: [0] },
    // The last step is never compared (nothing after it).
    { proves: 'last step never', health: [good, good, bad], want: [] },
    // Already demoted: not demoted again (its window keeps running).
    { proves: 'already demoted', health: [bad, good, good], demoted: [0], want: [] },
    // Compared with the listed next step: the middle one, failing, against a healthy third.
    { proves: 'middle step', health: [good, bad, good], want: [1] },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const got = stepsToDemote(
        groups,
        (g) => row.health[g.index] ?? NO_HEALTH,
        (i) => row.demoted?.includes(i) ?? false,
        demotionReason,
      );
      assert.deepEqual(
        got.map((d) => d.index),
        row.want,
      );
    });
  }
});
