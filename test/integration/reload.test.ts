// Live config reload through the real proxy and its file watcher: a valid change is
// applied without disturbing requests already in flight (they finish on the snapshot
// they started with), an invalid change is refused and the last good config stays,
// and circuit state survives a reload for targets that still exist.
// Every wait is on an event (a log line or an upstream request), never a sleep.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness, type LogLine } from '../support/proxy-harness.ts';

let up: FaultUpstream;
const proxies: ProxyHarness[] = [];
const upstreams: FaultUpstream[] = [];

before(async () => {
  up = await startFaultUpstream();
  upstreams.push(up);
});

after(async () => {
  // Upstreams first: a request a failed test left hanging then ends at once, so the drain does not wait for it.
  for (const u of upstreams) await u.close();
  for (const p of proxies) await p.close();
});

async function proxyWith(config: string): Promise<ProxyHarness> {
  const proxy = await startProxy({ config });
  proxies.push(proxy);
  return proxy;
}

// ---------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  model: string | null;
  attempts: string | null;
  body: Json;
}

async function chat(proxy: ProxyHarness, chain: string): Promise<Answer> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: chain, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return {
    status: res.status,
    model: res.headers.get('x-llm-fallback-model'),
    attempts: res.headers.get('x-llm-fallback-attempts'),
    body: (await res.json()) as Json,
  };
}

async function getJson(url: string): Promise<Json> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

