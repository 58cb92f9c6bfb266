// Issue 12, finding 1, end to end: `serve --kubernetes` on a real kube-apiserver, a chain
// author's FallbackChain whose steps name the sidecar's environment (apiKey.env) and a
// sidecar file standing in for the service-account token (apiKey.file), pointed at a server
// the author controls (the fault upstream). Those steps are skipped with
// local_credentials_refused (attempts header, /config, logs) and the upstream never sees
// the values; the Secret key and a header value from the Secret are used (and redacted).
// With --allow-local-credentials the operator gets the old behaviour back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { chainReaderClusterRole, chainReaderRoleBinding } from '../../src/k8s/rbac.ts';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';
import { startKubeProxy, type KubeProxyHarness } from '../support/kube-proxy-harness.ts';

const NS = 'team-b';
const GROUP = { group: 'llmfallback.io', version: 'v1alpha1', plural: 'fallbackchains' };
const ENV_SECRET = 'sk-sidecar-env-value-do-not-leak';
const TOKEN = 'eyJhbGciOi.service-account-token.do-not-leak';
const SECRET_KEY = 'sk-from-the-credentials-secret';
const AZURE_KEY = 'azure-header-key-from-the-secret';

type Json = Record<string, unknown>;

describe('serve --kubernetes: chains cannot take the pod credentials', { timeout: 240_000 }, () => {
  let kube: KubeHarness;
  let up: FaultUpstream;
  let dir: string;
  let tokenFile: string;
  let kubeconfigPath: string;
  let chains: CustomObjectsApi;
  const proxies: KubeProxyHarness[] = [];

  const stealingChain = (name: string, tag: string): Json => ({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name, namespace: NS },
    spec: {
      providers: [
        { name: 'by-env', baseURL: up.url, apiKey: { env: 'SIDECAR_SECRET' } },
        { name: 'by-file', baseURL: up.url, apiKey: { file: tokenFile } },
        { name: 'by-secret', baseURL: up.url, apiKey: { secretKey: 'mock' }, headers: { 'api-key': { valueFrom: { secretKey: 'azure' } }, 'x-org': 'org-7' } },
      ],
      steps: [
        { provider: 'by-env', model: `fault:echo-key#env-${tag}`, retries: 0 },
        { provider: 'by-file', model: `fault:echo-key#file-${tag}`, retries: 0 },
        { provider: 'by-secret', model: `fault:ok#secret-${tag}`, retries: 0 },
      ],
    },
  });

  async function startProxy(extraArgs: string[] = []): Promise<KubeProxyHarness> {
    const proxy = await startKubeProxy({
      kubeconfigPath,
      namespace: NS,
      credentials: { mock: SECRET_KEY, azure: AZURE_KEY },
      env: { SIDECAR_SECRET: ENV_SECRET },
      extraArgs,
    });
    proxies.push(proxy);
    return proxy;
  }

  async function until(what: string, check: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
    const started = performance.now();
    while (!(await check())) {
      if (performance.now() - started > limitMs) assert.fail(`${what}: still not true after ${limitMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async function configOf(proxy: KubeProxyHarness, model: string): Promise<Json | undefined> {
    const res = await fetch(`${proxy.adminUrl}/config`);
    if (res.status !== 200) return undefined;
    return ((await res.json()) as { chains: Json[] }).chains.find((c) => c['model'] === model);
  }

  async function chat(proxy: KubeProxyHarness, model: string): Promise<{ status: number; attempts: string | null; text: string }> {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: res.status, attempts: res.headers.get('x-llm-fallback-attempts'), text: await res.text() };
  }

  before(async () => {
    kube = await startKube();
    await kube.installCrd();
    await kube.createNamespace(NS);
    up = await startFaultUpstream();
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-sa-'));
    tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, TOKEN);
    const admin = kube.kubeConfig();
    chains = admin.makeApiClient(CustomObjectsApi);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: chainReaderClusterRole() });
    await rbac.createNamespacedRoleBinding({ namespace: NS, body: chainReaderRoleBinding(NS) });
    kubeconfigPath = (await kube.serviceAccountKubeConfig(NS, 'app')).kubeconfigPath;
    await chains.createNamespacedCustomObject({ ...GROUP, namespace: NS, body: stealingChain('steal', 'a') });
  });

  after(async () => {
    for (const proxy of proxies) await proxy.close();
    await up?.close();
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('apiKey.env and apiKey.file steps are skipped with local_credentials_refused; the values never leave', async () => {
    const proxy = await startProxy();
    await until('steal served', async () => (await configOf(proxy, 'steal')) !== undefined);
    const reply = await chat(proxy, 'steal');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(
      reply.attempts,
      'by-env/fault:echo-key#env-a=skipped(local_credentials_refused), by-file/fault:echo-key#file-a=skipped(local_credentials_refused), by-secret/fault:ok#secret-a=ok',
    );
    assert.equal(up.requestsFor('fault:echo-key#env-a').length, 0, 'no request with the env value');
    assert.equal(up.requestsFor('fault:echo-key#file-a').length, 0, 'no request with the token');
    const sent = up.requestsFor('fault:ok#secret-a')[0];
    assert.equal(sent?.headers['authorization'], `Bearer ${SECRET_KEY}`, 'the Secret key is used');
    assert.equal(sent?.headers['api-key'], AZURE_KEY, 'the header value comes from the Secret');
    assert.equal(sent?.headers['x-org'], 'org-7');
    const everything = JSON.stringify(up.requests);
    assert.ok(!everything.includes(ENV_SECRET) && !everything.includes(TOKEN), 'neither value reached the upstream');

    // /config: the reason and its code; the header from the Secret is listed as a credential, never its value.
    const config = await configOf(proxy, 'steal');
    const steps = config?.['steps'] as Array<{ apiKey: Json; secretHeaders: string[] }>;
    assert.deepEqual(
      steps.map((s) => s.apiKey['problemCode']),
      ['local_credentials_refused', 'local_credentials_refused', null],
    );
    assert.deepEqual(steps[2]?.secretHeaders, ['api-key']);
    const configText = JSON.stringify(config);
    for (const value of [ENV_SECRET, TOKEN, SECRET_KEY, AZURE_KEY])
      assert.ok(!configText.includes(value), `/config shows no credential (${value.slice(0, 6)}…)`);

    // Logs: the skip warning at load and the request log line carry the code; no value is logged.
    const warned = proxy.logs.filter((l) => l.msg === 'step will be skipped: no API key' && l['chain'] === 'steal');
    assert.deepEqual(
      warned.map((l) => l['problemCode']),
      ['local_credentials_refused', 'local_credentials_refused'],
    );
    const requestLine = proxy.logs.find((l) => Array.isArray(l['attempts']) && l['chain'] === 'steal');
    const reasons = (requestLine?.['attempts'] as Json[]).map((a) => String(a['reason'] ?? ''));
    assert.match(reasons[0] ?? '', /^local_credentials_refused: no API key: apiKey\.env is refused in Kubernetes/);
    const logText = JSON.stringify(proxy.logs);
    for (const value of [ENV_SECRET, TOKEN, SECRET_KEY, AZURE_KEY]) assert.ok(!logText.includes(value), `the log shows no credential (${value.slice(0, 6)}…)`);
  });

  test('a header value from the Secret that an upstream echoes is redacted from the caller', async () => {
    const proxy = proxies[0];
    assert.ok(proxy);
    await chains.createNamespacedCustomObject({
      ...GROUP,
      namespace: NS,
      body: {
        apiVersion: 'llmfallback.io/v1alpha1',
        kind: 'FallbackChain',
        metadata: { name: 'echo', namespace: NS },
        spec: {
          providers: [{ name: 'p', baseURL: up.url, headers: { authorization: { valueFrom: { secretKey: 'azure' } } } }],
          steps: [{ provider: 'p', model: 'fault:401-echo-key#echo', retries: 0 }],
        },
      },
    });
    await until('echo served', async () => (await configOf(proxy, 'echo')) !== undefined);
    const reply = await chat(proxy, 'echo');
    assert.equal(reply.status, 401);
    assert.ok(up.requestsFor('fault:401-echo-key#echo').length === 1);
    assert.ok(!reply.text.includes(AZURE_KEY), `the caller never sees the Secret's header value: ${reply.text}`);
  });

  test('the Secret binds its keys to hosts: a chain pointing them elsewhere is skipped (llmfallback.io-allowed-hosts)', async () => {
    const proxy = proxies[0];
    assert.ok(proxy);
    const before = up.requests.length;
    await proxy.writeCredentials({ mock: SECRET_KEY, azure: AZURE_KEY, 'llmfallback.io-allowed-hosts': 'mock: [api.openai.com]\n' });
    await until('the binding applied', async () => {
      const steps = (await configOf(proxy, 'steal'))?.['steps'] as Array<{ apiKey: Json }> | undefined;
      return steps?.[2]?.apiKey['problemCode'] === 'credential_host_not_allowed';
    });
    const reply = await chat(proxy, 'steal');
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.attempts ?? '', /by-secret\/fault:ok#secret-a=skipped\(credential_host_not_allowed\)$/);
    assert.equal(up.requests.length, before, 'nothing was sent to the host the Secret does not allow');
    // Binding the key to the upstream's origin (plain http, written out, with its port) lets it through again.
    await proxy.writeCredentials({ mock: SECRET_KEY, azure: AZURE_KEY, 'llmfallback.io-allowed-hosts': `mock: ["http://127.0.0.1:${up.port}"]\n` });
    await until('the binding relaxed', async () => {
      const steps = (await configOf(proxy, 'steal'))?.['steps'] as Array<{ apiKey: Json }> | undefined;
      return steps?.[2]?.apiKey['present'] === true;
    });
    assert.equal((await chat(proxy, 'steal')).status, 200);
  });

  test('--allow-local-credentials: the operator lets chains use the sidecar env and files', async () => {
    const proxy = await startProxy(['--allow-local-credentials']);
    await until('steal served', async () => (await configOf(proxy, 'steal')) !== undefined);
    const reply = await chat(proxy, 'steal');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.attempts, 'by-env/fault:echo-key#env-a=ok');
    assert.equal(up.requestsFor('fault:echo-key#env-a')[0]?.headers['authorization'], `Bearer ${ENV_SECRET}`);
  });
});
