// backoffDelay and decideAfterFailure: the pure rules for "retry this step, move on, or stop".
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, type BackoffShape } from '../../src/core/backoff.ts';
import { decideAfterFailure, type Decision, type FailureFacts } from '../../src/core/decide.ts';
import { FAILURE_CLASSES, type Backoff, type FailureClass, type Policy } from '../../src/core/types.ts';
import { seeded } from '../support/seeded-random.ts';

const RETRY_ON: FailureClass[] = ['rateLimited', 'serverError', 'timeout', 'connection'];
const FALLBACK_ON: FailureClass[] = FAILURE_CLASSES.filter((c) => c !== 'badRequest');

function policy(overrides: { retryOn?: FailureClass[]; fallbackOn?: FailureClass[]; backoff?: Partial<Backoff> } = {}): Policy {
  return {
    retryOn: new Set(overrides.retryOn ?? RETRY_ON),
    fallbackOn: new Set(overrides.fallbackOn ?? FALLBACK_ON),
    backoff: { baseMs: 100, maxMs: 1000, jitter: 'none', ...overrides.backoff },
    deadlineMs: 60_000,
    hedgeAfterMs: 0,
  };
}

const fixed = (value: number) => () => value;

describe('backoffDelay', () => {
  const base: Backoff = { baseMs: 100, maxMs: 1000, jitter: 'none' };
  const cases: Array<{ name: string; retry: number; backoff: BackoffShape; random: number; want: number }> = [
    // No jitter: the first retry waits exactly baseMs.
    { name: 'none, retry 1', retry: 1, backoff: base, random: 0.5, want: 100 },
    // The ceiling doubles per retry.
    { name: 'none, retry 2', retry: 2, backoff: base, random: 0.5, want: 200 },
    // ...and again.
    { name: 'none, retry 3', retry: 3, backoff: base, random: 0.5, want: 400 },
    // ...and again, still under the cap.
    { name: 'none, retry 4', retry: 4, backoff: base, random: 0.5, want: 800 },
    // 1600 would pass maxMs: capped at 1000.
    { name: 'none, retry 5 capped', retry: 5, backoff: base, random: 0.5, want: 1000 },
    // Far beyond: still the cap, no overflow.
    { name: 'none, retry 60 capped', retry: 60, backoff: base, random: 0.5, want: 1000 },
    // No jitter ignores random entirely.
    { name: 'none ignores random 0', retry: 2, backoff: base, random: 0, want: 200 },
    // Retry 0 (defensive) uses the base ceiling, never a fraction of it.
    { name: 'none, retry 0', retry: 0, backoff: base, random: 0.5, want: 100 },
    // Full jitter with random 0: retry at once.
    { name: 'full, random 0', retry: 3, backoff: { ...base, jitter: 'full' }, random: 0, want: 0 },
    // Full jitter picks a fraction of the ceiling.
    { name: 'full, random 0.5, retry 1', retry: 1, backoff: { ...base, jitter: 'full' }, random: 0.5, want: 50 },
    // Same fraction of a grown ceiling.
    { name: 'full, random 0.5, retry 3', retry: 3, backoff: { ...base, jitter: 'full' }, random: 0.5, want: 200 },
    // Just under 1: stays strictly below the ceiling (floor).
    { name: 'full, random 0.999, retry 1', retry: 1, backoff: { ...base, jitter: 'full' }, random: 0.999, want: 99 },
    // Jitter applies below the capped ceiling.
    { name: 'full, random 0.999, capped', retry: 8, backoff: { ...base, jitter: 'full' }, random: 0.999, want: 999 },
    // A zero base means no waiting at all.
    { name: 'zero base', retry: 4, backoff: { baseMs: 0, maxMs: 1000, jitter: 'none' }, random: 0.5, want: 0 },
    // maxMs below baseMs caps even the first retry.
    { name: 'max below base', retry: 1, backoff: { baseMs: 500, maxMs: 300, jitter: 'none' }, random: 0.5, want: 300 },
    // Equal jitter (reconnect loops): random 0 still waits half the ceiling, never zero.
    { name: 'equal jitter floor', retry: 3, backoff: { ...base, jitter: 'equal' }, random: 0, want: 200 },
    // Equal jitter at random 0.5: three quarters of the ceiling.
    { name: 'equal jitter middle', retry: 3, backoff: { ...base, jitter: 'equal' }, random: 0.5, want: 300 },
    // Equal jitter is capped like the others.
    { name: 'equal jitter capped', retry: 10, backoff: { ...base, jitter: 'equal' }, random: 0.999, want: 1000 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(backoffDelay(c.retry, c.backoff, fixed(c.random)), c.want);
    });
  }
});

