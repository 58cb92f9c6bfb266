// runChain: the engine loop over a chain's steps, driven by a fake clock and scripted attempts.
// Each row gives the chain's shape, what each attempt answers (and how long it takes), and what
// the loop must record, return and sleep.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttemptContext } from '../../src/engine/outcome.ts';
import { runChain, type ChainEnd, type ChainResult } from '../../src/engine/run-chain.ts';
import { BreakerRegistry } from '../../src/engine/breakers.ts';
import type { Clock } from '../../src/engine/clock.ts';
import type { AttemptOutcome, AttemptVerdict, UpstreamFailure } from '../../src/engine/outcome.ts';
import { FAILURE_CLASSES, targetKey, type Chain, type FailureClass, type Price, type Provider, type Target, type Usage } from '../../src/core/types.ts';

/** What a successful fake attempt hands back. */
interface Answer {
  text: string;
  usage?: Usage;
}

interface ScriptedAttempt {
  /** How long the attempt takes on the fake clock. */
  ms: number;
  outcome: AttemptOutcome<Answer>;
  /** Runs when the attempt finishes (e.g. the caller hangs up). */
  then?: (controller: AbortController) => void;
}

const START = 1_000; // the fake clock does not start at 0, so startedAt is really used

function ok(ms = 10, usage?: Usage): ScriptedAttempt {
  return { ms, outcome: { kind: 'success', value: { text: 'hello', usage }, status: 200 } };
}

/** A failed attempt; `answered` gives it an upstream response (status + body kept). */
function fail(
  failureClass: FailureClass,
  extra: { ms?: number; status?: number; retryAfterMs?: number; answered?: boolean; usage?: Usage; then?: ScriptedAttempt['then'] } = {},
): ScriptedAttempt {
  const failure: UpstreamFailure = { class: failureClass, message: `scripted ${failureClass}` };
  if (extra.status !== undefined) failure.status = extra.status;
  if (extra.retryAfterMs !== undefined) failure.retryAfterMs = extra.retryAfterMs;
  if (extra.usage) failure.usage = extra.usage;
  if (extra.answered ?? extra.status !== undefined) {
    failure.response = { status: extra.status ?? 500, contentType: 'application/json', body: `{"error":{"message":"${failureClass}"}}` };
  }
  return { ms: extra.ms ?? 10, outcome: { kind: 'failure', failure }, then: extra.then };
}

const abortNow = (controller: AbortController): void => controller.abort(new Error('caller went away'));

interface StepShape {
  retries?: number;
  price?: Price;
}

function buildChain(shape: StepShape[], options: { deadlineMs?: number; failureThreshold?: number } = {}): Chain {
  const provider: Provider = { name: 'mock', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: 'sk-test-key', keySource: 'env:K', headers: {} };
  const steps: Target[] = shape.map((s, index) => ({
    index,
    provider,
    model: `model-${index}`,
    retries: s.retries ?? 0,
    timeouts: { firstByteMs: 1000, idleMs: 1000, totalMs: 5000 },
    price: s.price,
    target: targetKey(provider, `model-${index}`),
  }));
  return {
    name: 'test',
    model: 'test',
    steps,
    policy: {
      retryOn: new Set<FailureClass>(['rateLimited', 'serverError', 'timeout', 'connection']),
      fallbackOn: new Set<FailureClass>(FAILURE_CLASSES.filter((c) => c !== 'badRequest')),
      backoff: { baseMs: 100, maxMs: 1000, jitter: 'none' },
      deadlineMs: options.deadlineMs ?? 10_000,
      hedgeAfterMs: 0,
    },
    breaker: { failureThreshold: options.failureThreshold ?? 1000, windowMs: 60_000, cooldownMs: 60_000 },
    source: 'test.yaml#1',
  };
}

type FakeClock = Clock & { sleeps: number[]; advance(ms: number): void };

/** A clock that only moves when attempts take time or the loop sleeps; sleep resolves at once. */
function fakeClock(sleepLagMs: number): FakeClock {
  let t = START;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    epochMs: () => 1_770_000_000_000 + t,
    advance(ms: number) {
      t += ms;
    },
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      if (signal.aborted) throw signal.reason;
      t += ms + sleepLagMs; // a late timer: the lag models an overloaded event loop
    },
  };
}

