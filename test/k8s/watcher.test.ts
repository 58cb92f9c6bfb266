// `serve --kubernetes` against a real kube-apiserver + etcd: the proxy runs in-process
// as a ServiceAccount that may only get/list/watch FallbackChains of its namespace
// (the chain-reader ClusterRole bound to system:serviceaccounts:<ns>, as the controller
// does), with the fault upstream as its provider. The tests run in order on one proxy:
// readiness, live changes, namespace isolation, refusals, deletion, credentials, and an
// API server restart. Waits poll the proxy (bounded); the apply latency is measured and
// reported (t.diagnostic), only bounded generously in assertions.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { chainReaderClusterRole, chainReaderRoleBinding } from '../../src/k8s/rbac.ts';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';
import { startKubeProxy, type KubeProxyHarness } from '../support/kube-proxy-harness.ts';
import type { LogLine } from '../support/proxy-harness.ts';

const NS = 'shop';
const OTHER_NS = 'elsewhere';
const GROUP = { group: 'llmfallback.io', version: 'v1alpha1', plural: 'fallbackchains' };
/** Generous "did not hang" bound for a change to show up; the measured time is reported. */
const APPLY_BOUND_MS = 5000;

type Json = Record<string, unknown>;

let kube: KubeHarness;
let up: FaultUpstream;
let proxy: KubeProxyHarness | undefined;
let chains: CustomObjectsApi;
let rbac: RbacAuthorizationV1Api;
const latencies: number[] = [];

function chainObject(name: string, o: { model?: string; step: string; secretKey?: string; namespace?: string }): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name, namespace: o.namespace ?? NS },
    spec: {
      ...(o.model ? { model: o.model } : {}),
      providers: [{ name: 'mock', api: 'openai', baseURL: up.url, ...(o.secretKey ? { apiKey: { secretKey: o.secretKey } } : {}) }],
      steps: [{ provider: 'mock', model: o.step, retries: 0 }],
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000 },
    },
  };
}

async function createChain(body: Json): Promise<void> {
  const metadata = body['metadata'] as { namespace: string };
  await chains.createNamespacedCustomObject({ ...GROUP, namespace: metadata.namespace, body });
}

/** Read-modify-write (PUT) of a chain's spec in NS. */
async function editChain(name: string, edit: (spec: Json) => void): Promise<void> {
  const current = (await chains.getNamespacedCustomObject({ ...GROUP, namespace: NS, name })) as Json;
  edit(current['spec'] as Json);
  await chains.replaceNamespacedCustomObject({ ...GROUP, namespace: NS, name, body: current });
}

function setStep(model: string): (spec: Json) => void {
  return (spec) => {
    ((spec['steps'] as Json[])[0] as Json)['model'] = model;
  };
}

interface ServedView {
  name: string;
  model: string;
  source: string;
  steps: Array<{ model: string; apiKey: { present: boolean; source: string } }>;
}

function running(): KubeProxyHarness {
  assert.ok(proxy, 'the proxy was started by the first test');
  return proxy;
}

async function served(): Promise<Map<string, ServedView>> {
  const res = await fetch(`${running().adminUrl}/config`);
  if (res.status !== 200) return new Map();
  const body = (await res.json()) as { chains: ServedView[] };
  return new Map(body.chains.map((c) => [c.model, c]));
}

/** Polls every 5 ms until `check` holds; returns the elapsed ms; fails after `limitMs`. */
async function until(what: string, check: () => Promise<boolean>, limitMs = 30_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > limitMs) assert.fail(`${what}: still not true after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Time from the API server's answer to the proxy's /config showing the change. */
async function measureApply(t: TestContext, what: string, write: () => Promise<void>, visible: (s: Map<string, ServedView>) => boolean): Promise<number> {
  await write();
  const ms = await until(what, async () => visible(await served()), 30_000);
  latencies.push(ms);
  t.diagnostic(`${what}: live in the proxy ${ms.toFixed(0)} ms after the API server accepted it`);
  return ms;
}

async function chat(model: string): Promise<{ status: number; chain: string | null; content: string; body: Json }> {
  const res = await fetch(`${running().baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await res.json()) as Json;
  const choices = body['choices'] as Array<{ message: { content: string } }> | undefined;
  return { status: res.status, chain: res.headers.get('x-llm-fallback-chain'), content: choices?.[0]?.message.content ?? '', body };
}

