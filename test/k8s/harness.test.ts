// Smoke test of the real control plane the Kubernetes tests stand on
// (test/support/kube-harness.ts): etcd + kube-apiserver + kubectl, token and
// ServiceAccount authentication, restart with data kept, and a clean stop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { helmBinary, kubectlBinary, liveControlPlanePids, startKube, type KubeHarness } from '../support/kube-harness.ts';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('kube harness', () => {
  let kube: KubeHarness;

  before(async () => {
    kube = await startKube();
  });

  after(async () => {
    await kube.stop();
  });

  test('kubectl and helm come out of the layer zip as executables', async () => {
    const kubectl = await kubectlBinary();
    const helm = await helmBinary();
    await access(kubectl);
    await access(helm);
    const version = await kube.kubectl(['version', '--client', '-o', 'json']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /"gitVersion": "v1\.33\./);
  });

  test('the apiserver listens on 127.0.0.1 and kubectl (admin token) lists the built-in namespaces', async () => {
    assert.match(kube.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const result = await kube.kubectl(['get', 'ns', '-o', 'name']);
    assert.equal(result.code, 0, result.stderr);
    for (const ns of ['namespace/default', 'namespace/kube-system']) assert.ok(result.stdout.includes(ns), result.stdout);
  });

  test('createNamespace creates with labels and merges labels into an existing namespace', async () => {
    await kube.createNamespace('harness-ns', { a: 'one' });
    await kube.createNamespace('harness-ns', { b: 'two' });
    const ns = await kube.kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: 'harness-ns' });
    assert.deepEqual({ a: ns.metadata?.labels?.a, b: ns.metadata?.labels?.b }, { a: 'one', b: 'two' });
  });

  test('a ServiceAccount kubeconfig authenticates as that ServiceAccount, and RBAC forbids (not 401) what it lacks', async () => {
    const sa = await kube.serviceAccountKubeConfig('harness-sa', 'reader');
    const whoami = await kube.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfigPath: sa.kubeconfigPath });
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.equal(whoami.stdout, 'system:serviceaccount:harness-sa:reader');

    const forbidden = await kube.kubectl(['get', 'secrets', '-n', 'kube-system'], { kubeconfigPath: sa.kubeconfigPath });
    assert.notEqual(forbidden.code, 0);
    assert.match(forbidden.stderr, /Forbidden/);
    assert.doesNotMatch(forbidden.stderr, /Unauthorized/);

    // The client-node KubeConfig carries the same identity.
    await assert.rejects(
      sa.kubeConfig.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'kube-system' }),
      (error: unknown) => (error as { code?: number }).code === 403,
    );
  });

  test('a kubeconfig with an unknown token is Unauthorized (the check above can tell the two apart)', async () => {
    const bogus = await kube.kubectl(['--token=not-a-real-token', 'get', 'ns']);
    assert.notEqual(bogus.code, 0);
    assert.match(bogus.stderr, /Unauthorized|must be logged in/);
  });

  test('restartApiServer keeps the same URL and the data in etcd, and issued SA tokens stay valid', async () => {
    const sa = await kube.serviceAccountKubeConfig('harness-sa', 'survivor');
    const made = await kube.kubectl(['create', 'configmap', 'keep-me', '-n', 'default', '--from-literal=k=v']);
    assert.equal(made.code, 0, made.stderr);
    const before = kube.server;

    await kube.restartApiServer();

    assert.equal(kube.server, before);
    const got = await kube.kubectl(['get', 'configmap', 'keep-me', '-n', 'default', '-o', 'jsonpath={.data.k}']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, 'v');
    const whoami = await kube.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfigPath: sa.kubeconfigPath });
    assert.equal(whoami.stdout, 'system:serviceaccount:harness-sa:survivor', whoami.stderr);
  });
});

describe('kube harness stop', () => {
  test('stop() ends etcd and kube-apiserver (no process left) and is idempotent', async () => {
    const kube = await startKube();
    const pids = liveControlPlanePids();
    assert.equal(pids.length >= 2, true, 'etcd and kube-apiserver are running');
    await kube.stop();
    await kube.stop();
    assert.deepEqual(pids.filter(processAlive), []);
    assert.deepEqual(liveControlPlanePids(), []);
  });
});
