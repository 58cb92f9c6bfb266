// Finding 1 of issue 12: a FallbackChain author must not take the pod's credentials. In
// Kubernetes mode only keys of the mounted credentials Secret are used (apiKey.file / apiKey.env
// are refused unless the operator allows them), a secretKey can never name a file outside the
// Secret's folder even when validation was bypassed, and header values read from the Secret
// are credentials like the key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentialProblems, CREDENTIAL_PROBLEM, isSecretKeyName, KUBERNETES_POLICY, LOCAL_POLICY } from '../../src/chain/credential-rules.ts';
import { resolveChain, type KeySources } from '../../src/chain/resolve.ts';
import type { FallbackChainDoc } from '../../src/chain/spec.ts';
import { ConfigStore } from '../../src/chain/store.ts';
import { validateChainDocument } from '../../src/chain/validate.ts';

type Json = Record<string, unknown>;

function doc(provider: Json): FallbackChainDoc {
  const result = validateChainDocument({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'chat' },
    spec: { providers: [{ name: 'p', baseURL: 'http://127.0.0.1:9/v1', ...provider }], steps: [{ provider: 'p', model: 'm' }] },
  });
  if (!result.ok) assert.fail(`expected valid, got ${JSON.stringify(result.problems)}`);
  return result.doc;
}

/** A document as if the schema had been bypassed (an old CRD, a hand-written object). */
function unchecked(provider: Json): FallbackChainDoc {
  const d = doc({});
  Object.assign(d.spec.providers[0] as object, provider);
  return d;
}

