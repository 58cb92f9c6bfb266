// runChain with routing: hedges (win, lose, bounded, loser cancelled and billed if it answered),
// budgets (skip, all too expensive), chain-wide rate-limit marks, local token buckets, step
// groups, priority modes and adaptive demotion with recovery. Attempts are scripted on a fake
// clock (test/support/fake-clock.ts): each sleeps its time on the clock with its own signal, so
// a cancelled attempt really stops, and time moves only as timers fire.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runChain, type ChainEnd, type ChainResult, type EngineDeps, type RequestInfo } from '../../src/engine/run-chain.ts';
import { requestFacts } from '../../src/wire/openai-chat/facts.ts';
import { BreakerRegistry } from '../../src/engine/breakers.ts';
import type { AttemptOutcome, AttemptRecord, UpstreamFailure } from '../../src/engine/outcome.ts';
import { DEMOTION_MS, MIN_SAMPLES } from '../../src/routing/health.ts';
import {
  FAILURE_CLASSES,
  targetKey,
  type Chain,
  type FailureClass,
  type Limits,
  type Policy,
  type Price,
  type Provider,
  type Target,
  type Usage,
} from '../../src/core/types.ts';
import type { HeaderBag } from '../../src/core/retry-after.ts';
import { FakeClock, FAKE_START } from '../support/fake-clock.ts';

interface Answer {
  model: string;
  usage?: Usage;
  headers?: HeaderBag;
}

/** One scripted attempt: how long it takes and how it ends; `deaf` ignores cancellation (it answers anyway). */
interface Script {
  ms: number;
  outcome: AttemptOutcome<Answer>;
  deaf?: boolean;
}

const provider: Provider = { name: 'mock', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: 'k', keySource: 'env:K', headers: {} };

function ok(model: string, ms: number, extra: { usage?: Usage; headers?: HeaderBag; deaf?: boolean } = {}): Script {
  return { ms, deaf: extra.deaf, outcome: { kind: 'success', status: 200, value: { model, usage: extra.usage, headers: extra.headers } } };
}

function fail(failureClass: FailureClass, ms: number, extra: Partial<UpstreamFailure> = {}): Script {
  return { ms, outcome: { kind: 'failure', failure: { class: failureClass, message: `scripted ${failureClass}`, ...extra } } };
}

interface StepShape {
  model?: string;
  targets?: Array<{ model: string; weight?: number }>;
  retries?: number;
  price?: Price;
  maxOutputTokens?: number;
  limits?: Limits;
}

function buildChain(shapes: StepShape[], policy: Partial<Policy> = {}, extra: { budget?: number; failureThreshold?: number } = {}): Chain {
  const steps: Target[] = shapes.flatMap((s, index) =>
    (s.targets ?? [{ model: s.model ?? `m${index}` }]).map((t): Target => ({
      index,
      provider,
      model: t.model,
      retries: s.retries ?? 0,
      timeouts: { firstByteMs: 5000, idleMs: 5000, totalMs: 5000 },
      target: targetKey(provider, t.model),
      ...(s.targets ? { weight: 'weight' in t ? t.weight : 1 } : {}),
      ...(s.price ? { price: s.price } : {}),
      ...(s.maxOutputTokens ? { maxOutputTokens: s.maxOutputTokens } : {}),
      ...(s.limits ? { limits: s.limits } : {}),
    })),
  );
  return {
    name: 'chat',
    model: 'chat',
    steps,
    policy: {
      retryOn: new Set<FailureClass>(['rateLimited', 'serverError', 'timeout', 'connection']),
      fallbackOn: new Set<FailureClass>(FAILURE_CLASSES.filter((c) => c !== 'badRequest')),
      backoff: { baseMs: 100, maxMs: 1000, jitter: 'none' },
      deadlineMs: 60_000,
      hedgeAfterMs: 0,
      ...policy,
    },
    breaker: { failureThreshold: extra.failureThreshold ?? 1000, windowMs: 60_000, cooldownMs: 60_000 },
    ...(extra.budget !== undefined ? { maxCostPerRequestUSD: extra.budget } : {}),
    source: 'test',
  };
}

