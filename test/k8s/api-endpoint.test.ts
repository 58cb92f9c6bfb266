// Where `serve --kubernetes` finds its API server and credentials without client-node
// (src/k8s/api-endpoint.ts): the pod's service account, or the kubeconfig's own fields, and
// client-node's KubeConfig only for exec / auth-provider users. Temporary files stand in for
// the mounted service account; requests go to a plain http server on 127.0.0.1 that records
// what it was sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getJson } from '../../src/k8s/api-client.ts';
import { loadApiEndpoint, RotatingToken } from '../../src/k8s/api-endpoint.ts';
import { KubeAccessError } from '../../src/k8s/kube-access.ts';
import { onDerivedSecrets } from '../../src/core/credentials.ts';
import { makeTestCerts } from '../support/test-certs.ts';

let dir: string;
let saDir: string;
let emptySaDir: string;
let server: http.Server;
let serverUrl: string;
const seen: Array<string | undefined> = [];

type Json = Record<string, unknown>;

async function kubeconfig(name: string, cluster: Json, user: Json): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return file;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-endpoint-'));
  saDir = path.join(dir, 'sa');
  emptySaDir = path.join(dir, 'empty-sa');
  await mkdir(saDir);
  await mkdir(emptySaDir);
  await writeFile(path.join(saDir, 'token'), 'sa-token\n');
  await writeFile(path.join(saDir, 'ca.crt'), 'the-ca');
  server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('in-cluster', () => {
  const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };

  test('the service named by the environment, the mounted CA, the token as a bearer', async () => {
    const endpoint = await loadApiEndpoint({ env, serviceAccountDir: saDir });
    assert.equal(endpoint.server, 'https://10.0.0.1:443');
    assert.equal(endpoint.via, 'in-cluster');
    const options = await endpoint.requestOptions();
    assert.equal(String(options.ca), 'the-ca');
    assert.equal(options.rejectUnauthorized, true);
    assert.deepEqual(options.headers, { authorization: 'Bearer sa-token' });
  });

  test('IPv6 service addresses get brackets', async () => {
    const endpoint = await loadApiEndpoint({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: saDir });
    assert.equal(endpoint.server, 'https://[fd00::1]:443');
  });

  const refusals: Array<{ what: string; env: Record<string, string>; sa: () => string; expected: RegExp }> = [
    { what: 'not in a pod', env: {}, sa: () => saDir, expected: /not running in a pod/ },
    { what: 'no token mounted', env, sa: () => emptySaDir, expected: /no service account mounted/ },
  ];
  for (const row of refusals) {
    test(row.what, async () => {
      await assert.rejects(
        loadApiEndpoint({ env: row.env, serviceAccountDir: row.sa() }),
        (e: unknown) => e instanceof KubeAccessError && row.expected.test(e.message),
      );
    });
  }
});

describe('a rotated cluster CA', () => {
  test('a certificate that fails verification makes the next request read ca.crt again, within the re-read period', async () => {
    const serving = await makeTestCerts();
    const other = await makeTestCerts();
    const tls = https.createServer({ key: await readFile(serving.keyFile), cert: await readFile(serving.certFile) }, (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}'),
    );
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const sa = path.join(dir, 'ca-rotation-sa');
      await mkdir(sa, { recursive: true });
      // The pod started before the rotation: its ca.crt holds a CA the server no longer uses.
      await Promise.all([writeFile(path.join(sa, 'token'), 't'), writeFile(path.join(sa, 'ca.crt'), other.caCert)]);
      const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String((tls.address() as AddressInfo).port) };
      const endpoint = await loadApiEndpoint({ env, serviceAccountDir: sa }, { tokenRereadMs: 3_600_000 });
      await assert.rejects(getJson(endpoint, '/api'), (e: unknown) => /certificate|self.signed|verify/i.test((e as Error).message));
      // The kubelet updates ca.crt to the new CA.
      await writeFile(path.join(sa, 'ca.crt'), serving.caCert);
      assert.deepEqual(await getJson(endpoint, '/api'), { items: [] }, 'the next request verifies with the new CA, without a restart');
    } finally {
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
      await Promise.all([serving.remove(), other.remove()]);
    }
  });
});