describe('decideAfterFailure', () => {
  interface Row {
    name: string;
    facts: Partial<FailureFacts> & { failure: FailureClass };
    random?: number;
    want: { kind: Decision['kind']; delayMs?: number; reason?: RegExp };
  }
  const facts = (f: Row['facts']): FailureFacts => ({
    attemptsOnStep: 1,
    retries: 2,
    policy: policy(),
    remainingMs: 30_000,
    hasNextStep: true,
    ...f,
  });
  const rows: Row[] = [
    // A rejected request goes back to the client: no retry even with retries left.
    { name: 'badRequest stops', facts: { failure: 'badRequest' }, want: { kind: 'stop', reason: /rejected/ } },
    // badRequest stops even when a next step exists and the policy is permissive.
    { name: 'badRequest stops on the last step too', facts: { failure: 'badRequest', hasNextStep: false }, want: { kind: 'stop' } },
    // Retryable class, retries left: retry after the first backoff step.
    { name: 'serverError, first failure → retry with baseMs', facts: { failure: 'serverError' }, want: { kind: 'retry', delayMs: 100, reason: /backoff/ } },
    // The second failure on the step backs off twice as long.
    { name: 'serverError, second failure → retry with 2×baseMs', facts: { failure: 'serverError', attemptsOnStep: 2 }, want: { kind: 'retry', delayMs: 200 } },
    // Full jitter uses the injected random.
    {
      name: 'connection with full jitter → retry with random share',
      facts: { failure: 'connection', policy: policy({ backoff: { jitter: 'full' } }) },
      random: 0.5,
      want: { kind: 'retry', delayMs: 50 },
    },
    // Rate limited without Retry-After also backs off.
    { name: 'rateLimited without Retry-After → backoff', facts: { failure: 'rateLimited' }, want: { kind: 'retry', delayMs: 100 } },
    // retries+1 attempts made: move on.
    { name: 'retries used up → next', facts: { failure: 'serverError', attemptsOnStep: 3, retries: 2 }, want: { kind: 'next', reason: /retries used up/ } },
    // retries: 0 means a single attempt.
    { name: 'retries 0 → next after one attempt', facts: { failure: 'rateLimited', attemptsOnStep: 1, retries: 0 }, want: { kind: 'next' } },
    // Retries used up and the class is not in fallbackOn: stop.
    {
      name: 'retries used up, not in fallbackOn → stop',
      facts: { failure: 'serverError', attemptsOnStep: 3, retries: 2, policy: policy({ fallbackOn: ['timeout'] }) },
      want: { kind: 'stop', reason: /not in fallbackOn/ },
    },
    // Retries used up wins over a Retry-After that would otherwise be honoured.
    { name: 'retries used up ignores Retry-After', facts: { failure: 'rateLimited', attemptsOnStep: 2, retries: 1, retryAfterMs: 50 }, want: { kind: 'next' } },
    // A class the policy does not retry moves on even with retries left.
    {
      name: 'class not in retryOn → next',
      facts: { failure: 'serverError', policy: policy({ retryOn: ['rateLimited'] }) },
      want: { kind: 'next', reason: /serverError is not in retryOn/ },
    },
    // A silent upstream: try the next step instead of waiting again.
    { name: 'timeout with a next step → next despite retries left', facts: { failure: 'timeout' }, want: { kind: 'next', reason: /timed out/ } },
    // On the last step there is nobody else: retry the timeout.
    { name: 'timeout on the last step → retry', facts: { failure: 'timeout', hasNextStep: false }, want: { kind: 'retry', delayMs: 100 } },
    // If the policy does not fall back on timeout, the step is retried instead.
    {
      name: 'timeout not in fallbackOn → retry',
      facts: { failure: 'timeout', policy: policy({ fallbackOn: ['serverError'] }) },
      want: { kind: 'retry', delayMs: 100 },
    },
    // Retry-After within maxMs is honoured exactly, not backoff.
    {
      name: 'Retry-After within maxMs → retry with exactly that delay',
      facts: { failure: 'rateLimited', retryAfterMs: 700 },
      want: { kind: 'retry', delayMs: 700, reason: /Retry-After/ },
    },
    // Retry-After equal to maxMs is still "within" (only longer moves on).
    { name: 'Retry-After == maxMs → retry', facts: { failure: 'rateLimited', retryAfterMs: 1000 }, want: { kind: 'retry', delayMs: 1000 } },
    // Retry-After 0 means retry at once.
    { name: 'Retry-After 0 → retry now', facts: { failure: 'serverError', retryAfterMs: 0 }, want: { kind: 'retry', delayMs: 0 } },
    // Retry-After on a 503 wins over backoff too.
    {
      name: 'Retry-After on serverError overrides backoff',
      facts: { failure: 'serverError', attemptsOnStep: 2, retryAfterMs: 30 },
      want: { kind: 'retry', delayMs: 30 },
    },
    // A wait longer than maxMs is better spent on the next step.
    {
      name: 'Retry-After > maxMs with a next step → next',
      facts: { failure: 'rateLimited', retryAfterMs: 5000 },
      want: { kind: 'next', reason: /exceeds backoff.maxMs/ },
    },
    // On the last step, a long Retry-After is waited for (it is the only hope left).
    {
      name: 'Retry-After > maxMs on the last step → retry',
      facts: { failure: 'rateLimited', retryAfterMs: 5000, hasNextStep: false },
      want: { kind: 'retry', delayMs: 5000 },
    },
    // A long Retry-After with a class not in fallbackOn is waited for.
    {
      name: 'Retry-After > maxMs, class not in fallbackOn → retry',
      facts: { failure: 'rateLimited', retryAfterMs: 5000, policy: policy({ fallbackOn: ['serverError'] }) },
      want: { kind: 'retry', delayMs: 5000 },
    },
    // Waiting past the deadline is pointless: leave the step.
    {
      name: 'Retry-After ≥ remaining deadline → next',
      facts: { failure: 'rateLimited', retryAfterMs: 800, remainingMs: 800 },
      want: { kind: 'next', reason: /exceeds the 800ms left/ },
    },
    // ...also on the last step (the loop then ends).
    {
      name: 'Retry-After ≥ remaining on the last step → next',
      facts: { failure: 'rateLimited', retryAfterMs: 900, remainingMs: 500, hasNextStep: false },
      want: { kind: 'next' },
    },
    // ...and stop when the class may not fall back.
    {
      name: 'Retry-After ≥ remaining, not in fallbackOn → stop',
      facts: { failure: 'rateLimited', retryAfterMs: 900, remainingMs: 500, policy: policy({ fallbackOn: ['serverError'] }) },
      want: { kind: 'stop' },
    },
    // Retry-After just under the remaining time is still honoured.
    {
      name: 'Retry-After just under remaining → retry',
      facts: { failure: 'rateLimited', retryAfterMs: 499, remainingMs: 500 },
      want: { kind: 'retry', delayMs: 499 },
    },
    // Backoff that would reach the deadline: leave the step.
    { name: 'backoff ≥ remaining → next', facts: { failure: 'serverError', remainingMs: 100 }, want: { kind: 'next', reason: /deadline/ } },
    // Backoff just under the remaining time is fine.
    { name: 'backoff < remaining → retry', facts: { failure: 'serverError', remainingMs: 101 }, want: { kind: 'retry', delayMs: 100 } },
    // Backoff past the deadline and no fallback allowed: stop.
    {
      name: 'backoff ≥ remaining, not in fallbackOn → stop',
      facts: { failure: 'connection', remainingMs: 50, policy: policy({ fallbackOn: [] }) },
      want: { kind: 'stop' },
    },
    // A refused prompt is not retried on the same model.
    { name: 'contentFiltered → next without retry', facts: { failure: 'contentFiltered' }, want: { kind: 'next', reason: /not in retryOn/ } },
    // A prompt too long for this model: another model may take it.
    { name: 'contextLength → next without retry', facts: { failure: 'contextLength' }, want: { kind: 'next' } },
    // A bad key will not get better by retrying.
    { name: 'authFailed → next without retry', facts: { failure: 'authFailed' }, want: { kind: 'next' } },
    // A policy that does not fall back on content filtering stops there.
    {
      name: 'contentFiltered removed from fallbackOn → stop',
      facts: {
        failure: 'contentFiltered',
        policy: policy({ fallbackOn: ['rateLimited', 'serverError', 'timeout', 'connection', 'authFailed', 'contextLength'] }),
      },
      want: { kind: 'stop', reason: /contentFiltered is not in fallbackOn/ },
    },
    // Same for authFailed.
    {
      name: 'authFailed removed from fallbackOn → stop',
      facts: { failure: 'authFailed', policy: policy({ fallbackOn: ['serverError'] }) },
      want: { kind: 'stop' },
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = decideAfterFailure(facts(row.facts), fixed(row.random ?? 0.5));
      assert.equal(decision.kind, row.want.kind, `reason: ${decision.reason}`);
      if (row.want.delayMs !== undefined) {
        assert.ok(decision.kind === 'retry');
        assert.equal(decision.delayMs, row.want.delayMs);
      }
      if (row.want.reason) assert.match(decision.reason, row.want.reason);
    });
  }
});

