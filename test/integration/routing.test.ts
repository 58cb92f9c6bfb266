// Routing through the real proxy against the fault upstream: a hedge cuts the response time of
// a slow-first-token primary and closes the loser's connection; budgets skip steps and refuse a
// request no step can afford (402, nothing sent); a 429's Retry-After keeps the next request
// away from the target; a token bucket stops sending before the provider would refuse; the
// priority header, step groups, the step's output cap, adaptive demotion, and what /config and
// /metrics show of it all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, type LogLine, type ProxyHarness } from '../support/proxy-harness.ts';
import { MIN_SAMPLES } from '../../src/routing/health.ts';

type Json = Record<string, unknown>;

interface StepDoc {
  model?: string;
  targets?: Array<{ model: string; weight?: number }>;
  retries?: number;
  price?: { inputPerMTok: number; outputPerMTok: number };
  maxOutputTokens?: number;
  limits?: { rpm?: number; tpm?: number };
}

/** A FallbackChain on the fault upstream with routing fields (chainYaml covers only plain steps). */
function chainDoc(name: string, baseURL: string, steps: StepDoc[], extra: { policy?: Json; budget?: number; circuitBreaker?: Json } = {}): string {
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [{ name: 'mock', baseURL }],
      steps: steps.map((s) => {
        const { model, targets, ...rest } = s;
        return { ...(targets ? { targets: targets.map((t) => ({ provider: 'mock', ...t })) } : { provider: 'mock', model }), retries: 0, ...rest };
      }),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10_000, ...extra.policy },
      ...(extra.circuitBreaker ? { circuitBreaker: extra.circuitBreaker } : {}),
      ...(extra.budget !== undefined ? { budget: { maxCostPerRequestUSD: extra.budget } } : {}),
    },
  });
}

const SLOW = 'fault:slow-first-token-3000#hedge';
const SLOW_JSON = 'fault:slow-first-token-3000#hedge-json';
const EXPENSIVE = { inputPerMTok: 1000, outputPerMTok: 1000 };
const CHEAP = { inputPerMTok: 1, outputPerMTok: 1 };

let up: FaultUpstream;
let proxy: ProxyHarness;

before(async () => {
  up = await startFaultUpstream();
  const u = up.url;
  const chains = [
    chainDoc('hedge', u, [{ model: SLOW }, { model: 'fault:ok#hedge-b' }], { policy: { hedge: { afterMs: 100 } } }),
    chainDoc('hedge-json', u, [{ model: SLOW_JSON }, { model: 'fault:ok#hedge-json-b' }], { policy: { hedge: { afterMs: 100 } } }),
    chainDoc(
      'budget',
      u,
      [
        { model: 'fault:ok#pricey', price: EXPENSIVE },
        { model: 'fault:ok#thrifty', price: CHEAP },
      ],
      { budget: 0.01 },
    ),
    chainDoc(
      'too-expensive',
      u,
      [
        { model: 'fault:ok#gold', price: EXPENSIVE },
        { model: 'fault:ok#platinum', price: EXPENSIVE },
      ],
      { budget: 0.01 },
    ),
    chainDoc('retry-after', u, [{ model: 'fault:429-retry-after-30#ra' }, { model: 'fault:ok#ra-b' }]),
    chainDoc('bucket', u, [{ model: 'fault:ok#tb', limits: { rpm: 2 } }, { model: 'fault:ok#tb-b' }]),
    chainDoc('priority', u, [
      { model: 'fault:ok#premium', price: { inputPerMTok: 10, outputPerMTok: 30 } },
      { model: 'fault:ok#economy', price: { inputPerMTok: 0.1, outputPerMTok: 0.2 } },
    ]),
    chainDoc('group', u, [{ targets: [{ model: 'fault:ok#key-a' }, { model: 'fault:ok#key-b', weight: 3 }] }, { model: 'fault:ok#after-group' }]),
    chainDoc('capped', u, [{ model: 'fault:ok#capped', maxOutputTokens: 64 }]),
    chainDoc('adaptive', u, [{ model: 'fault:500#flaky' }, { model: 'fault:ok#steady' }], {
      policy: { adaptive: true },
      circuitBreaker: { failureThreshold: 1000 },
    }),
  ];
  // random 0.99: a weighted pick lands on the last target of the group.
  proxy = await startProxy({ config: chains.join('\n---\n'), random: () => 0.99 });
});

after(async () => {
  await up?.close();
  await proxy?.close();
});

interface Reply {
  status: number;
  ms: number;
  body: string;
  headers: Headers;
  log: LogLine;
}

async function call(chain: string, options: { stream?: boolean; body?: Json; headers?: Record<string, string> } = {}): Promise<Reply> {
  const started = performance.now();
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ model: chain, messages: [{ role: 'user', content: 'hi' }], ...(options.stream ? { stream: true } : {}), ...options.body }),
  });
  const body = await res.text();
  const ms = performance.now() - started;
  const log = await proxy.requestLog(res.headers.get('x-request-id') ?? '');
  return { status: res.status, ms, body, headers: res.headers, log };
}

