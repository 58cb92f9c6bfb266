// How the controller finds the API server through client-node (loadKubeConfig: --kubeconfig
// or the pod's service account) and how `serve --kubernetes` picks its namespace (--namespace /
// LLM_FALLBACK_NAMESPACE or the service account's namespace file). The sidecar's own endpoint
// loader is api-endpoint.test.ts. No cluster: temporary files stand in for the mounted service account.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseServeOptions } from '../../src/config/options.ts';
import { KubeAccessError, loadKubeConfig, resolveNamespace } from '../../src/k8s/kubeconfig.ts';
import { RememberedTokenFile, TOKEN_FILE_PROVIDER } from '../../src/k8s/service-account-token.ts';
import { onDerivedSecrets } from '../../src/core/credentials.ts';
import { KnownSecrets } from '../../src/observability/known-secrets.ts';
import type { User } from '@kubernetes/client-node';
import type { RequestOptions } from 'node:https';

let dir: string;
let saDir: string;
let emptySaDir: string;
let kubeconfigPath: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-kubeconfig-'));
  saDir = path.join(dir, 'sa');
  emptySaDir = path.join(dir, 'empty-sa');
  await mkdir(saDir);
  await mkdir(emptySaDir);
  await writeFile(path.join(saDir, 'token'), 'sa-token');
  await writeFile(path.join(saDir, 'ca.crt'), 'not-a-real-ca');
  await writeFile(path.join(saDir, 'namespace'), 'shop\n');
  kubeconfigPath = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveNamespace', () => {
  const rows: Array<{ what: string; given: string | undefined; sa: () => string; expected: string | RegExp }> = [
    // The flag (or LLM_FALLBACK_NAMESPACE, from the downward API) wins over the service account.
    { what: 'given namespace', given: 'tenant-a', sa: () => saDir, expected: 'tenant-a' },
    // In a pod without the env: the service account's namespace file (trimmed).
    { what: 'service account namespace file', given: undefined, sa: () => saDir, expected: 'shop' },
    // An empty value is not a namespace: fall back to the file.
    { what: 'empty given value', given: ' ', sa: () => saDir, expected: 'shop' },
    // Neither: a clear error naming both ways to fix it.
    { what: 'no source at all', given: undefined, sa: () => emptySaDir, expected: /pass --namespace NS/ },
    // A value that cannot be a namespace is refused before any request.
    { what: 'invalid name', given: 'Shop_1', sa: () => saDir, expected: /not a valid namespace name/ },
  ];
  for (const row of rows) {
    test(row.what, () => {
      if (typeof row.expected === 'string') assert.equal(resolveNamespace(row.given, row.sa()), row.expected);
      else
        assert.throws(
          () => resolveNamespace(row.given, row.sa()),
          (e: unknown) => e instanceof KubeAccessError && (row.expected as RegExp).test(e.message),
        );
    });
  }
});