describe('decideAfterFailure property: never more than retries+1 attempts on a step', () => {
  test('2000 simulated steps of repeated failures', () => {
    const rand = seeded(20260301);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
    let retried = 0;
    for (let run = 0; run < 2000; run++) {
      const retries = Math.floor(rand() * 11); // the schema allows 0..10
      const failure = pick(FAILURE_CLASSES);
      const p = policy({
        retryOn: RETRY_ON.filter(() => rand() < 0.8),
        fallbackOn: FALLBACK_ON.filter(() => rand() < 0.8),
        backoff: { baseMs: Math.floor(rand() * 500), maxMs: 1000 + Math.floor(rand() * 9000), jitter: rand() < 0.5 ? 'full' : 'none' },
      });
      const hasNextStep = rand() < 0.5;
      let remainingMs = 1_000_000; // large enough that the deadline never cuts the loop short
      let attempts = 0;
      for (;;) {
        attempts++;
        assert.ok(attempts <= retries + 1, `attempt ${attempts} with retries ${retries} (${failure})`);
        const retryAfterMs = rand() < 0.3 ? Math.floor(rand() * 20_000) : undefined;
        const decision = decideAfterFailure({ failure, retryAfterMs, attemptsOnStep: attempts, retries, policy: p, remainingMs, hasNextStep }, rand);
        if (decision.kind !== 'retry') break;
        assert.ok(decision.delayMs >= 0 && decision.delayMs < remainingMs, `delay ${decision.delayMs} within the ${remainingMs}ms left`);
        remainingMs -= decision.delayMs;
        retried++;
      }
      // A retryable class on the last step with no deadline pressure uses every retry.
      if (!hasNextStep && p.retryOn.has(failure)) assert.equal(attempts, retries + 1, `${failure} on the last step`);
    }
    // The simulation must actually exercise retries, or it proves nothing.
    assert.ok(retried > 1000, `only ${retried} retries simulated`);
  });
});