function attemptsOf(log: LogLine): Json[] {
  return log['attempts'] as Json[];
}

const verdicts = (log: LogLine): string[] => attemptsOf(log).map((a) => `${String(a['model'])}=${String(a['outcome'])}`);

async function metricsText(): Promise<string> {
  return (await fetch(`${proxy.adminUrl}/metrics`)).text();
}

describe('hedged requests', () => {
  const rows = [
    // A stream whose primary sends headers but no event for 3 s: the hedge answers within ~100 ms.
    { proves: 'stream', chain: 'hedge', primary: SLOW, hedge: 'fault:ok#hedge-b', stream: true },
    // The same for a JSON answer (no first byte = no answer at all).
    { proves: 'JSON', chain: 'hedge-json', primary: SLOW_JSON, hedge: 'fault:ok#hedge-json-b', stream: false },
  ];
  for (const row of rows) {
    test(`${row.proves}: the hedge answers long before the slow primary, and the primary's connection is closed`, async () => {
      const reply = await call(row.chain, { stream: row.stream });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get('x-llm-fallback-model'), row.hedge);
      // Bounded, not tight: well before the primary's 3 s first token.
      assert.ok(reply.ms < 2000, `answered in ${Math.round(reply.ms)} ms`);
      await up.waitForClosedEarly(row.primary);
      assert.deepEqual(verdicts(reply.log), [`${row.primary}=cancelled`, `${row.hedge}=ok`]);
      const [loser, winner] = attemptsOf(reply.log);
      assert.equal(winner?.['hedge'], 'won');
      assert.match(String(winner?.['route']), /^hedge: no first byte from mock\/fault:slow-first-token-3000#hedge(-json)? after 100ms$/);
      assert.match(String(loser?.['reason']), /^cancelled: mock\/fault:ok#hedge(-json)?-b answered first$/);
      assert.equal(reply.headers.get('x-llm-fallback-attempts'), `mock/${row.primary}=cancelled, mock/${row.hedge}=ok`);
      if (row.stream) assert.match(reply.body, /data: \[DONE\]/);
      assert.match(await metricsText(), new RegExp(`llm_fallback_hedges_total\\{chain="${row.chain}",result="won"\\} 1`));
    });
  }
});

describe('budget', () => {
  // The expensive step's worst case is over the budget: skipped without a request; the cheap one answers.
  test('a step over budget is skipped without a request', async () => {
    const reply = await call('budget', { body: { max_tokens: 100 } });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('x-llm-fallback-attempts'), 'mock/fault:ok#pricey=skipped, mock/fault:ok#thrifty=ok');
    assert.match(
      String(attemptsOf(reply.log)[0]?.['reason']),
      /^over budget: worst case \$0\.\d+ \(~\d+ input \+ 100 output tokens\) exceeds budget\.maxCostPerRequestUSD \$0\.0100$/,
    );
    assert.equal(up.requestsFor('fault:ok#pricey').length, 0);
    assert.equal(up.requestsFor('fault:ok#thrifty').length, 1);
  });

  // Every step too expensive: a 402 in OpenAI's shape, each step's reason listed, and no upstream request at all.
  const refused = [
    // max_tokens makes the worst case exact and too large.
    { proves: 'bounded output too expensive', body: { max_tokens: 100 }, reason: /^over budget: worst case/ },
    // Without max_tokens (and no maxOutputTokens), a priced step's worst case is unbounded.
    { proves: 'unbounded output', body: {}, reason: /output is not bounded/ },
  ];
  for (const row of refused) {
    test(`all too expensive (${row.proves}): 402, nothing sent`, async () => {
      const before = up.requests.length;
      const reply = await call('too-expensive', { body: row.body });
      assert.equal(reply.status, 402);
      const error = (JSON.parse(reply.body) as { error: Json }).error;
      assert.equal(error['code'], 'budget_exceeded');
      assert.equal(error['type'], 'invalid_request_error');
      assert.match(String(error['message']), /no step of chain "too-expensive" fits budget\.maxCostPerRequestUSD/);
      const listed = (error['llm_fallback'] as { attempts: Json[] }).attempts;
      assert.deepEqual(
        listed.map((a) => a['outcome']),
        ['skipped', 'skipped'],
      );
      for (const a of listed) assert.match(String(a['reason']), row.reason);
      assert.equal(up.requests.length, before, 'no upstream request');
      assert.equal(reply.log['outcome'], 'client_error');
    });
  }
});