/** Everything one test shares across its requests: clock, breakers (and routing memory), scripts, calls. */
class World {
  readonly clock = new FakeClock();
  readonly breakers = new BreakerRegistry(
    () => {},
    () => this.clock.now(),
  );
  readonly scripts = new Map<string, Script[]>();
  /** Every attempt started, as `model@time`. */
  readonly calls: string[] = [];
  /** Models whose attempt saw its signal abort. */
  readonly cancelled: string[] = [];
  readonly discarded: string[] = [];

  script(model: string, ...scripts: Script[]): this {
    this.scripts.set(model, [...(this.scripts.get(model) ?? []), ...scripts]);
    return this;
  }

  deps(request?: RequestInfo, random: () => number = () => 0.5): EngineDeps<Answer> {
    return {
      clock: this.clock,
      random,
      breakers: this.breakers,
      skipReason: () => undefined,
      usageOf: (a) => a.usage,
      headersOf: (a) => a.headers,
      discard: (a) => void this.discarded.push(a.model),
      request,
      attempt: async (step, ctx) => {
        this.calls.push(`${step.model}@${this.clock.now() - FAKE_START}`);
        const next = this.scripts.get(step.model)?.shift();
        if (!next) throw new Error(`${step.model} was called more often than scripted`);
        try {
          await this.clock.after(next.ms, next.deaf ? new AbortController().signal : ctx.signal);
        } catch {
          this.cancelled.push(step.model);
          return { kind: 'aborted' };
        }
        return next.outcome;
      },
    };
  }

  async run(chain: Chain, request?: RequestInfo, options: { random?: () => number; signal?: AbortSignal } = {}): Promise<ChainResult<Answer>> {
    const result = runChain(chain, this.deps(request, options.random), this.clock.now(), options.signal ?? new AbortController().signal);
    return this.clock.runUntil(result);
  }

  /** All scripts used. */
  assertDone(): void {
    for (const [model, left] of this.scripts) assert.equal(left.length, 0, `${model}: ${left.length} scripted attempts unused`);
  }

  shutdown(): void {
    this.breakers.shutdown();
  }
}

const summary = (attempts: AttemptRecord[]): string[] => attempts.map((a) => `${a.model}=${a.outcome}${a.hedge ? `(hedge ${a.hedge})` : ''}`);
const elapsed = (w: World): number => w.clock.now() - FAKE_START;

let world: World | undefined;
const newWorld = (): World => (world = new World());
afterEach(() => {
  world?.shutdown();
  world = undefined;
});

