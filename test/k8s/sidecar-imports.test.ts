// Issue 16: `serve --kubernetes` does not load @kubernetes/client-node (~44 MB of idle RSS)
// in-cluster or with a token / client-certificate kubeconfig; only a kubeconfig whose user
// needs a plugin (exec, auth-provider) loads it. Nor does it load the yaml library unless the
// kubeconfig is YAML (~1 MB: src/core/yaml.ts). Each case runs in a fresh Node process that
// records every module it resolves, against a real kube-apiserver, until the chains are listed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { chainReaderClusterRole, chainReaderRoleBinding } from '../../src/k8s/rbac.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NS = 'shop';
const CLIENT_NODE = /\/node_modules\/@kubernetes\//;
const YAML_LIBRARY = /\/node_modules\/yaml\//;

const RECORD = `
  import { registerHooks } from 'node:module';
  const seen = [];
  registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
  const until = async (check) => { for (let i = 0; i < 3000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10)); return check(); };`;

/** The sidecar as the CLI starts it: startServe with --kubernetes --kubeconfig, until /readyz is 200. */
const SERVE_PROBE = `${RECORD}
  const { parseServeOptions } = await import('./src/config/options.ts');
  const { KnownSecrets } = await import('./src/observability/known-secrets.ts');
  const { createLogger } = await import('./src/observability/logger.ts');
  const { startServe } = await import('./src/serve.ts');
  const [kubeconfig, namespace] = process.argv.slice(1);
  const options = parseServeOptions(['--kubernetes', '--kubeconfig', kubeconfig, '--namespace', namespace, '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--credentials-dir', '/nonexistent/llmfb-credentials', '--log-level', 'silent'], {});
  const secrets = new KnownSecrets();
  const server = await startServe(options, { logger: createLogger('silent', undefined, secrets), secrets });
  const ready = await until(async () => (await fetch(server.adminUrl + '/readyz')).status === 200);
  await server.drain();
  console.log(JSON.stringify({ ready, seen }));`;

/** In a pod: the service account's files (here a temporary folder) and the environment the kubelet sets. */
const IN_CLUSTER_PROBE = `${RECORD}
  await import('./src/serve.ts');
  const { createLogger } = await import('./src/observability/logger.ts');
  const { loadApiEndpoint } = await import('./src/k8s/api-endpoint.ts');
  const { ChainWatcher } = await import('./src/k8s/chain-watcher.ts');
  const [host, port, serviceAccountDir, namespace] = process.argv.slice(1);
  const endpoint = await loadApiEndpoint({ env: { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port }, serviceAccountDir });
  const watcher = new ChainWatcher({ endpoint, namespace, keys: { env: {}, credentialsDir: '/nonexistent/llmfb-credentials' }, logger: createLogger('silent') });
  let applied = false;
  await watcher.start(() => { applied = true; }, () => {});
  const ready = await until(async () => applied);
  watcher.stop();
  console.log(JSON.stringify({ ready, via: endpoint.via, seen }));`;

async function probe(script: string, args: string[]): Promise<{ ready: boolean; via?: string; seen: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { ready: boolean; via?: string; seen: string[] };
}

describe('serve --kubernetes loads no @kubernetes/client-node module, and yaml only for a YAML kubeconfig', { timeout: 180_000 }, () => {
  let kube: KubeHarness;
  let dir: string;
  let token: string;

  async function kubeconfigWith(name: string, user: Record<string, unknown>): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster: { server: kube.server, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'app', user }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'app', namespace: NS } }],
        'current-context': 'test',
      }),
    );
    return file;
  }

  before(async () => {
    kube = await startKube();
    await kube.installCrd();
    await kube.createNamespace(NS);
    const rbac = kube.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: chainReaderClusterRole() });
    await rbac.createNamespacedRoleBinding({ namespace: NS, body: chainReaderRoleBinding(NS) });
    const sa = await kube.serviceAccountKubeConfig(NS, 'app');
    token = (JSON.parse(await readFile(sa.kubeconfigPath, 'utf8')) as { users: Array<{ user: { token: string } }> }).users[0]?.user.token ?? '';
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-imports-'));
  });

  after(async () => {
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('with a token kubeconfig: ready, and no client-node or yaml module resolved', async () => {
    const result = await probe(SERVE_PROBE, [await kubeconfigWith('token.kubeconfig', { token }), NS]);
    assert.equal(result.ready, true, 'the chains were listed (/readyz 200)');
    assert.deepEqual(
      result.seen.filter((url) => CLIENT_NODE.test(url) || YAML_LIBRARY.test(url)),
      [],
    );
    assert.ok(
      result.seen.some((url) => url.endsWith('/src/k8s/list-watch.ts')),
      'the probe saw the watch client load',
    );
  });

  test('in-cluster (service account token and CA): listed, and no client-node or yaml module resolved', async () => {
    const saDir = path.join(dir, 'sa');
    await mkdir(saDir, { recursive: true });
    const served = await readFile(path.join(path.dirname(kube.kubeconfigPath), 'certs', 'apiserver.crt'), 'utf8');
    await writeFile(path.join(saDir, 'ca.crt'), served.split(/(?=-----BEGIN CERTIFICATE-----)/)[1] ?? '');
    await writeFile(path.join(saDir, 'token'), token);
    const result = await probe(IN_CLUSTER_PROBE, ['127.0.0.1', new URL(kube.server).port, saDir, NS]);
    assert.deepEqual({ ready: result.ready, via: result.via }, { ready: true, via: 'in-cluster' });
    assert.deepEqual(
      result.seen.filter((url) => CLIENT_NODE.test(url) || YAML_LIBRARY.test(url)),
      [],
    );
  });

  test('with the same kubeconfig written as YAML (as kubectl writes it): the yaml library is loaded for it, and the chains are listed', async () => {
    // The control case for yaml: the same probe sees the library when the file needs it.
    const file = path.join(dir, 'token.yaml.kubeconfig');
    await writeFile(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: ${kube.server}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: app',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: test',
        `  context: {cluster: test, user: app, namespace: ${NS}}`,
        'current-context: test',
      ].join('\n'),
    );
    const result = await probe(SERVE_PROBE, [file, NS]);
    assert.equal(result.ready, true);
    assert.ok(result.seen.some((url) => YAML_LIBRARY.test(url)));
    assert.deepEqual(
      result.seen.filter((url) => CLIENT_NODE.test(url)),
      [],
    );
  });

  test('with an exec user (a cloud kubeconfig): client-node is loaded for it, and the chains are listed', async () => {
    // The control case: the same probe sees client-node when it is needed.
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } });
    const exec = {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: process.execPath,
      args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`],
      interactiveMode: 'Never',
    };
    const result = await probe(SERVE_PROBE, [await kubeconfigWith('exec.kubeconfig', { exec }), NS]);
    assert.equal(result.ready, true);
    assert.ok(result.seen.some((url) => CLIENT_NODE.test(url)));
  });
});