describe('RotatingToken', () => {
  test('read again once older than the period, and on demand (a 401), keeping the last token while the file is missing', async () => {
    const file = path.join(dir, 'rotating');
    await writeFile(file, 'one');
    let now = 0;
    const token = new RotatingToken(file, 60_000, () => now);
    assert.equal(token.current(), 'one');
    await writeFile(file, 'two');
    now = 59_999;
    assert.equal(token.current(), 'one', 'not yet a minute old');
    now = 60_000;
    assert.equal(token.current(), 'two', 'a minute old: read again');
    await writeFile(file, 'three');
    assert.equal(token.reread(), true, 'a refused token is read again at once; it changed');
    assert.equal(token.reread(), false, 'unchanged');
    await rm(file);
    assert.equal(token.reread(), false, 'the kubelet swapping the file: the last token stays');
    assert.equal(token.current(), 'three');
  });

  test('every token read, and a kubeconfig token or password, is given to the redactor (an error quoting it must not reach a log)', async () => {
    const reported: string[] = [];
    const stop = onDerivedSecrets((values) => reported.push(...values));
    try {
      const file = path.join(dir, 'remembered');
      await writeFile(file, 'projected-token-one');
      const token = new RotatingToken(file, 60_000, () => 0);
      token.current();
      await writeFile(file, 'projected-token-two');
      token.reread();
      assert.deepEqual(reported, ['projected-token-one', 'projected-token-two']);
      const kubeconfig = path.join(dir, 'remembered.kubeconfig');
      await writeFile(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          'current-context: c',
          'contexts: [{name: c, context: {cluster: k, user: u}}]',
          'clusters: [{name: k, cluster: {server: "http://127.0.0.1:9", insecure-skip-tls-verify: true}}]',
          'users: [{name: u, user: {token: static-kubeconfig-token}}]',
        ].join('\n'),
      );
      await loadApiEndpoint({ kubeconfigPath: kubeconfig, env: {} });
      assert.ok(reported.includes('static-kubeconfig-token'));
    } finally {
      stop();
    }
  });
});