describe('hedging', () => {
  interface HedgeRow {
    proves: string;
    steps: string[];
    hedge: { afterMs: number; maxInFlight?: number };
    scripts: Record<string, Script[]>;
    want: { winner?: string; end?: ChainEnd; records: string[]; calls: string[]; cancelled: string[]; at: number };
    check?: (r: ChainResult<Answer>, w: World) => void;
  }
  const rows: HedgeRow[] = [
    // The primary is silent past afterMs: the next step starts in parallel, answers first, and the primary is cancelled at once.
    {
      proves: 'the hedge wins and the primary is cancelled',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 5000)], b: [ok('b', 100)] },
      want: { winner: 'b', records: ['a=cancelled', 'b=ok(hedge won)'], calls: ['a@0', 'b@200'], cancelled: ['a'], at: 300 },
      check: (r) => {
        assert.match(r.attempts[1]?.route ?? '', /^hedge: no first byte from mock\/a after 200ms$/);
        assert.equal(r.attempts[0]?.reason, 'cancelled: mock/b answered first');
        assert.equal(r.attempts[0]?.ms, 300, 'the loser ran until the winner answered');
        assert.equal(r.attempts[1]?.ms, 100);
      },
    },
    // The primary answers after the hedge started but before it: the hedge is the one cancelled, the winner's record is last.
    {
      proves: 'the primary wins; the hedge is lost',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 250)], b: [ok('b', 1000)] },
      want: { winner: 'a', records: ['b=cancelled(hedge lost)', 'a=ok'], calls: ['a@0', 'b@200'], cancelled: ['b'], at: 250 },
    },
    // An answer before afterMs: no hedge at all.
    {
      proves: 'fast primary: no hedge',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 150)] },
      want: { winner: 'a', records: ['a=ok'], calls: ['a@0'], cancelled: [], at: 150 },
    },
    // maxInFlight 1: with a hedge racing, the third step does not start even when both stay silent.
    {
      proves: 'bounded: one hedge in flight',
      steps: ['a', 'b', 'c'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 1000)], b: [ok('b', 2000)] },
      want: { winner: 'a', records: ['b=cancelled(hedge lost)', 'a=ok'], calls: ['a@0', 'b@200'], cancelled: ['b'], at: 1000 },
    },
    // maxInFlight 2: a second hedge starts afterMs after the first.
    {
      proves: 'maxInFlight 2: a second hedge',
      steps: ['a', 'b', 'c'],
      hedge: { afterMs: 200, maxInFlight: 2 },
      scripts: { a: [ok('a', 1000)], b: [ok('b', 2000)], c: [ok('c', 100)] },
      want: {
        winner: 'c',
        records: ['a=cancelled', 'b=cancelled(hedge lost)', 'c=ok(hedge won)'],
        calls: ['a@0', 'b@200', 'c@400'],
        cancelled: ['a', 'b'],
        at: 500,
      },
    },
    // The primary fails while the hedge runs: no retry of the primary, the hedge carries on and answers.
    {
      proves: 'primary fails during the hedge; the hedge answers',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [fail('serverError', 300, { status: 500 })], b: [ok('b', 400)] },
      want: { winner: 'b', records: ['a=serverError', 'b=ok(hedge won)'], calls: ['a@0', 'b@200'], cancelled: [], at: 600 },
      check: (r) => assert.match(r.attempts[0]?.reason ?? '', /another attempt is still in flight$/),
    },
    // The hedge fails; the primary still answers.
    {
      proves: 'the hedge fails; the primary answers',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 800)], b: [fail('serverError', 100, { status: 503 })] },
      want: { winner: 'a', records: ['b=serverError(hedge failed)', 'a=ok'], calls: ['a@0', 'b@200'], cancelled: [], at: 800 },
    },
    // A loser that answered anyway (it did not notice the cancel in time) is billed and its answer discarded.
    {
      proves: 'a loser that answered is billed and discarded',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 350, { deaf: true, usage: { inputTokens: 1_000_000, outputTokens: 0, cachedInputTokens: 0 } })], b: [ok('b', 100)] },
      want: { winner: 'b', records: ['a=cancelled', 'b=ok(hedge won)'], calls: ['a@0', 'b@200'], cancelled: [], at: 350 },
      check: (r, w) => {
        assert.equal(r.attempts[0]?.costUSD, 1, 'priced at $1 per million input tokens');
        assert.match(r.attempts[0]?.reason ?? '', /answered, but after another attempt/);
        assert.deepEqual(w.discarded, ['a']);
      },
    },
    // A request the upstream rejects as bad stops the race: the other attempt is cancelled.
    {
      proves: 'a bad request during a hedge stops everything',
      steps: ['a', 'b'],
      hedge: { afterMs: 200 },
      scripts: { a: [ok('a', 5000)], b: [fail('badRequest', 50, { status: 400, response: { status: 400, contentType: 'application/json', body: '{}' } })] },
      want: { end: 'badRequest', records: ['b=badRequest(hedge failed)', 'a=cancelled'], calls: ['a@0', 'b@200'], cancelled: ['a'], at: 250 },
    },
  ];
  for (const row of rows) {
    test(row.proves, async () => {
      const w = newWorld();
      for (const [model, scripts] of Object.entries(row.scripts)) w.script(model, ...scripts);
      const chain = buildChain(
        row.steps.map((model) => ({ model, price: { inputPerMTok: 1, outputPerMTok: 1 } })),
        { hedgeAfterMs: row.hedge.afterMs, hedgeMaxInFlight: row.hedge.maxInFlight ?? 1 },
      );
      const result = await w.run(chain);
      assert.deepEqual(summary(result.attempts), row.want.records);
      assert.deepEqual(w.calls, row.want.calls);
      assert.deepEqual(w.cancelled.sort(), row.want.cancelled);
      assert.equal(elapsed(w), row.want.at, 'when the request ended');
      if (row.want.winner) {
        assert.equal(result.kind, 'success');
        if (result.kind === 'success') assert.equal(result.value.model, row.want.winner);
      } else {
        assert.equal(result.kind === 'failure' && result.end, row.want.end);
      }
      assert.equal(w.clock.pending, 0, 'no timer left behind');
      w.assertDone();
      row.check?.(result, w);
    });
  }

  // The caller going away cancels the primary and the hedge alike.
  test('the caller goes away during a hedge', async () => {
    const w = newWorld().script('a', ok('a', 5000)).script('b', ok('b', 5000));
    const caller = new AbortController();
    const chain = buildChain([{ model: 'a' }, { model: 'b' }], { hedgeAfterMs: 200 });
    const running = runChain(chain, w.deps(), w.clock.now(), caller.signal);
    const timer = new AbortController();
    void w.clock.after(300, timer.signal).then(() => caller.abort(new Error('gone')));
    const result = await w.clock.runUntil(running);
    assert.equal(result.kind === 'failure' && result.end, 'aborted');
    assert.deepEqual(summary(result.attempts).sort(), ['a=aborted', 'b=aborted(hedge aborted)']);
    assert.equal(elapsed(w), 300);
  });
});