describe('Kubernetes credential rules', () => {
  let root: string;
  let credentialsDir: string;
  const env = { SIDECAR_SECRET: 'sk-from-the-sidecar-env' };
  let tokenFile: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'llmfb-creds-'));
    credentialsDir = path.join(root, 'etc', 'credentials');
    await mkdir(credentialsDir, { recursive: true });
    await writeFile(path.join(credentialsDir, 'openai'), 'sk-from-the-secret\n');
    await writeFile(path.join(credentialsDir, 'azure-api-key'), 'azure-secret-value\n');
    // What a chain author would like to read: the service-account token, next to the Secret.
    tokenFile = path.join(root, 'etc', 'token');
    await writeFile(tokenFile, 'service-account-token');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const kube = (): KeySources => ({ env, credentialsDir, policy: KUBERNETES_POLICY });

  test('apiKey.env is refused in Kubernetes mode: no key, the step is skipped with local_credentials_refused', () => {
    const provider = resolveChain(doc({ apiKey: { env: 'SIDECAR_SECRET' } }), 'ns/chat', kube()).steps[0]?.provider;
    assert.equal(provider?.apiKey, undefined);
    assert.equal(provider?.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
    assert.match(provider?.keyProblem ?? '', /apiKey\.env is refused in Kubernetes/);
  });

  test('apiKey.file is refused in Kubernetes mode (the service-account token stays unread)', () => {
    const provider = resolveChain(doc({ apiKey: { file: tokenFile } }), 'ns/chat', kube()).steps[0]?.provider;
    assert.equal(provider?.apiKey, undefined);
    assert.equal(provider?.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
  });

  test('--allow-local-credentials lets the operator allow file and env', () => {
    const keys = { ...kube(), policy: { kubernetes: true, allowLocalCredentials: true } };
    assert.equal(resolveChain(doc({ apiKey: { env: 'SIDECAR_SECRET' } }), 'ns/chat', keys).steps[0]?.provider.apiKey, 'sk-from-the-sidecar-env');
    assert.equal(resolveChain(doc({ apiKey: { file: tokenFile } }), 'ns/chat', keys).steps[0]?.provider.apiKey, 'service-account-token');
  });

  test('local files keep every source (the operator wrote them)', () => {
    const keys = { env, credentialsDir };
    assert.equal(resolveChain(doc({ apiKey: { env: 'SIDECAR_SECRET' } }), 'x.yaml#1', keys).steps[0]?.provider.apiKey, 'sk-from-the-sidecar-env');
  });

  test('apiKey.secretKey reads the mounted Secret in Kubernetes mode', () => {
    const provider = resolveChain(doc({ apiKey: { secretKey: 'openai' } }), 'ns/chat', kube()).steps[0]?.provider;
    assert.equal(provider?.apiKey, 'sk-from-the-secret');
    assert.equal(provider?.keyProblem, undefined);
  });

  // Path traversal through secretKey, with validation bypassed: the resolver itself refuses.
  for (const secretKey of ['../token', '..', '.', '../credentials/openai', '/etc/passwd', 'a/../../token', '..token', 'sub/key']) {
    test(`secretKey ${JSON.stringify(secretKey)} never reads outside the Secret (validation bypassed)`, () => {
      const provider = resolveChain(unchecked({ apiKey: { secretKey } }), 'ns/chat', kube()).steps[0]?.provider;
      assert.equal(provider?.apiKey, undefined);
      assert.equal(provider?.keyProblemCode, CREDENTIAL_PROBLEM.invalidSecretKey);
      // Same in local mode: the credentials folder is the Secret's there too.
      const local = resolveChain(unchecked({ apiKey: { secretKey } }), 'x.yaml#1', { env, credentialsDir }).steps[0]?.provider;
      assert.equal(local?.apiKey, undefined);
    });
  }

  test('the schema refuses secretKey names that are not Secret key names', () => {
    for (const secretKey of ['../token', '..token', '.', 'a/b']) {
      const result = validateChainDocument({
        apiVersion: 'llmfallback.io/v1alpha1',
        kind: 'FallbackChain',
        metadata: { name: 'chat' },
        spec: { providers: [{ name: 'p', baseURL: 'http://127.0.0.1:9/v1', apiKey: { secretKey } }], steps: [{ provider: 'p', model: 'm' }] },
      });
      assert.equal(result.ok, false, secretKey);
    }
    for (const ok of ['openai', 'key.v2', 'A_B-c', '.dotfile']) assert.ok(isSecretKeyName(ok), ok);
  });

  test('a header value from the Secret is resolved and counts as a credential', () => {
    const chain = resolveChain(doc({ headers: { 'x-org': 'org-1', 'api-key': { valueFrom: { secretKey: 'azure-api-key' } } } }), 'ns/chat', kube());
    const provider = chain.steps[0]?.provider;
    assert.deepEqual(provider?.headers, { 'x-org': 'org-1', 'api-key': 'azure-secret-value' });
    assert.deepEqual(provider?.secretHeaders, ['api-key']);
    const snapshot = new ConfigStore().apply([chain]);
    assert.ok(snapshot.secrets.includes('azure-secret-value'), 'redaction knows the header value');
    assert.ok(!snapshot.secrets.includes('org-1'), 'a literal header with a name that is no credential is configuration, not a secret');
  });

  test('a header from a Secret key that is missing or not a key name skips the step with the code', () => {
    const missing = resolveChain(doc({ headers: { 'api-key': { valueFrom: { secretKey: 'absent' } } } }), 'ns/chat', kube()).steps[0]?.provider;
    assert.equal(missing?.keyProblemCode, CREDENTIAL_PROBLEM.unavailable);
    assert.match(missing?.keyProblem ?? '', /^header api-key: /);
    assert.equal(missing?.headers['api-key'], undefined);
    const traversal = resolveChain(unchecked({ headers: { 'api-key': { valueFrom: { secretKey: '../token' } } } }), 'ns/chat', kube()).steps[0]?.provider;
    assert.equal(traversal?.keyProblemCode, CREDENTIAL_PROBLEM.invalidSecretKey);
    assert.equal(traversal?.headers['api-key'], undefined);
  });

  test('a header value that is neither a string nor {valueFrom: {secretKey}} is invalid', () => {
    for (const value of [5, { valueFrom: { env: 'X' } }, { valueFrom: { secretKey: 'a/b' } }, { secretKey: 'a' }]) {
      const result = validateChainDocument({
        apiVersion: 'llmfallback.io/v1alpha1',
        kind: 'FallbackChain',
        metadata: { name: 'chat' },
        spec: { providers: [{ name: 'p', baseURL: 'http://127.0.0.1:9/v1', headers: { h: value } }], steps: [{ provider: 'p', model: 'm' }] },
      });
      assert.equal(result.ok, false, JSON.stringify(value));
    }
  });

  test('credentialProblems: what the controller and validate --kubernetes report', () => {
    const d = unchecked({ apiKey: { env: 'SIDECAR_SECRET' } });
    assert.deepEqual(
      credentialProblems(d, KUBERNETES_POLICY).map((p) => [p.path, p.message.split(':')[0]]),
      [['/spec/providers/0/apiKey/env', 'local_credentials_refused']],
    );
    assert.deepEqual(credentialProblems(d, LOCAL_POLICY), []);
    assert.deepEqual(credentialProblems(d, { kubernetes: true, allowLocalCredentials: true }), []);
    const header = unchecked({ headers: { h: { valueFrom: { secretKey: '..x' } } } });
    assert.deepEqual(
      credentialProblems(header, LOCAL_POLICY).map((p) => p.path),
      ['/spec/providers/0/headers/h/valueFrom/secretKey'],
    );
    assert.deepEqual(credentialProblems(doc({ apiKey: { secretKey: 'openai' } }), KUBERNETES_POLICY), []);
  });
});