describe('loadKubeConfig', () => {
  test('--kubeconfig PATH: the current context of the file', () => {
    // Local runs: the file's current cluster and user.
    const kc = loadKubeConfig({ kubeconfigPath, env: {} });
    assert.equal(kc.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
    assert.equal(kc.getCurrentUser()?.token, 't');
  });

  test('--kubeconfig PATH that does not exist is a readable error', () => {
    // Not a crash with a stack trace: serve reports it as a config error.
    assert.throws(
      () => loadKubeConfig({ kubeconfigPath: path.join(dir, 'missing'), env: {} }),
      (e: unknown) => e instanceof KubeAccessError && e.message.includes('--kubeconfig'),
    );
  });

  const inCluster: Array<{ what: string; env: Record<string, string>; sa: () => string; expected: string | RegExp }> = [
    // The kubelet's env names the API service; the token file is the user (re-read as it rotates).
    {
      what: 'in-cluster, IPv4',
      env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
      sa: () => saDir,
      expected: 'https://10.0.0.1:443',
    },
    // IPv6 service addresses need brackets in the URL.
    {
      what: 'in-cluster, IPv6',
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
      sa: () => saDir,
      expected: 'https://[fd00::1]:443',
    },
    // Outside a pod without --kubeconfig: say so.
    { what: 'not in a pod', env: {}, sa: () => saDir, expected: /not running in a pod/ },
    // In a pod that does not mount its service account token (automountServiceAccountToken: false).
    {
      what: 'no token mounted',
      env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
      sa: () => emptySaDir,
      expected: /no service account mounted/,
    },
  ];
  for (const row of inCluster) {
    test(row.what, () => {
      if (typeof row.expected === 'string') {
        const kc = loadKubeConfig({ env: row.env, serviceAccountDir: row.sa() });
        assert.equal(kc.getCurrentCluster()?.server, row.expected);
        assert.equal(kc.getCurrentCluster()?.caFile, path.join(row.sa(), 'ca.crt'));
        assert.deepEqual(kc.getCurrentUser()?.authProvider, { name: TOKEN_FILE_PROVIDER, config: { path: path.join(row.sa(), 'token') } });
      } else {
        assert.throws(
          () => loadKubeConfig({ env: row.env, serviceAccountDir: row.sa() }),
          (e: unknown) => e instanceof KubeAccessError && (row.expected as RegExp).test(e.message),
        );
      }
    });
  }
});

// The review: the pod's service-account token, which the Kubernetes client reads and sends,
// was not given to the redactor, so an error quoting the request's Authorization header
// would reach the log as it was.
const authorization = (opts: RequestOptions): unknown =>
  opts.headers !== undefined && !Array.isArray(opts.headers) ? (opts.headers as Record<string, unknown>)['Authorization'] : undefined;

describe("the pod's service-account token is given to the redactor when it is read", () => {
  const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.projected-sa-token-Hq7Rk2Lw9.sig-one';
  const ROTATED = 'eyJhbGciOiJSUzI1NiJ9.projected-sa-token-Vb3Nx8Jp4.sig-two';
  let tokenDir: string;
  let secrets: KnownSecrets;
  let unsubscribe: () => void;
  before(async () => {
    tokenDir = path.join(dir, 'sa-redacted');
    await mkdir(tokenDir);
    await writeFile(path.join(tokenDir, 'token'), `${TOKEN}\n`);
    await writeFile(path.join(tokenDir, 'ca.crt'), 'not-a-real-ca');
    secrets = new KnownSecrets();
    unsubscribe = onDerivedSecrets((values) => secrets.remember(values));
  });
  after(() => unsubscribe());

  test('in-cluster: the token the client sends is a known secret from its first request', async () => {
    const kc = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: tokenDir });
    assert.equal(secrets.redact(`401 Unauthorized: Bearer ${TOKEN}`).includes(TOKEN), false, 'not known before the client reads it');
    const opts: { headers?: Record<string, unknown> } = {};
    await kc.applyToHTTPSOptions(opts);
    assert.equal(opts.headers?.['Authorization'], `Bearer ${TOKEN}`, 'the token is what the client sends');
    const line = secrets.redact(`{"msg":"watch failed","err":"401 Unauthorized: Authorization: Bearer ${TOKEN}"}`);
    assert.ok(!line.includes(TOKEN) && !line.includes('projected-sa-token-Hq7Rk2Lw9'), line);
  });

  test('a rotated token is re-read after a minute and given to the redactor too', async () => {
    let now = 1_000_000;
    const auth = new RememberedTokenFile(() => now);
    const user: User = { name: 'u', authProvider: { name: TOKEN_FILE_PROVIDER, config: { path: path.join(tokenDir, 'token') } } };
    const first: RequestOptions = {};
    await auth.applyAuthentication(user, first);
    assert.equal(authorization(first), `Bearer ${TOKEN}`);
    await writeFile(path.join(tokenDir, 'token'), `${ROTATED}\n`);
    now += 30_000;
    const cached: RequestOptions = {};
    await auth.applyAuthentication(user, cached);
    assert.equal(authorization(cached), `Bearer ${TOKEN}`, 'within the minute: the token read before');
    now += 31_000;
    const reread: RequestOptions = {};
    await auth.applyAuthentication(user, reread);
    assert.equal(authorization(reread), `Bearer ${ROTATED}`);
    assert.ok(!secrets.redact(`quoted: ${ROTATED}`).includes(ROTATED));
  });
});

describe('serve flags for --kubernetes', () => {
  const rows: Array<{ what: string; argv: string[]; env: Record<string, string>; expected: { kubeconfigPath?: string; namespace?: string } }> = [
    // Flags as given.
    { what: 'flags', argv: ['--kubernetes', '--kubeconfig', '/k', '--namespace', 'shop'], env: {}, expected: { kubeconfigPath: '/k', namespace: 'shop' } },
    // The injector sets LLM_FALLBACK_NAMESPACE from the downward API.
    {
      what: 'environment',
      argv: ['--kubernetes'],
      env: { LLM_FALLBACK_NAMESPACE: 'shop', LLM_FALLBACK_KUBECONFIG: '/k' },
      expected: { kubeconfigPath: '/k', namespace: 'shop' },
    },
    // A flag beats the environment.
    { what: 'flag over environment', argv: ['--kubernetes', '--namespace', 'a'], env: { LLM_FALLBACK_NAMESPACE: 'b' }, expected: { namespace: 'a' } },
    // Neither: in-cluster config and the service account's namespace.
    { what: 'neither', argv: ['--kubernetes'], env: {}, expected: {} },
  ];
  for (const row of rows) {
    test(row.what, () => {
      const o = parseServeOptions(row.argv, row.env);
      assert.equal(o.kubernetes, true);
      assert.deepEqual(
        { kubeconfigPath: o.kubeconfigPath, namespace: o.namespace },
        { kubeconfigPath: row.expected.kubeconfigPath, namespace: row.expected.namespace },
      );
    });
  }
});