async function reloads(proxy: ProxyHarness, result: 'applied' | 'rejected'): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const prefix = `llm_fallback_config_reloads_total{result="${result}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

const applied =
  (version: number) =>
  (l: LogLine): boolean =>
    l.msg === 'config applied' && l['version'] === version;

/** The next refusal line not consumed yet. */
function nextRefusal(proxy: ProxyHarness, seen: Set<LogLine>): Promise<LogLine> {
  return proxy
    .waitForLog((l) => l.msg.startsWith('config change refused') && !seen.has(l))
    .then((line) => {
      seen.add(line);
      return line;
    });
}

interface ConfigStep {
  model: string;
  circuit: string;
  apiKey: Json;
}
interface ConfigChain {
  name: string;
  steps: ConfigStep[];
}
const chainsOf = (config: Json): ConfigChain[] => config['chains'] as ConfigChain[];

/** A chain over two providers: `stuck` (a second upstream) first, then the main upstream. */
function twoProviderChain(name: string, stuckURL: string, steps: Array<{ provider: 'stuck' | 'mock'; model: string }>): string {
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [
        { name: 'stuck', baseURL: stuckURL },
        { name: 'mock', baseURL: up.url },
      ],
      steps: steps.map((s) => ({ ...s, retries: 0 })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000 },
    },
  });
}

// ---------------------------------------------------------------------------

describe('a valid change', () => {
  test('is applied for new requests while an in-flight request finishes on the old snapshot', async () => {
    // v1: the in-flight request hangs on `stuck` until this test closes it, then falls
    // back to step 2, which exists only in v1. v2: one step, fault:ok#v2.
    const stuck = await startFaultUpstream();
    upstreams.push(stuck);
    const v1 = twoProviderChain('chat', stuck.url, [
      { provider: 'stuck', model: 'fault:silent#inflight' },
      { provider: 'mock', model: 'fault:ok#v1' },
    ]);
    const v2 = chainYaml({ name: 'chat', baseURL: up.url, steps: [{ model: 'fault:ok#v2' }] });
    const proxy = await proxyWith(v1);
    await proxy.waitForLog(applied(1));

    const inflight = chat(proxy, 'chat');
    await stuck.waitForRequest('fault:silent#inflight');

    await proxy.writeConfig(v2);
    const appliedLine = await proxy.waitForLog(applied(2));
    assert.deepEqual(appliedLine['chains'], ['chat']);
    assert.equal(up.requestsFor('fault:ok#v1').length, 0, 'the in-flight request is still on its first step');

    // Break the in-flight request's first step: it falls back on the snapshot it started with.
    await stuck.close();
    const old = await inflight;
    assert.equal(old.status, 200);
    assert.equal(old.model, 'fault:ok#v1');
    assert.equal(old.attempts, 'stuck/fault:silent#inflight=connection, mock/fault:ok#v1=ok');
    assert.equal(up.requestsFor('fault:ok#v1').length, 1, 'the upstream saw the old model after v2 was applied');

    // New requests use v2.
    const fresh = await chat(proxy, 'chat');
    assert.equal(fresh.status, 200);
    assert.equal(fresh.model, 'fault:ok#v2');
    assert.equal(fresh.attempts, 'mock/fault:ok#v2=ok');
    assert.equal(up.requestsFor('fault:ok#v2').length, 1);

    assert.equal(await reloads(proxy, 'applied'), 2);
    assert.equal(await reloads(proxy, 'rejected'), 0);
    const config = await getJson(`${proxy.adminUrl}/config`);
    assert.equal(config['version'], 2);
    assert.deepEqual(
      chainsOf(config)[0]?.steps.map((s) => s.model),
      ['fault:ok#v2'],
    );
    assert.equal((await getJson(`${proxy.adminUrl}/readyz`))['configVersion'], 2);
  });
});

describe('an invalid change', () => {
  test('is refused with the reasons; the last good config keeps serving', async () => {
    const good = chainYaml({ name: 'steady', baseURL: up.url, steps: [{ model: 'fault:ok#steady' }] });
    const proxy = await proxyWith(good);
    await proxy.waitForLog(applied(1));
    const seen = new Set<LogLine>();

    const ghostStep = JSON.stringify({
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name: 'steady' },
      spec: { providers: [{ name: 'mock', baseURL: up.url }], steps: [{ provider: 'ghost', model: 'fault:ok#ghost' }] },
    });
    const cases: Array<{ name: string; yaml: string; problem: RegExp }> = [
      // A cross-field rule: the problem names the file, the document and the field path.
      {
        name: 'step naming an undeclared provider',
        yaml: ghostStep,
        problem: /chains\.yaml \(document 1\) \/spec\/steps\/0\/provider: step names provider "ghost", which spec\.providers does not declare/,
      },
      // A file that does not parse at all is refused just the same, with the parser's reason.
      { name: 'invalid YAML', yaml: 'apiVersion: llmfallback.io/v1alpha1\nspec: [unclosed\n', problem: /chains\.yaml \(document 1\): YAML: / },
    ];

    for (const [i, c] of cases.entries()) {
      await proxy.writeConfig(c.yaml);
      const refusal = await nextRefusal(proxy, seen);
      assert.equal(refusal.msg, 'config change refused; the last good config stays active', c.name);
      const problems = refusal['problems'] as string[];
      assert.ok(
        problems.some((p) => c.problem.test(p)),
        `${c.name}: ${JSON.stringify(problems)}`,
      );
      assert.equal(await reloads(proxy, 'rejected'), i + 1, c.name);
      assert.equal(await reloads(proxy, 'applied'), 1, c.name);

      const config = await getJson(`${proxy.adminUrl}/config`);
      assert.equal(config['version'], 1, c.name);
      assert.deepEqual(
        chainsOf(config)[0]?.steps.map((s) => s.model),
        ['fault:ok#steady'],
        c.name,
      );
      const served = await chat(proxy, 'steady');
      assert.equal(served.status, 200, c.name);
      assert.equal(served.model, 'fault:ok#steady', c.name);
    }
    assert.equal(proxy.logs.filter((l) => l.msg === 'config applied').length, 1, 'nothing invalid was applied');
    assert.equal(up.requestsFor('fault:ok#ghost').length, 0);
  });
});

describe('circuit state across a reload', () => {
  test('an open circuit stays open when the reload keeps its step', async () => {
    const chain = chainYaml({
      name: 'guarded',
      baseURL: up.url,
      steps: [{ model: 'fault:503#guarded' }, { model: 'fault:ok#guarded-fb' }],
      // One failure opens it; the cooldown outlasts the test.
      circuitBreaker: { failureThreshold: 1, windowSeconds: 30, cooldownSeconds: 600 },
    });
    const proxy = await proxyWith(chain);
    await proxy.waitForLog(applied(1));

    const opener = await chat(proxy, 'guarded');
    assert.equal(opener.attempts, 'mock/fault:503#guarded=serverError, mock/fault:ok#guarded-fb=ok');
    await proxy.waitForLog((l) => l.msg === 'circuit state changed' && l['model'] === 'fault:503#guarded' && l['state'] === 'open');
    const before = await getJson(`${proxy.adminUrl}/config`);
    assert.deepEqual(
      chainsOf(before)[0]?.steps.map((s) => s.circuit),
      ['open', 'closed'],
    );

    // An unrelated change: a second chain is added.
    const other = chainYaml({ name: 'other', baseURL: up.url, steps: [{ model: 'fault:ok#other' }] });
    await proxy.writeConfig(`${chain}\n---\n${other}\n`);
    await proxy.waitForLog(applied(2));

    const after = await getJson(`${proxy.adminUrl}/config`);
    assert.equal(after['version'], 2);
    const chains = chainsOf(after);
    assert.deepEqual(chains.map((c) => c.name).sort(), ['guarded', 'other']);
    assert.deepEqual(
      chains.find((c) => c.name === 'guarded')?.steps.map((s) => s.circuit),
      ['open', 'closed'],
    );

    // And it still acts open: the primary is skipped without a request.
    const skipped = await chat(proxy, 'guarded');
    assert.equal(skipped.status, 200);
    assert.equal(skipped.attempts, 'mock/fault:503#guarded=skipped, mock/fault:ok#guarded-fb=ok');
    assert.equal(up.requestsFor('fault:503#guarded').length, 1);
  });
});