describe('the credentials Secret binds keys to hosts (llmfallback.io-allowed-hosts)', () => {
  let credentialsDir: string;
  before(async () => {
    credentialsDir = await mkdtemp(path.join(tmpdir(), 'llmfb-hosts-'));
    await writeFile(path.join(credentialsDir, 'openai'), 'sk-openai');
    await writeFile(path.join(credentialsDir, 'azure'), 'azure-key');
    await writeFile(path.join(credentialsDir, 'free'), 'free-key');
  });
  after(async () => {
    await rm(credentialsDir, { recursive: true, force: true });
  });

  const keyFor = (baseURL: string, provider: Json): { apiKey?: string; code?: string; headers: Record<string, string> } => {
    const p = resolveChain(doc({ baseURL, ...provider }), 'ns/chat', { env: {}, credentialsDir, policy: KUBERNETES_POLICY }).steps[0]?.provider;
    return { apiKey: p?.apiKey, code: p?.keyProblemCode, headers: p?.headers ?? {} };
  };

  test('a bound key goes only to its hosts (exact or *.suffix); other keys are free; no file, no binding', async () => {
    assert.equal(keyFor('https://attacker.example/v1', { apiKey: { secretKey: 'openai' } }).apiKey, 'sk-openai', 'no binding file: unrestricted');
    await writeFile(path.join(credentialsDir, 'llmfallback.io-allowed-hosts'), 'openai: [api.openai.com]\nazure: "*.openai.azure.com"\n');
    assert.equal(keyFor('https://api.openai.com/v1', { apiKey: { secretKey: 'openai' } }).apiKey, 'sk-openai');
    assert.equal(
      keyFor('https://API.OpenAI.com:443/v1', { apiKey: { secretKey: 'openai' } }).apiKey,
      'sk-openai',
      "host compared case-insensitively; 443 is https's own port",
    );
    const refused = keyFor('https://attacker.example/v1', { apiKey: { secretKey: 'openai' } });
    assert.deepEqual([refused.apiKey, refused.code], [undefined, CREDENTIAL_PROBLEM.hostNotAllowed]);
    assert.equal(keyFor('https://api.openai.com.attacker.example/v1', { apiKey: { secretKey: 'openai' } }).apiKey, undefined, 'a suffix trick is not the host');
    assert.equal(
      keyFor('https://shop.openai.azure.com/openai', { headers: { 'api-key': { valueFrom: { secretKey: 'azure' } } } }).headers['api-key'],
      'azure-key',
    );
    const header = keyFor('https://attacker.example/v1', { headers: { 'api-key': { valueFrom: { secretKey: 'azure' } } } });
    assert.deepEqual([header.headers['api-key'], header.code], [undefined, CREDENTIAL_PROBLEM.hostNotAllowed], 'header values are bound too');
    assert.equal(keyFor('https://attacker.example/v1', { apiKey: { secretKey: 'free' } }).apiKey, 'free-key', 'a key not listed is not restricted');
  });

  test('"*" binds every key not listed; a file that does not parse refuses every Secret key', async () => {
    await writeFile(path.join(credentialsDir, 'llmfallback.io-allowed-hosts'), 'openai: [api.openai.com]\n"*": ["http://127.0.0.1:9"]\n');
    assert.equal(keyFor('http://127.0.0.1:9/v1', { apiKey: { secretKey: 'free' } }).apiKey, 'free-key');
    assert.equal(keyFor('https://attacker.example/v1', { apiKey: { secretKey: 'free' } }).code, CREDENTIAL_PROBLEM.hostNotAllowed);
    await writeFile(path.join(credentialsDir, 'llmfallback.io-allowed-hosts'), 'openai: {host: 5}\n');
    const closed = keyFor('https://api.openai.com/v1', { apiKey: { secretKey: 'openai' } });
    assert.deepEqual([closed.apiKey, closed.code], [undefined, CREDENTIAL_PROBLEM.hostNotAllowed]);
  });

  // The review's F2: a binding compared host names only, so a key bound to a host went to it
  // over plain http (readable on the network path) or to any other port (another service).
  test('a binding is an origin: a bare host is https on 443 only; other schemes and ports must be written out', async () => {
    await writeFile(
      path.join(credentialsDir, 'llmfallback.io-allowed-hosts'),
      'openai: [api.openai.com]\nazure: ["*.openai.azure.com", "https://gateway.example:8443", "http://vllm.models.svc:8000"]\n',
    );
    const openai = { apiKey: { secretKey: 'openai' } };
    const plain = keyFor('http://api.openai.com/v1', openai);
    assert.deepEqual([plain.apiKey, plain.code], [undefined, CREDENTIAL_PROBLEM.hostNotAllowed], 'never over plain http to the bound host');
    assert.equal(keyFor('https://api.openai.com:8443/v1', openai).apiKey, undefined, 'nor to another port of it');
    assert.equal(keyFor('http://api.openai.com:443/v1', openai).apiKey, undefined, 'nor plain http on the https port');
    assert.equal(keyFor('https://api.openai.com/v1', openai).apiKey, 'sk-openai');

    const azure = { apiKey: { secretKey: 'azure' } };
    assert.equal(keyFor('https://shop.openai.azure.com/openai', azure).apiKey, 'azure-key');
    assert.equal(keyFor('http://shop.openai.azure.com/openai', azure).apiKey, undefined, 'a *.suffix entry is https too');
    assert.equal(keyFor('https://gateway.example:8443/v1', azure).apiKey, 'azure-key', 'https on a written-out port');
    assert.equal(keyFor('https://gateway.example/v1', azure).apiKey, undefined, 'only on that port');
    assert.equal(keyFor('http://vllm.models.svc:8000/v1', azure).apiKey, 'azure-key', 'plain http when written out, for in-cluster upstreams');
    assert.equal(keyFor('http://vllm.models.svc:8001/v1', azure).apiKey, undefined);
    assert.equal(keyFor('https://vllm.models.svc:8000/v1', azure).apiKey, undefined, 'the scheme is part of the origin');

    const refused = resolveChain(doc({ baseURL: 'http://api.openai.com/v1', ...openai }), 'ns/chat', { env: {}, credentialsDir, policy: KUBERNETES_POLICY })
      .steps[0]?.provider.keyProblem;
    assert.equal(
      refused,
      'Secret key "openai" may only be sent to https://api.openai.com:443 (llmfallback.io-allowed-hosts), not to http://api.openai.com:80',
      'the message names what was bound and what the chain asked for',
    );
  });

  test('an entry that is not an origin (a port without a scheme, a path, user information, another scheme) refuses every Secret key', async () => {
    for (const entry of ['api.openai.com:8443', 'https://api.openai.com/v1', 'https://user@api.openai.com', 'ftp://api.openai.com', 'api.*.com']) {
      await writeFile(path.join(credentialsDir, 'llmfallback.io-allowed-hosts'), `openai: ["${entry}"]\n`);
      const p = resolveChain(doc({ baseURL: 'https://api.openai.com/v1', apiKey: { secretKey: 'free' } }), 'ns/chat', {
        env: {},
        credentialsDir,
        policy: KUBERNETES_POLICY,
      }).steps[0]?.provider;
      assert.deepEqual([p?.apiKey, p?.keyProblemCode], [undefined, CREDENTIAL_PROBLEM.hostNotAllowed], entry);
      assert.match(
        p?.keyProblem ?? '',
        new RegExp(`lists "${entry.replace(/[.*]/g, '\\$&')}", which is not one of host, \\*\\.suffix, https://host\\[:port\\] or http://host\\[:port\\]`),
      );
    }
  });
});