describe('rate awareness', () => {
  // The 429 says "retry after 30 s": the next request of the chain does not even try the target.
  test("a 429's Retry-After keeps every request away from the target", async () => {
    const first = await call('retry-after');
    assert.deepEqual(verdicts(first.log), ['fault:429-retry-after-30#ra=rateLimited', 'fault:ok#ra-b=ok']);
    const second = await call('retry-after');
    assert.deepEqual(verdicts(second.log), ['fault:429-retry-after-30#ra=skipped', 'fault:ok#ra-b=ok']);
    assert.match(String(attemptsOf(second.log)[0]?.['reason']), /^rate limited until \d{4}-\d\d-\d\dT[\d:.]+Z \(429 with Retry-After 30000ms\)$/);
    assert.equal(up.requestsFor('fault:429-retry-after-30#ra').length, 1, 'one request only: the second was never sent');
    const config = (await (await fetch(`${proxy.adminUrl}/config`)).json()) as { chains: Array<{ name: string; steps: Json[] }> };
    const step = config.chains.find((c) => c.name === 'retry-after')?.steps[0];
    assert.match(String((step?.['rateLimited'] as Json | null)?.['reason']), /Retry-After 30000ms/, '/config shows the mark');
  });

  // rpm 2: the third request in the minute goes to the next step; the target never gets it.
  test('a token bucket stops sending before the provider would refuse', async () => {
    const seen: string[][] = [];
    for (let i = 0; i < 3; i++) seen.push(verdicts((await call('bucket')).log));
    assert.deepEqual(seen, [['fault:ok#tb=ok'], ['fault:ok#tb=ok'], ['fault:ok#tb=skipped', 'fault:ok#tb-b=ok']]);
    assert.equal(up.requestsFor('fault:ok#tb').length, 2);
  });
});

describe('priority, groups, caps', () => {
  // x-llm-fallback-priority: cheapest puts the cheaper step first; without it, the listed order.
  test('the priority header reorders the steps', async () => {
    const cheapest = await call('priority', { body: { max_tokens: 10 }, headers: { 'x-llm-fallback-priority': 'cheapest' } });
    assert.equal(cheapest.headers.get('x-llm-fallback-model'), 'fault:ok#economy');
    assert.match(String(attemptsOf(cheapest.log)[0]?.['route']), /^priority cheapest: ~\$/);
    const listed = await call('priority');
    assert.equal(listed.headers.get('x-llm-fallback-model'), 'fault:ok#premium');
  });

  // A step group: the weighted pick (random 0.99 → the weight-3 target) answers, with the reason logged.
  test('a step of several targets picks by weight', async () => {
    const reply = await call('group');
    assert.equal(reply.headers.get('x-llm-fallback-model'), 'fault:ok#key-b');
    assert.equal(attemptsOf(reply.log)[0]?.['route'], 'weighted pick: weight 3 of 4');
  });

  // maxOutputTokens is sent upstream, lowering a larger max_tokens.
  test("the step's output cap reaches the upstream", async () => {
    await call('capped', { body: { max_tokens: 5000 } });
    const sent = up.requestsFor('fault:ok#capped')[0]?.body as Json;
    assert.equal(sent['max_tokens'], 64);
  });
});

describe('adaptive routing and what operators see', () => {
  // A failing first step is demoted after MIN_SAMPLES requests: then the healthy one is tried first,
  // and /config and /metrics show the effective order with the reason.
  test('demotion is applied and visible', async () => {
    for (let i = 0; i < MIN_SAMPLES; i++) {
      assert.deepEqual(verdicts((await call('adaptive')).log), ['fault:500#flaky=serverError', 'fault:ok#steady=ok'], `request ${i}`);
    }
    const demoted = await call('adaptive');
    assert.deepEqual(verdicts(demoted.log), ['fault:ok#steady=ok']);

    const config = (await (await fetch(`${proxy.adminUrl}/config`)).json()) as { chains: Array<{ name: string; effectiveOrder: Json[]; steps: Json[] }> };
    const chain = config.chains.find((c) => c.name === 'adaptive');
    assert.deepEqual(
      chain?.effectiveOrder.map((o) => [o['model'], o['demoted']]),
      [
        ['fault:ok#steady', false],
        ['fault:500#flaky', true],
      ],
    );
    assert.match(String(chain?.effectiveOrder[1]?.['route']), /^demoted: error rate 100% vs 0% of the next step \(until .+Z\)$/);
    assert.deepEqual((chain?.steps[0]?.['health'] as Json)['errorRate'], 1);

    const metrics = await metricsText();
    assert.match(metrics, /llm_fallback_route_position\{chain="adaptive",step="1",provider="mock",model="fault:ok#steady",demoted="false"\} 0/);
    assert.match(metrics, /llm_fallback_route_position\{chain="adaptive",step="0",provider="mock",model="fault:500#flaky",demoted="true"\} 1/);
    assert.match(metrics, /llm_fallback_target_error_rate\{chain="adaptive",provider="mock",model="fault:500#flaky"\} 1/);
  });
});