interface Row {
  name: string;
  chain: StepShape[];
  deadlineMs?: number;
  failureThreshold?: number;
  /** Scripted outcomes per step index, in order. */
  script: ScriptedAttempt[][];
  skip?: Record<number, string>;
  sleepLagMs?: number;
  abortBeforeStart?: boolean;
  want: {
    attempts: Array<[step: number, attempt: number, outcome: AttemptVerdict]>;
    kind: 'success' | 'failure';
    /** The winning step (success) or how the chain ended (failure). */
    step?: number;
    end?: ChainEnd;
    last?: FailureClass;
    lastAnswered?: FailureClass;
    sleeps: number[];
  };
  /** Extra assertions on the result. */
  check?: (result: ChainResult<Answer>) => void;
}

const PRICE: Price = { inputPerMTok: 1, outputPerMTok: 2 };

const rows: Row[] = [
  // The happy path: one attempt, no sleep, later steps untouched.
  {
    name: 'first step succeeds',
    chain: [{ retries: 1 }, {}],
    script: [[ok(40)], []],
    want: { attempts: [[0, 1, 'ok']], kind: 'success', step: 0, sleeps: [] },
    check: (r) => {
      assert.equal(r.attempts[0]?.ms, 40, 'ms measured on the clock');
      assert.equal(r.attempts[0]?.status, 200);
      assert.equal(r.attempts[0]?.costUSD, 0, 'no price, no cost');
    },
  },
  // A 500 is retried on the same step after the first backoff (baseMs).
  {
    name: '500 then success on retry',
    chain: [{ retries: 1 }, {}],
    script: [[fail('serverError', { status: 500, ms: 25 }), ok()], []],
    want: {
      attempts: [
        [0, 1, 'serverError'],
        [0, 2, 'ok'],
      ],
      kind: 'success',
      step: 0,
      sleeps: [100],
    },
    check: (r) => {
      assert.equal(r.attempts[0]?.status, 500);
      assert.equal(r.attempts[0]?.ms, 25);
      assert.match(r.attempts[0]?.reason ?? '', /scripted serverError; backoff/, 'the record says what was decided');
    },
  },
  // retries: 2 means three attempts, backing off 100 then 200, then the next step answers.
  {
    name: '500s exhaust retries, next step succeeds',
    chain: [{ retries: 2 }, { retries: 2 }],
    script: [[fail('serverError', { status: 500 }), fail('serverError', { status: 500 }), fail('serverError', { status: 500 })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'serverError'],
        [0, 2, 'serverError'],
        [0, 3, 'serverError'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [100, 200],
    },
    check: (r) => assert.match(r.attempts[2]?.reason ?? '', /retries used up/),
  },
  // A rejected request stops at once: no retry, later steps never called.
  {
    name: 'badRequest stops immediately',
    chain: [{ retries: 3 }, {}],
    script: [[fail('badRequest', { status: 400 })], []],
    want: { attempts: [[0, 1, 'badRequest']], kind: 'failure', end: 'badRequest', last: 'badRequest', lastAnswered: 'badRequest', sleeps: [] },
  },
  // Every step fails: the last failure (a timeout with no response) is `last`; the earlier 503 with a body is `lastAnswered`.
  {
    name: 'all steps fail; last is a timeout, lastAnswered the earlier 503',
    chain: [{}, {}],
    script: [[fail('serverError', { status: 503 })], [fail('timeout', { ms: 1000 })]],
    want: {
      attempts: [
        [0, 1, 'serverError'],
        [1, 1, 'timeout'],
      ],
      kind: 'failure',
      end: 'exhausted',
      last: 'timeout',
      lastAnswered: 'serverError',
      sleeps: [],
    },
    check: (r) => {
      assert.ok(r.kind === 'failure');
      assert.equal(r.lastAnswered?.status, 503);
      assert.equal(r.last?.response, undefined);
    },
  },
  // No upstream ever answered: lastAnswered stays unset (the proxy then writes its own error).
  {
    name: 'all steps fail without any response',
    chain: [{}, {}],
    script: [[fail('connection')], [fail('connection')]],
    want: {
      attempts: [
        [0, 1, 'connection'],
        [1, 1, 'connection'],
      ],
      kind: 'failure',
      end: 'exhausted',
      last: 'connection',
      sleeps: [],
    },
  },
  // Retry-After within maxMs is the exact sleep, not the backoff.
  {
    name: 'Retry-After honoured as the sleep',
    chain: [{ retries: 1 }, {}],
    script: [[fail('rateLimited', { status: 429, retryAfterMs: 700 }), ok()], []],
    want: {
      attempts: [
        [0, 1, 'rateLimited'],
        [0, 2, 'ok'],
      ],
      kind: 'success',
      step: 0,
      sleeps: [700],
    },
  },
  // Retry-After longer than maxMs: the next step is tried at once, without waiting.
  {
    name: 'Retry-After > maxMs moves on without sleeping',
    chain: [{ retries: 2 }, {}],
    script: [[fail('rateLimited', { status: 429, retryAfterMs: 5000 })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'rateLimited'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [],
    },
  },
  // A timeout with a next step moves on instead of waiting on the same silence again.
  {
    name: 'timeout falls back despite retries left',
    chain: [{ retries: 3 }, {}],
    script: [[fail('timeout', { ms: 1000 })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'timeout'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [],
    },
  },
  // contextLength is never retried on the same step, even with retries left.
  {
    name: 'contextLength goes to the next step without retry',
    chain: [{ retries: 3 }, {}],
    script: [[fail('contextLength', { status: 400 })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'contextLength'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [],
    },
  },
  // The timer fired late and the deadline passed during the sleep: no further attempt is made.
  {
    name: 'deadline passed during the sleep',
    chain: [{ retries: 2 }, {}],
    deadlineMs: 1000,
    sleepLagMs: 950,
    script: [[fail('serverError', { status: 500, ms: 100 })], []],
    want: { attempts: [[0, 1, 'serverError']], kind: 'failure', end: 'deadline', last: 'serverError', lastAnswered: 'serverError', sleeps: [100] },
  },
  // An attempt that used up the whole deadline: the next step is not started.
  {
    name: 'deadline used up by an attempt',
    chain: [{}, {}],
    deadlineMs: 1000,
    script: [[fail('timeout', { ms: 1000 })], []],
    want: { attempts: [[0, 1, 'timeout']], kind: 'failure', end: 'deadline', last: 'timeout', sleeps: [] },
  },
  // A backoff that would pass the deadline is not slept: the step is left (here the last one, so the chain ends).
  {
    name: 'backoff longer than the time left ends the chain',
    chain: [{ retries: 2 }],
    deadlineMs: 150,
    script: [[fail('serverError', { status: 500, ms: 60 })]],
    want: { attempts: [[0, 1, 'serverError']], kind: 'failure', end: 'exhausted', last: 'serverError', lastAnswered: 'serverError', sleeps: [] },
  },
  // skipReason skips a step without calling it; the record says why.
  {
    name: 'skipReason skips a step',
    chain: [{}, {}],
    skip: { 0: 'environment variable DEEPSEEK_API_KEY is not set' },
    script: [[], [ok()]],
    want: {
      attempts: [
        [0, 0, 'skipped'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [],
    },
    check: (r) => assert.equal(r.attempts[0]?.reason, 'environment variable DEEPSEEK_API_KEY is not set'),
  },
  // Every step skipped: the chain is exhausted with no failure to report.
  {
    name: 'all steps skipped',
    chain: [{}, {}],
    skip: { 0: 'over budget', 1: 'over budget' },
    script: [[], []],
    want: {
      attempts: [
        [0, 0, 'skipped'],
        [1, 0, 'skipped'],
      ],
      kind: 'failure',
      end: 'exhausted',
      sleeps: [],
    },
  },
  // A circuit opened by this request's own failure skips the retry (no request) and moves on.
  {
    name: 'circuit opens after the first failure; the retry is skipped',
    chain: [{ retries: 1 }, {}],
    failureThreshold: 1,
    script: [[fail('serverError', { status: 500 })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'serverError'],
        [0, 0, 'skipped'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [100],
    },
    check: (r) => assert.equal(r.attempts[1]?.reason, 'circuit open'),
  },
  // The caller was gone before the loop started: nothing is attempted.
  {
    name: 'caller aborted before the start',
    chain: [{}],
    abortBeforeStart: true,
    script: [[]],
    want: { attempts: [], kind: 'failure', end: 'aborted', sleeps: [] },
  },
  // The attempt saw the caller go away: recorded as aborted, no fallback.
  {
    name: 'attempt reports the caller aborted',
    chain: [{ retries: 2 }, {}],
    script: [[{ ms: 30, outcome: { kind: 'aborted' } }], []],
    want: { attempts: [[0, 1, 'aborted']], kind: 'failure', end: 'aborted', sleeps: [] },
  },
  // The caller hung up during the backoff: the sleep rejects and the loop ends as aborted.
  {
    name: 'caller aborted during the backoff sleep',
    chain: [{ retries: 2 }, {}],
    script: [[fail('serverError', { status: 500, then: abortNow })], []],
    want: { attempts: [[0, 1, 'serverError']], kind: 'failure', end: 'aborted', last: 'serverError', lastAnswered: 'serverError', sleeps: [100] },
  },
  // The caller hung up while a step failed and the loop moves on: no next step is started.
  {
    name: 'caller aborted before the next step',
    chain: [{}, {}],
    script: [[fail('connection', { then: abortNow })], []],
    want: { attempts: [[0, 1, 'connection']], kind: 'failure', end: 'aborted', last: 'connection', sleeps: [] },
  },
  // usageOf gives the winner's usage; with a price it becomes the record's costUSD.
  {
    name: 'usage of a success is costed',
    chain: [{ price: PRICE }],
    script: [[ok(10, { inputTokens: 1000, outputTokens: 500, cachedInputTokens: 0 })]],
    want: { attempts: [[0, 1, 'ok']], kind: 'success', step: 0, sleeps: [] },
    check: (r) => {
      assert.equal(r.attempts[0]?.costUSD, (1000 * 1 + 500 * 2) / 1e6);
      assert.deepEqual(r.attempts[0]?.usage, { inputTokens: 1000, outputTokens: 500, cachedInputTokens: 0 });
    },
  },
  // A failed attempt that was billed (e.g. a content_filter finish) is costed at its own step's price.
  {
    name: 'failed attempt carrying usage is costed',
    chain: [{ price: PRICE }, { price: { inputPerMTok: 10, outputPerMTok: 10 } }],
    script: [[fail('contentFiltered', { usage: { inputTokens: 100, outputTokens: 50, cachedInputTokens: 0 } })], [ok()]],
    want: {
      attempts: [
        [0, 1, 'contentFiltered'],
        [1, 1, 'ok'],
      ],
      kind: 'success',
      step: 1,
      sleeps: [],
    },
    check: (r) => {
      assert.equal(r.attempts[0]?.costUSD, (100 * 1 + 50 * 2) / 1e6);
      assert.deepEqual(r.attempts[0]?.usage, { inputTokens: 100, outputTokens: 50, cachedInputTokens: 0 });
      assert.equal(r.attempts[1]?.costUSD, 0, 'a success without usage costs nothing known');
    },
  },
];

describe('runChain', () => {
  for (const row of rows) {
    test(row.name, async () => {
      const chain = buildChain(row.chain, { deadlineMs: row.deadlineMs, failureThreshold: row.failureThreshold });
      const clock = fakeClock(row.sleepLagMs ?? 0);
      const controller = new AbortController();
      if (row.abortBeforeStart) controller.abort(new Error('gone'));
      const remaining = row.script.map((list) => [...list]);
      const calls: Array<[number, number]> = [];
      const breakers = new BreakerRegistry();
      try {
        const result = await runChain<Answer>(
          chain,
          {
            clock,
            random: () => 0.5,
            breakers,
            attempt: async (step: Target, ctx: AttemptContext) => {
              calls.push([step.index, ctx.attempt]);
              assert.equal(ctx.deadlineAt, START + chain.policy.deadlineMs, 'the deadline counts from startedAt');
              // These chains never hedge, so no attempt is cancelled alone: each gets the caller's
              // signal itself (a hedged attempt's own signal is tested in routing.test.ts).
              assert.equal(ctx.signal, controller.signal);
              assert.equal(ctx.signal.aborted, controller.signal.aborted);
              const next = remaining[step.index]?.shift();
              if (!next) throw new Error(`step ${step.index} was called more often than scripted`);
              clock.advance(next.ms);
              next.then?.(controller);
              return next.outcome;
            },
            skipReason: (step) => row.skip?.[step.index],
            usageOf: (value) => value.usage,
          },
          START,
          controller.signal,
        );

        const { want } = row;
        assert.deepEqual(
          result.attempts.map((a) => [a.step, a.attempt, a.outcome]),
          want.attempts,
        );
        assert.deepEqual(clock.sleeps, want.sleeps);
        assert.equal(result.kind, want.kind);
        if (result.kind === 'success') {
          assert.equal(result.step.index, want.step);
          assert.equal(result.value.text, 'hello');
        } else {
          assert.equal(result.end, want.end);
          assert.equal(result.last?.class, want.last);
          assert.equal(result.lastAnswered?.class, want.lastAnswered);
        }
        // Every scripted attempt was used, and none beyond: the loop called exactly what the row expects.
        assert.deepEqual(
          remaining.map((list) => list.length),
          row.script.map(() => 0),
          'all scripted attempts used',
        );
        assert.deepEqual(
          calls,
          want.attempts.filter(([, , outcome]) => outcome !== 'skipped').map(([s, a]) => [s, a]),
        );
        // Records name the step's provider and model.
        for (const record of result.attempts) {
          assert.equal(record.provider, 'mock');
          assert.equal(record.model, `model-${record.step}`);
        }
        row.check?.(result);
      } finally {
        breakers.shutdown();
      }
    });
  }
});

// An answer that won can still fail later (a stream broken after its first event): resume()
// counts it against the target and goes on down the chain; failLater() only counts it.
describe('runChain: a winner that fails later', () => {
  function fixedClock(): Clock {
    let t = START;
    return {
      now: () => t,
      epochMs: () => 1_770_000_000_000 + t,
      sleep: async (ms) => {
        t += ms;
      },
    };
  }
  const cut: UpstreamFailure = { class: 'connection', status: 200, message: 'upstream_stream_cut: the upstream connection broke' };

  test('resume records the failure on the winner, counts it for the breaker, and the next step is tried with the new attempt function', async () => {
    const chain = buildChain([{}, {}], { failureThreshold: 1 });
    const breakers = new BreakerRegistry();
    try {
      const original: number[] = [];
      const result = await runChain<Answer>(
        chain,
        {
          clock: fixedClock(),
          random: () => 0,
          breakers,
          skipReason: () => undefined,
          attempt: async (step) => {
            original.push(step.index);
            return ok().outcome;
          },
        },
        START,
        new AbortController().signal,
      );
      assert.ok(result.kind === 'success');
      const continued: number[] = [];
      const next = await result.resume(cut, async (step: Target, _ctx: AttemptContext) => {
        continued.push(step.index);
        return { kind: 'success', value: { text: 'the rest' }, status: 200 };
      });
      assert.ok(next.kind === 'success');
      assert.equal(next.value.text, 'the rest');
      assert.deepEqual(original, [0], 'the original attempt function is not called again');
      assert.deepEqual(continued, [1]);
      assert.deepEqual(
        next.attempts.map((a) => [a.step, a.outcome]),
        [
          [0, 'connection'],
          [1, 'ok'],
        ],
      );
      assert.match(next.attempts[0]?.reason ?? '', /upstream_stream_cut.*; retries used up/);
      assert.equal(breakers.state(chain.steps[0]?.target ?? ''), 'open', 'threshold 1: the late failure opened the circuit');
      assert.equal(breakers.routing.health(chain.steps[0]?.target ?? '').errorRate > 0, true, 'health saw the failure');
    } finally {
      breakers.shutdown();
    }
  });

  test('resume with no step left ends the chain exhausted, with the late failure as the last', async () => {
    const chain = buildChain([{}]);
    const breakers = new BreakerRegistry();
    try {
      const result = await runChain<Answer>(
        chain,
        { clock: fixedClock(), random: () => 0, breakers, skipReason: () => undefined, attempt: async () => ok().outcome },
        START,
        new AbortController().signal,
      );
      assert.ok(result.kind === 'success');
      const next = await result.resume(cut);
      assert.ok(next.kind === 'failure');
      assert.equal(next.end, 'exhausted');
      assert.equal(next.last?.class, 'connection');
      assert.equal(next.lastAnswered, undefined, 'a broken stream is no upstream error to return');
    } finally {
      breakers.shutdown();
    }
  });

  test('failLater records and counts the failure without trying anything else', async () => {
    const chain = buildChain([{}, {}], { failureThreshold: 1 });
    const breakers = new BreakerRegistry();
    try {
      let calls = 0;
      const result = await runChain<Answer>(
        chain,
        {
          clock: fixedClock(),
          random: () => 0,
          breakers,
          skipReason: () => undefined,
          attempt: async () => {
            calls++;
            return ok().outcome;
          },
        },
        START,
        new AbortController().signal,
      );
      assert.ok(result.kind === 'success');
      result.failLater(cut, 'tool-call deltas were already delivered');
      assert.equal(calls, 1);
      assert.deepEqual(
        result.attempts.map((a) => [a.step, a.outcome]),
        [[0, 'connection']],
      );
      assert.match(result.attempts[0]?.reason ?? '', /tool-call deltas/);
      assert.equal(breakers.state(chain.steps[0]?.target ?? ''), 'open');
    } finally {
      breakers.shutdown();
    }
  });
});