describe('budget', () => {
  const EXPENSIVE: Price = { inputPerMTok: 100, outputPerMTok: 100 };
  const CHEAP: Price = { inputPerMTok: 0.1, outputPerMTok: 0.1 };
  const body = (maxTokens?: number): RequestInfo => ({
    facts: requestFacts({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(400) }], ...(maxTokens ? { max_tokens: maxTokens } : {}) }),
  });

  // A step whose worst case exceeds the budget is skipped with the numbers; the next one serves.
  test('an expensive step is skipped, a cheap one serves', async () => {
    const w = newWorld().script('cheap', ok('cheap', 10));
    const result = await w.run(
      buildChain(
        [
          { model: 'pricey', price: EXPENSIVE },
          { model: 'cheap', price: CHEAP },
        ],
        {},
        { budget: 0.01 },
      ),
      body(100),
    );
    assert.deepEqual(summary(result.attempts), ['pricey=skipped', 'cheap=ok']);
    assert.match(
      result.attempts[0]?.reason ?? '',
      /^over budget: worst case \$0\.0\d+ \(~\d+ input \+ 100 output tokens\) exceeds budget\.maxCostPerRequestUSD \$0\.0100$/,
    );
    assert.deepEqual(w.calls, ['cheap@0']);
  });

  // The step's cap bounds the output when the request does not: affordable again.
  test('maxOutputTokens makes an unbounded request affordable', async () => {
    const w = newWorld().script('capped', ok('capped', 10));
    const result = await w.run(buildChain([{ model: 'capped', price: CHEAP, maxOutputTokens: 1000 }], {}, { budget: 0.01 }), body());
    assert.deepEqual(summary(result.attempts), ['capped=ok']);
  });

  // Nothing fits: the request ends overBudget without a single call, every target listed with its reason.
  const refused: Array<{ proves: string; steps: StepShape[]; request: RequestInfo; reason: RegExp }> = [
    // Both priced above the budget.
    {
      proves: 'every step too expensive',
      steps: [
        { model: 'a', price: EXPENSIVE },
        { model: 'b', price: EXPENSIVE },
      ],
      request: body(100),
      reason: /^over budget: worst case/,
    },
    // Output not bounded at all on a priced step.
    { proves: 'unbounded output', steps: [{ model: 'a', price: CHEAP }], request: body(), reason: /output is not bounded/ },
  ];
  for (const row of refused) {
    test(`overBudget: ${row.proves}`, async () => {
      const w = newWorld();
      const result = await w.run(buildChain(row.steps, {}, { budget: 0.01 }), row.request);
      assert.equal(result.kind === 'failure' && result.end, 'overBudget');
      assert.deepEqual(w.calls, [], 'no upstream call');
      assert.equal(result.attempts.length, row.steps.length);
      for (const a of result.attempts) {
        assert.equal(a.outcome, 'skipped');
        assert.match(a.reason ?? '', row.reason);
      }
    });
  }

  // A hedge must fit next to the attempt it races: two worst cases of $0.006 do not fit $0.01.
  test('a hedge that would break the budget is not started', async () => {
    const w = newWorld().script('a', ok('a', 500));
    const price: Price = { inputPerMTok: 0, outputPerMTok: 60 }; // 100 output tokens = $0.006
    const chain = buildChain(
      [
        { model: 'a', price },
        { model: 'b', price },
      ],
      { hedgeAfterMs: 200 },
      { budget: 0.01 },
    );
    const result = await w.run(chain, body(100));
    assert.deepEqual(summary(result.attempts), ['b=skipped', 'a=ok']);
    assert.match(result.attempts[0]?.reason ?? '', /exceeds the \$0\.0040 left of budget\.maxCostPerRequestUSD \$0\.0100/);
    assert.deepEqual(w.calls, ['a@0']);
  });
});