describe('--kubeconfig', () => {
  test("token user: the server and the file's TLS fields", async () => {
    const file = await kubeconfig(
      'token',
      { server: 'https://127.0.0.1:6443/prefix/', 'certificate-authority-data': Buffer.from('ca-bytes').toString('base64'), 'tls-server-name': 'api.internal' },
      { token: 't' },
    );
    const endpoint = await loadApiEndpoint({ kubeconfigPath: file, env: {} });
    assert.equal(endpoint.via, 'kubeconfig');
    assert.equal(endpoint.server, 'https://127.0.0.1:6443/prefix', 'a path prefix is kept, its trailing slash dropped');
    const options = await endpoint.requestOptions();
    assert.equal(String(options.ca), 'ca-bytes');
    assert.equal(options.servername, 'api.internal');
    assert.equal(options.rejectUnauthorized, true);
    assert.deepEqual(options.headers, { authorization: 'Bearer t' });
  });

  test('files named relative to the kubeconfig, client certificate', async () => {
    await mkdir(path.join(dir, 'certs'), { recursive: true });
    await writeFile(path.join(dir, 'certs', 'ca.pem'), 'ca-file');
    await writeFile(path.join(dir, 'certs', 'client.pem'), 'cert-file');
    await writeFile(path.join(dir, 'certs', 'client-key.pem'), 'key-file');
    const file = await kubeconfig(
      'certs.kubeconfig',
      { server: 'https://127.0.0.1:6443', 'certificate-authority': 'certs/ca.pem' },
      { 'client-certificate': 'certs/client.pem', 'client-key': 'certs/client-key.pem' },
    );
    const options = await (await loadApiEndpoint({ kubeconfigPath: file, env: {} })).requestOptions();
    assert.deepEqual(
      {
        ca: String(options.ca),
        cert: String(options.cert),
        key: String(options.key),
        rejectUnauthorized: options.rejectUnauthorized,
        headers: options.headers,
      },
      { ca: 'ca-file', cert: 'cert-file', key: 'key-file', rejectUnauthorized: true, headers: {} },
    );
    const insecure = await kubeconfig('insecure.kubeconfig', { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true }, { token: 't' });
    assert.equal((await (await loadApiEndpoint({ kubeconfigPath: insecure, env: {} })).requestOptions()).rejectUnauthorized, false);
  });

  test('CA, client certificate and key files are read again after the re-read period (a rotated cluster CA needs no restart)', async () => {
    await mkdir(path.join(dir, 'rotating'), { recursive: true });
    const file = (name: string): string => path.join(dir, 'rotating', name);
    await Promise.all([writeFile(file('ca.pem'), 'ca-1'), writeFile(file('client.pem'), 'cert-1'), writeFile(file('client-key.pem'), 'key-1')]);
    const config = await kubeconfig(
      'rotating.kubeconfig',
      { server: 'https://127.0.0.1:6443', 'certificate-authority': 'rotating/ca.pem' },
      { 'client-certificate': 'rotating/client.pem', 'client-key': 'rotating/client-key.pem' },
    );
    let now = 0;
    const endpoint = await loadApiEndpoint({ kubeconfigPath: config, env: {} }, { tokenRereadMs: 60_000, now: () => now });
    const files = async (): Promise<string[]> => {
      const options = await endpoint.requestOptions();
      return [String(options.ca), String(options.cert), String(options.key)];
    };
    assert.deepEqual(await files(), ['ca-1', 'cert-1', 'key-1']);
    await Promise.all([writeFile(file('ca.pem'), 'ca-2'), writeFile(file('client.pem'), 'cert-2'), writeFile(file('client-key.pem'), 'key-2')]);
    now = 59_999;
    assert.deepEqual(await files(), ['ca-1', 'cert-1', 'key-1'], 'not yet a minute old');
    now = 60_000;
    assert.deepEqual(await files(), ['ca-2', 'cert-2', 'key-2'], 'a minute old: read again');
    await rm(file('ca.pem'));
    now = 120_000;
    assert.deepEqual(await files(), ['ca-2', 'cert-2', 'key-2'], 'a file missing for a moment (mid-swap): the last content stays');

    // In-cluster, the mounted ca.crt likewise.
    const sa = path.join(dir, 'rotating-sa');
    await mkdir(sa, { recursive: true });
    await Promise.all([writeFile(path.join(sa, 'token'), 't'), writeFile(path.join(sa, 'ca.crt'), 'cluster-ca-1')]);
    now = 0;
    const inCluster = await loadApiEndpoint(
      { env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: sa },
      { tokenRereadMs: 60_000, now: () => now },
    );
    await writeFile(path.join(sa, 'ca.crt'), 'cluster-ca-2');
    now = 60_000;
    assert.equal(String((await inCluster.requestOptions()).ca), 'cluster-ca-2');
  });

  test('tokenFile (re-read as it rotates) and username/password', async () => {
    await writeFile(path.join(dir, 'user-token'), 'from-file');
    const tokenFile = await kubeconfig('token-file', { server: 'https://127.0.0.1:6443' }, { tokenFile: 'user-token' });
    assert.deepEqual((await (await loadApiEndpoint({ kubeconfigPath: tokenFile, env: {} })).requestOptions()).headers, { authorization: 'Bearer from-file' });
    const basic = await kubeconfig('basic', { server: 'https://127.0.0.1:6443' }, { username: 'ann', password: 'pw' });
    assert.deepEqual((await (await loadApiEndpoint({ kubeconfigPath: basic, env: {} })).requestOptions()).headers, {
      authorization: `Basic ${Buffer.from('ann:pw').toString('base64')}`,
    });
  });

  const refusals: Array<{ what: string; file: () => Promise<string>; expected: RegExp }> = [
    { what: 'a file that does not exist', file: async () => path.join(dir, 'missing'), expected: /^--kubeconfig .*missing: ENOENT/ },
    {
      what: 'a current context naming no cluster',
      file: async () => {
        const file = path.join(dir, 'no-cluster');
        await writeFile(
          file,
          JSON.stringify({ apiVersion: 'v1', kind: 'Config', contexts: [{ name: 'x', context: { cluster: 'gone' } }], 'current-context': 'x' }),
        );
        return file;
      },
      expected: /the current context names no cluster/,
    },
    {
      what: 'not YAML',
      file: async () => {
        const file = path.join(dir, 'broken');
        await writeFile(file, 'clusters: [\n');
        return file;
      },
      expected: /^--kubeconfig .*broken: /,
    },
    {
      what: 'insecure-skip-tls-verify: true with a CA (client-go refuses it: the CA would be ignored)',
      file: () =>
        kubeconfig(
          'insecure-and-ca',
          { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true, 'certificate-authority-data': Buffer.from('ca').toString('base64') },
          { token: 't' },
        ),
      expected: /insecure-skip-tls-verify: true and a certificate-authority together/,
    },
    {
      what: 'a client certificate without its key',
      file: () => kubeconfig('cert-no-key', { server: 'https://127.0.0.1:6443' }, { 'client-certificate-data': Buffer.from('cert').toString('base64') }),
      expected: /client-certificate without client-key/,
    },
    {
      what: 'a client key without its certificate',
      file: () => kubeconfig('key-no-cert', { server: 'https://127.0.0.1:6443' }, { 'client-key-data': Buffer.from('key').toString('base64') }),
      expected: /client-key without client-certificate/,
    },
    {
      what: 'a plain http server with a token and TLS verification not knowingly off (the token would cross in cleartext)',
      file: () => kubeconfig('http-token', { server: 'http://127.0.0.1:8080' }, { token: 't' }),
      expected: /plain http: its credentials would cross the network in cleartext/,
    },
    {
      what: 'a plain http server with a client certificate',
      file: () =>
        kubeconfig(
          'http-cert',
          { server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': false },
          { 'client-certificate-data': Buffer.from('c').toString('base64'), 'client-key-data': Buffer.from('k').toString('base64') },
        ),
      expected: /plain http/,
    },
    {
      what: 'a CA file that cannot be read',
      file: () => kubeconfig('bad-ca', { server: 'https://127.0.0.1:6443', 'certificate-authority': 'nowhere/ca.pem' }, { token: 't' }),
      expected: /certificate-authority: ENOENT/,
    },
  ];
  for (const row of refusals) {
    test(`${row.what} is a readable error`, async () => {
      const file = await row.file();
      await assert.rejects(loadApiEndpoint({ kubeconfigPath: file, env: {} }), (e: unknown) => e instanceof KubeAccessError && row.expected.test(e.message));
    });
  }

  test('an exec user (EKS, GKE, AKS kubeconfigs) is authenticated by client-node: its token reaches the server', async () => {
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec-plugin' } };
    const file = await kubeconfig(
      'exec',
      // client-node refuses a plain http server unless TLS verification is off.
      { server: serverUrl, 'insecure-skip-tls-verify': true },
      {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: process.execPath,
          args: ['-e', `process.stdout.write(${JSON.stringify(JSON.stringify(credential))})`],
          interactiveMode: 'Never',
        },
      },
    );
    const endpoint = await loadApiEndpoint({ kubeconfigPath: file, env: {} });
    assert.equal(endpoint.via, 'client-node');
    assert.deepEqual(await getJson(endpoint, '/apis/llmfallback.io/v1alpha1/namespaces/shop/fallbackchains'), { items: [] });
    assert.equal(seen.at(-1), 'Bearer from-exec-plugin');
  });

  test('the plain http server a test harness names (verification knowingly off) is reached without TLS, with the token', async () => {
    const file = await kubeconfig('http', { server: serverUrl, 'insecure-skip-tls-verify': true }, { token: 'plain' });
    await getJson(await loadApiEndpoint({ kubeconfigPath: file, env: {} }), '/api');
    assert.equal(seen.at(-1), 'Bearer plain');
  });
});