async function rejectedCount(): Promise<number> {
  const text = await (await fetch(`${running().adminUrl}/metrics`)).text();
  const line = /llm_fallback_config_reloads_total\{result="rejected"\} (\d+)/.exec(text);
  return Number(line?.[1] ?? 0);
}

const logsAfter = (index: number, match: (l: LogLine) => boolean): LogLine[] => running().logs.slice(index).filter(match);

describe('serve --kubernetes on a real API server', { timeout: 240_000 }, () => {
  before(async () => {
    kube = await startKube();
    await kube.installCrd();
    await kube.createNamespace(NS);
    await kube.createNamespace(OTHER_NS);
    up = await startFaultUpstream();
    const admin = kube.kubeConfig();
    chains = admin.makeApiClient(CustomObjectsApi);
    rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: chainReaderClusterRole() });
  });

  after(async () => {
    if (latencies.length > 0) {
      const sorted = [...latencies].sort((a, b) => a - b);
      process.stdout.write(
        `# apply latency (API write -> proxy /config), ${sorted.length} changes: min ${sorted[0]?.toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms\n`,
      );
    }
    await proxy?.close();
    await up?.close();
    await kube?.stop();
  });

  test('/readyz is 503 until the first successful list, 200 after', async (t) => {
    // The ServiceAccount has no RoleBinding yet: the list is forbidden and nothing is applied.
    const sa = await kube.serviceAccountKubeConfig(NS, 'app');
    proxy = await startKubeProxy({ kubeconfigPath: sa.kubeconfigPath, namespace: NS, credentials: { mock: 'key-one' } });
    const failed = await proxy.waitForLog((l) => l.msg === 'FallbackChain watch failed; restarting it');
    assert.equal((failed['error'] as Json)['statusCode'], 403, 'the list was forbidden by RBAC');
    const before = await fetch(`${proxy.adminUrl}/readyz`);
    assert.equal(before.status, 503);
    assert.equal(((await before.json()) as Json)['ready'], false);
    assert.equal((await chat('anything')).status, 503, 'no snapshot, no routing');
    // Not ready, so the start's memory is not given back yet (src/core/start-memory.ts).
    assert.equal(proxy.logs.filter((l) => l.msg === 'start memory').length, 0, 'no collection before the first list');

    // Grant the chain-reader role the way the controller does; the restarted informer lists.
    await rbac.createNamespacedRoleBinding({ namespace: NS, body: chainReaderRoleBinding(NS) });
    const ms = await until('/readyz 200', async () => (await fetch(`${running().adminUrl}/readyz`)).status === 200, 60_000);
    t.diagnostic(`ready ${ms.toFixed(0)} ms after the RoleBinding was created (restart backoff included)`);
    const ready = (await (await fetch(`${proxy.adminUrl}/readyz`)).json()) as Json;
    assert.equal(ready['chains'], 0, 'an empty namespace is a successful list');
    assert.ok(proxy.logs.some((l) => l.msg === 'FallbackChains listed' && l['namespace'] === NS));
    // Ready now: the collection is asked for once (this test process has no --expose-gc, so nothing is called).
    const released = await proxy.waitForLog((l) => l.msg === 'start memory');
    assert.equal(released['outcome'], 'gc-not-exposed');
    assert.ok(proxy.logs.indexOf(released) > proxy.logs.findIndex((l) => l.msg === 'config applied'), 'after the first config was applied');
  });

  test('a FallbackChain created through the API is served, and a change to it is live quickly', async (t) => {
    const created = await measureApply(
      t,
      'create chat',
      () => createChain(chainObject('chat', { step: 'fault:ok#v1' })),
      (s) => s.get('chat')?.steps[0]?.model === 'fault:ok#v1',
    );
    assert.ok(created < APPLY_BOUND_MS, `create took ${created} ms`);
    const first = await chat('chat');
    assert.equal(first.status, 200);
    assert.equal(first.chain, 'chat');
    assert.equal(up.requestsFor('fault:ok#v1').length, 1);
    assert.equal((await served()).get('chat')?.source, `${NS}/chat`);

    // Several step-model switches, each measured from the PUT's answer to the proxy's /config.
    for (const version of ['v2', 'v3', 'v4', 'v5', 'v6']) {
      const ms = await measureApply(
        t,
        `switch step to ${version}`,
        () => editChain('chat', setStep(`fault:ok#${version}`)),
        (s) => s.get('chat')?.steps[0]?.model === `fault:ok#${version}`,
      );
      assert.ok(ms < APPLY_BOUND_MS, `change to ${version} took ${ms} ms`);
    }
    assert.equal((await chat('chat')).status, 200);
    assert.equal(up.requestsFor('fault:ok#v6').length, 1, 'the request went to the switched step model');
  });

  test('an object in another namespace is never served (and the ServiceAccount cannot even read it)', async () => {
    await createChain(chainObject('intruder', { namespace: OTHER_NS, step: 'fault:ok#intruder' }));
    // A later change in our own namespace: once it is served, the other namespace's event would have been too.
    await createChain(chainObject('marker', { step: 'fault:ok#marker' }));
    await until('marker served', async () => (await served()).has('marker'));
    assert.equal((await served()).has('intruder'), false);
    const answer = await chat('intruder');
    assert.equal(answer.status, 404);
    assert.equal(up.requestsFor('fault:ok#intruder').length, 0);
    const sa = await kube.serviceAccountKubeConfig(NS, 'app');
    const canI = await kube.kubectl(['auth', 'can-i', 'list', 'fallbackchains.llmfallback.io', '-n', OTHER_NS], { kubeconfigPath: sa.kubeconfigPath });
    assert.equal(canI.stdout.trim(), 'no');
  });

  test('a chain claiming a model another (older) chain serves is refused, logged and counted; the rest keep serving', async () => {
    // The API server cannot check this (it spans objects), so the sidecar's semantic check refuses it.
    const rejectedBefore = await rejectedCount();
    const logIndex = running().logs.length;
    await createChain(chainObject('chat-copy', { model: 'chat', step: 'fault:ok#copy' }));
    const refused = await running().waitForLog(
      (l) => l.msg === 'config change refused; the last good config stays active' && l['object'] === `${NS}/chat-copy`,
    );
    assert.match(String((refused['problems'] as string[])[0]), /model "chat" is already served by the older FallbackChain "chat"/);
    assert.equal(refused['lastGoodKept'], false);
    assert.equal(await rejectedCount(), rejectedBefore + 1);
    const answer = await chat('chat');
    assert.equal(answer.chain, 'chat', 'the older chain still answers');
    assert.equal(up.requestsFor('fault:ok#copy').length, 0);
    assert.equal(logsAfter(logIndex, (l) => l.msg === 'config change refused; the last good config stays active').length, 1);
  });

  test('an invalid edit keeps the last good version of that chain', async () => {
    // "summary" serves its own model, then is edited to claim "chat" (taken): refused, the previous version stays.
    await createChain(chainObject('summary', { step: 'fault:ok#summary-1' }));
    await until('summary served', async () => (await served()).has('summary'));
    const rejectedBefore = await rejectedCount();
    await editChain('summary', (spec) => {
      spec['model'] = 'chat';
      setStep('fault:ok#summary-2')(spec);
    });
    const refused = await running().waitForLog((l) => l.msg === 'config change refused; the last good config stays active' && l['object'] === `${NS}/summary`);
    assert.equal(refused['lastGoodKept'], true);
    assert.equal(await rejectedCount(), rejectedBefore + 1);
    const answer = await chat('summary');
    assert.equal(answer.status, 200);
    assert.equal(up.requestsFor('fault:ok#summary-1').length, 1, 'served by the last good version');
    assert.equal((await chat('chat')).chain, 'chat');
    // chat-copy is still refused in every snapshot since, but reported (logged, counted) only once.
    assert.equal(
      running().logs.filter((l) => l.msg === 'config change refused; the last good config stays active' && l['object'] === `${NS}/chat-copy`).length,
      1,
    );
  });

  test('deleting a FallbackChain drops its chain; deleting the older duplicate lets the younger one serve', async (t) => {
    const ms = await measureApply(
      t,
      'delete summary',
      async () => {
        await chains.deleteNamespacedCustomObject({ ...GROUP, namespace: NS, name: 'summary' });
      },
      (s) => !s.has('summary'),
    );
    assert.ok(ms < APPLY_BOUND_MS);
    assert.equal((await chat('summary')).status, 404);
    await chains.deleteNamespacedCustomObject({ ...GROUP, namespace: NS, name: 'chat' });
    await until('chat-copy takes over model chat', async () => (await served()).get('chat')?.name === 'chat-copy');
    const answer = await chat('chat');
    assert.equal(answer.chain, 'chat-copy');
    assert.equal(up.requestsFor('fault:ok#copy').length, 1);
  });

  test('secretKey API keys come from the mounted credentials and are re-read when the Secret changes', async () => {
    await createChain(chainObject('keyed', { step: 'fault:echo-key', secretKey: 'mock' }));
    await until('keyed served', async () => (await served()).has('keyed'));
    const first = await chat('keyed');
    assert.equal(first.content, 'Bearer key-one', 'the key file of the mounted Secret was sent');
    // The kubelet swaps the whole Secret folder (..data symlink) when the Secret changes.
    const applies = running().logs.filter((l) => l.msg === 'config applied').length;
    await running().writeCredentials({ mock: 'key-two' });
    await running().waitForLog((l) => l.msg === 'credentials changed; resolving API keys again');
    await until('a snapshot after the credentials change', async () => running().logs.filter((l) => l.msg === 'config applied').length > applies);
    const second = await chat('keyed');
    assert.equal(second.content, 'Bearer key-two');
    assert.ok(!JSON.stringify(await (await fetch(`${running().adminUrl}/config`)).json()).includes('key-two'), '/config never shows the key');
  });

  test('an API server restart: requests keep being served, the informer is restarted and picks up later changes', async (t) => {
    const logIndex = running().logs.length;
    let outageDone = false;
    const restart = kube.restartApiServer().finally(() => (outageDone = true));
    // While the API server is away, the last snapshot keeps serving.
    let during = 0;
    while (!outageDone) {
      const answer = await chat('marker');
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      during++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await restart;
    t.diagnostic(`${during} requests served during the API server restart`);
    assert.ok(during > 0);
    await until(
      'the watch noticed the outage',
      async () => logsAfter(logIndex, (l) => l.msg === 'FallbackChain watch failed; restarting it').length > 0,
      30_000,
    );

    // A change after the restart reaches the proxy: the informer was restarted.
    const started = performance.now();
    await editChain('marker', setStep('fault:ok#after-restart'));
    const ms = await until('change after the restart', async () => (await served()).get('marker')?.steps[0]?.model === 'fault:ok#after-restart', 60_000);
    t.diagnostic(
      `first change after the restart live after ${ms.toFixed(0)} ms (restart backoff included), ${(performance.now() - started).toFixed(0)} ms incl. the write`,
    );
    assert.equal((await chat('marker')).status, 200);
    assert.equal(up.requestsFor('fault:ok#after-restart').length, 1);
    // Restarts were spaced by the backoff: a handful, not a flood.
    const restarts = logsAfter(logIndex, (l) => l.msg === 'FallbackChain watch failed; restarting it');
    t.diagnostic(
      `informer restarts during the outage: ${restarts.length}: ${restarts.map((l) => `${String((l['error'] as Json)['message'])} -> restart in ${String(l['restartInMs'])} ms`).join('; ')}`,
    );
    assert.ok(restarts.length <= 10, `${restarts.length} restarts`);
    // Once recovered, changes are fast again.
    const again = await measureApply(
      t,
      'change after recovery',
      () => editChain('marker', setStep('fault:ok#recovered')),
      (s) => s.get('marker')?.steps[0]?.model === 'fault:ok#recovered',
    );
    assert.ok(again < APPLY_BOUND_MS);
  });
});