describe('rate awareness', () => {
  // A 429 with Retry-After marks the target for every request: the next request skips it
  // without calling it, and once the time has passed it is called again.
  test('chain-wide Retry-After', async () => {
    const w = newWorld()
      .script('a', fail('rateLimited', 10, { status: 429, retryAfterMs: 5000 }))
      .script('b', ok('b', 10), ok('b', 10));
    const chain = buildChain([{ model: 'a', retries: 1 }, { model: 'b' }]);
    const first = await w.run(chain);
    assert.deepEqual(summary(first.attempts), ['a=rateLimited', 'b=ok'], 'Retry-After above backoff.maxMs: next step');
    const second = await w.run(chain);
    assert.deepEqual(summary(second.attempts), ['a=skipped', 'b=ok']);
    assert.match(second.attempts[0]?.reason ?? '', /^rate limited until 2026-02-02T\d\d:\d\d:\d\d\.\d{3}Z \(429 with Retry-After 5000ms\)$/);
    w.clock.advance(5000);
    w.script('a', ok('a', 10));
    const third = await w.run(chain);
    assert.deepEqual(summary(third.attempts), ['a=ok'], 'the mark has expired');
    assert.deepEqual(w.calls, ['a@0', 'b@10', 'b@20', 'a@5030']);
  });

  // An answer saying the quota is used up (x-ratelimit-remaining-requests: 0) marks the target until the reset.
  test('exhausted quota on a success', async () => {
    const w = newWorld()
      .script('a', ok('a', 10, { headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s' } }))
      .script('b', ok('b', 10));
    const chain = buildChain([{ model: 'a' }, { model: 'b' }]);
    await w.run(chain);
    const second = await w.run(chain);
    assert.deepEqual(summary(second.attempts), ['a=skipped', 'b=ok']);
    assert.match(second.attempts[0]?.reason ?? '', /x-ratelimit-remaining-requests 0, reset 2s/);
  });

  // rpm 2: the third request within the minute is not sent to the target at all.
  test('token bucket stops sending before the provider would refuse', async () => {
    const w = newWorld().script('a', ok('a', 10), ok('a', 10), ok('a', 10)).script('b', ok('b', 10));
    const chain = buildChain([{ model: 'a', limits: { rpm: 2 } }, { model: 'b' }]);
    const verdicts: string[][] = [];
    for (let i = 0; i < 3; i++) verdicts.push(summary((await w.run(chain)).attempts));
    assert.deepEqual(verdicts, [['a=ok'], ['a=ok'], ['a=skipped', 'b=ok']]);
    w.clock.advance(30_000);
    assert.deepEqual(summary((await w.run(chain)).attempts), ['a=ok'], 'refilled after half a minute');
  });

  // tpm counts the request's estimated tokens.
  test('tokens per minute', async () => {
    const w = newWorld().script('a', ok('a', 10)).script('b', ok('b', 10));
    const chain = buildChain([{ model: 'a', limits: { tpm: 500 } }, { model: 'b' }]);
    const result = await w.run(chain, { facts: requestFacts({ messages: [{ role: 'user', content: 'x'.repeat(4000) }] }) });
    assert.deepEqual(summary(result.attempts), ['a=skipped', 'b=ok']);
    assert.match(result.attempts[0]?.reason ?? '', /local limit tpm 500: this request needs ~10\d\d tokens/);
  });
});

describe('the token estimate', () => {
  // The estimate serialises the whole body; a chain without budget, tpm limit or
  // "cheapest" order must not pay for it (the body counts its serialisations).
  const rows: Array<{ proves: string; steps: StepShape[]; budget?: number; serialised: boolean }> = [
    // Plain chain, rpm limit only: the estimate is never read.
    { proves: 'no budget, no tpm: never serialised', steps: [{ model: 'a', limits: { rpm: 100 } }], serialised: false },
    // A tpm limit needs it.
    { proves: 'tpm limit: serialised', steps: [{ model: 'a', limits: { tpm: 1_000_000 } }], serialised: true },
    // A budget on a priced step needs it.
    { proves: 'budget: serialised', steps: [{ model: 'a', price: { inputPerMTok: 1, outputPerMTok: 1 } }], budget: 10, serialised: true },
  ];
  for (const row of rows) {
    test(row.proves, async () => {
      let serialisations = 0;
      const body = { model: 'chat', max_tokens: 10, messages: [], toJSON: () => (serialisations++, {}) };
      const w = newWorld().script('a', ok('a', 10));
      const result = await w.run(buildChain(row.steps, {}, row.budget === undefined ? {} : { budget: row.budget }), { facts: requestFacts(body) });
      assert.deepEqual(summary(result.attempts), ['a=ok']);
      assert.equal(serialisations > 0, row.serialised);
    });
  }
});

describe('step groups', () => {
  // A retryable failure moves to the other target of the group before any backoff; the last one uses the step's retries.
  test('the rest of the group before retries and before the next step', async () => {
    const w = newWorld()
      .script('k2', fail('rateLimited', 10, { status: 429 }))
      .script('k1', fail('serverError', 10, { status: 500 }), ok('k1', 10));
    const chain = buildChain([{ targets: [{ model: 'k1' }, { model: 'k2' }], retries: 1 }, { model: 'next' }]);
    const result = await w.run(chain, undefined, { random: () => 0.99 });
    assert.deepEqual(summary(result.attempts), ['k2=rateLimited', 'k1=serverError', 'k1=ok']);
    assert.match(result.attempts[0]?.reason ?? '', /another target of the same step first$/);
    assert.equal(result.attempts[0]?.route, 'weighted pick: weight 1 of 2');
    assert.deepEqual(w.clock.sleeps, [100], 'one backoff, for the last target of the group');
  });

  // A target whose circuit is open goes after the closed ones, and is skipped when reached.
  test('an open circuit is not picked', async () => {
    const w = newWorld()
      .script('k1', fail('serverError', 10, { status: 500 }))
      .script('k2', ok('k2', 10), ok('k2', 10));
    const chain = buildChain([{ targets: [{ model: 'k1', weight: 100 }, { model: 'k2' }] }], {}, { failureThreshold: 1 });
    const first = await w.run(chain, undefined, { random: () => 0 });
    assert.deepEqual(summary(first.attempts), ['k1=serverError', 'k2=ok']);
    const second = await w.run(chain, undefined, { random: () => 0 });
    assert.deepEqual(summary(second.attempts), ['k2=ok'], 'k1 (weight 100) is open: k2 first');
  });
});

describe('priority', () => {
  const chain = (): Chain =>
    buildChain([
      { model: 'premium', price: { inputPerMTok: 10, outputPerMTok: 30 } },
      { model: 'budget', price: { inputPerMTok: 0.1, outputPerMTok: 0.2 } },
    ]);

  // cheapest: the cheaper step first, with the reason recorded.
  test('x-llm-fallback-priority: cheapest', async () => {
    const w = newWorld().script('budget', ok('budget', 10));
    const result = await w.run(chain(), { facts: requestFacts({ max_tokens: 10 }), priority: 'cheapest' });
    assert.deepEqual(summary(result.attempts), ['budget=ok']);
    assert.match(result.attempts[0]?.route ?? '', /^priority cheapest: ~\$/);
  });

  // speed: by measured latency; the chain default applies without a header, the header overrides it.
  test('speed by measured latency, header over chain default', async () => {
    const w = newWorld()
      .script('premium', ok('premium', 900), fail('serverError', 5, { status: 500 }), ok('premium', 900))
      .script('budget', ok('budget', 100), ok('budget', 100));
    const c = chain();
    // Measure both: premium answers in 900 ms; budget answers in 100 ms once premium failed over to it.
    assert.deepEqual(summary((await w.run(c)).attempts), ['premium=ok']);
    assert.deepEqual(summary((await w.run(c)).attempts), ['premium=serverError', 'budget=ok']);
    c.policy.priority = 'speed';
    const fast = await w.run(c);
    assert.deepEqual(summary(fast.attempts), ['budget=ok'], 'the chain default (speed): 100 ms before 900 ms');
    assert.match(fast.attempts[0]?.route ?? '', /^priority speed: 100ms EWMA$/);
    const listed = await w.run(c, { facts: requestFacts({}), priority: 'quality' });
    assert.deepEqual(summary(listed.attempts), ['premium=ok'], 'the header overrides the chain default');
  });

  // An unknown header value is noted, never refused.
  test('unknown priority noted on the first attempt', async () => {
    const w = newWorld().script('premium', ok('premium', 10));
    const result = await w.run(chain(), { facts: requestFacts({}), priority: 'turbo' });
    assert.match(result.attempts[0]?.route ?? '', /"turbo" is not one of speed, quality, cheapest; quality used/);
  });
});

describe('adaptive demotion', () => {
  // The first step keeps failing while the second answers: after MIN_SAMPLES it is demoted
  // (tried after the second), and after DEMOTION_MS it is back in front with a fresh history.
  test('demotion and recovery', async () => {
    const w = newWorld();
    const chain = buildChain([{ model: 'flaky' }, { model: 'steady' }], { adaptive: true });
    for (let i = 0; i < MIN_SAMPLES; i++) {
      w.script('flaky', fail('serverError', 10, { status: 500 })).script('steady', ok('steady', 10));
      assert.deepEqual(summary((await w.run(chain)).attempts), ['flaky=serverError', 'steady=ok'], `request ${i}`);
    }
    w.script('steady', ok('steady', 10));
    const demoted = await w.run(chain);
    assert.deepEqual(summary(demoted.attempts), ['steady=ok'], 'flaky is now after steady');
    w.script('steady', fail('serverError', 10, { status: 500 })).script('flaky', ok('flaky', 10));
    const fallback = await w.run(chain);
    assert.deepEqual(summary(fallback.attempts), ['steady=serverError', 'flaky=ok'], 'a demoted step is still a fallback');
    assert.match(fallback.attempts[1]?.route ?? '', /^demoted: error rate \d+% vs \d+% of the next step \(until .+Z\)$/);
    w.clock.advance(DEMOTION_MS);
    w.script('flaky', ok('flaky', 10));
    const recovered = await w.run(chain);
    assert.deepEqual(summary(recovered.attempts), ['flaky=ok'], 'back in front after the demotion window');
    assert.equal(recovered.attempts[0]?.route, undefined);
  });

  // Without policy.adaptive the same history changes nothing.
  test('off unless enabled', async () => {
    const w = newWorld();
    const chain = buildChain([{ model: 'flaky' }, { model: 'steady' }]);
    for (let i = 0; i <= MIN_SAMPLES; i++) {
      w.script('flaky', fail('serverError', 10, { status: 500 })).script('steady', ok('steady', 10));
      assert.deepEqual(summary((await w.run(chain)).attempts), ['flaky=serverError', 'steady=ok']);
    }
  });
});
