// The FallbackChain CRD on a real kube-apiserver: it installs and is Established, the short
// name, category and printer columns work, and a table of YAML fixtures gets the same verdict
// from the API server (schema + CEL) and from validateChainDocument (the file loader) — with
// the same words for the cross-field rules and the same defaults filled in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { validateChainDocument } from '../../src/chain/validate.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/chains/', import.meta.url));
const NAMESPACE = 'crd-fixtures';

interface Fixture {
  file: string;
  text: string;
  /** The first comment line: what the fixture proves. */
  proves: string;
  /** Substring of the API server's error (invalid fixtures). */
  expect?: string;
  /** Substring of one file-loader problem, rendered "path: message" (invalid fixtures). */
  expectFile?: string;
}

function header(text: string, key: string): string | undefined {
  return new RegExp(`^# ${key}: (.+)$`, 'm').exec(text)?.[1];
}

function loadFixtures(kind: 'valid' | 'invalid'): Fixture[] {
  const dir = path.join(FIXTURES, kind);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => {
      const text = readFileSync(path.join(dir, file), 'utf8');
      const proves = /^# (.+)$/m.exec(text)?.[1] ?? '';
      return { file: `${kind}/${file}`, text, proves, expect: header(text, 'expect'), expectFile: header(text, 'expect-file') };
    });
}

const valid = loadFixtures('valid');
const invalid = loadFixtures('invalid');

type Json = Record<string, unknown>;

describe('FallbackChain CRD on a real API server', () => {
  let kube: KubeHarness;

  before(async () => {
    kube = await startKube();
    await kube.installCrd();
    await kube.createNamespace(NAMESPACE);
  });

  after(async () => {
    await kube.stop();
  });

  test('the fixture tables are not empty and every fixture says what it proves', () => {
    assert.ok(valid.length >= 6, `valid fixtures: ${valid.length}`);
    assert.ok(invalid.length >= 8, `invalid fixtures: ${invalid.length}`);
    for (const f of [...valid, ...invalid]) assert.ok(f.proves.length > 10, `${f.file} starts with a comment`);
    for (const f of invalid) assert.ok(f.expect && f.expectFile, `${f.file} has # expect: and # expect-file: headers`);
  });

  test('the CRD is Established with the names, short name and category accepted', async () => {
    const got = await kube.kubectl(['get', 'crd', 'fallbackchains.llmfallback.io', '-o', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const crd = JSON.parse(got.stdout) as { status: { conditions: Array<{ type: string; status: string }>; acceptedNames: Json } };
    const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    assert.equal(conditions['Established'], 'True');
    assert.equal(conditions['NamesAccepted'], 'True');
    assert.deepEqual(crd.status.acceptedNames, {
      kind: 'FallbackChain',
      listKind: 'FallbackChainList',
      plural: 'fallbackchains',
      singular: 'fallbackchain',
      shortNames: ['fc'],
      categories: ['llmfallback'],
    });
  });

  test('kubectl get fc (short name) and get llmfallback (category) print READY, MODEL, STEPS, AGE', async () => {
    const doc = `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: printed}
spec:
  model: chat
  providers: [{name: p, baseURL: "http://127.0.0.1:9/v1"}]
  steps: [{provider: p, model: first-model}, {provider: p, model: second-model}]
`;
    const created = await kube.kubectl(['create', '-n', NAMESPACE, '-f', '-'], { input: doc });
    assert.equal(created.code, 0, created.stderr);
    // The status subresource takes the controller's write; the main resource would drop it.
    const status = JSON.stringify({
      status: { observedGeneration: 1, steps: 2, conditions: [{ type: 'Ready', status: 'True', reason: 'Valid', message: '' }] },
    });
    const patched = await kube.kubectl(['patch', 'fc', 'printed', '-n', NAMESPACE, '--subresource=status', '--type=merge', '-p', status]);
    assert.equal(patched.code, 0, patched.stderr);

    for (const resource of ['fc', 'llmfallback']) {
      const got = await kube.kubectl(['get', resource, 'printed', '-n', NAMESPACE]);
      assert.equal(got.code, 0, got.stderr);
      const [head, row] = got.stdout
        .trim()
        .split('\n')
        .map((line) => line.trim().split(/\s+/));
      assert.deepEqual(head, ['NAME', 'READY', 'MODEL', 'STEPS', 'AGE'], resource);
      // STEPS is the count the controller writes into status.steps.
      assert.deepEqual(row?.slice(0, 4), ['printed', 'True', 'chat', '2'], resource);
      assert.match(row?.[4] ?? '', /^\d+s$/);
    }
  });

  test('status is a subresource: a status sent with the spec is dropped', async () => {
    const doc = `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: status-dropped}
spec:
  providers: [{name: p, baseURL: "http://127.0.0.1:9/v1"}]
  steps: [{provider: p, model: m}]
status:
  conditions: [{type: Ready, status: "True"}]
`;
    const created = await kube.kubectl(['create', '-n', NAMESPACE, '-f', '-', '-o', 'json'], { input: doc });
    assert.equal(created.code, 0, created.stderr);
    assert.equal((JSON.parse(created.stdout) as Json)['status'], undefined);
  });

  describe('valid fixtures: the server accepts and defaults them exactly as the file loader does', () => {
    for (const fixture of valid) {
      test(`${fixture.file}: ${fixture.proves}`, async () => {
        const local = validateChainDocument(parseYaml(fixture.text));
        assert.equal(local.ok, true, `the file loader accepts it: ${JSON.stringify(local.ok ? [] : local.problems)}`);
        const created = await kube.kubectl(['create', '--validate=strict', '-n', NAMESPACE, '-f', '-', '-o', 'json'], { input: fixture.text });
        assert.equal(created.code, 0, `the server accepts it: ${created.stderr}`);
        const stored = JSON.parse(created.stdout) as { spec: Json };
        if (local.ok) assert.deepEqual(stored.spec, local.doc.spec, 'server-side defaults == file-loader defaults');
      });
    }

    test('server-side defaults are really applied (minimal: retries 1, api openai, backoff 250..8000)', async () => {
      const got = await kube.kubectl(['get', 'fc', 'minimal', '-n', NAMESPACE, '-o', 'json']);
      assert.equal(got.code, 0, got.stderr);
      const spec = (JSON.parse(got.stdout) as { spec: { steps: Json[]; providers: Json[]; policy: { backoff: Json } } }).spec;
      assert.equal(spec.steps[0]?.['retries'], 1);
      assert.deepEqual(spec.steps[0]?.['timeouts'], { firstByteMs: 10000, idleMs: 30000, totalMs: 120000 });
      assert.equal(spec.providers[0]?.['api'], 'openai');
      assert.deepEqual(spec.policy.backoff, { baseMs: 250, maxMs: 8000, jitter: 'full' });
    });
  });

  describe('invalid fixtures: the server refuses them with the expected message, and so does the file loader', () => {
    for (const fixture of invalid) {
      test(`${fixture.file}: ${fixture.proves}`, async () => {
        const local = validateChainDocument(parseYaml(fixture.text));
        assert.equal(local.ok, false, 'the file loader refuses it');
        if (!local.ok) {
          const rendered = local.problems.map((p) => `${p.path}: ${p.message}`);
          assert.ok(
            rendered.some((line) => line.includes(fixture.expectFile ?? '\0')),
            `loader problems ${JSON.stringify(rendered)} include "${fixture.expectFile}"`,
          );
        }
        const created = await kube.kubectl(['create', '--validate=strict', '-n', NAMESPACE, '-f', '-', '-o', 'name'], { input: fixture.text });
        assert.notEqual(created.code, 0, `the server refuses it, but said: ${created.stdout}`);
        assert.ok(created.stderr.includes(fixture.expect ?? '\0'), `server error\n${created.stderr}\nincludes "${fixture.expect}"`);
      });
    }
  });

  test('the cross-field rules say the same words on the server and in the file loader', () => {
    // For the CEL-backed fixtures, the server's text after "Invalid value: " is the loader's message.
    // A rule on a string field shows the value first ("Invalid value: \"..token\": words"): compare the words.
    const celFixtures = invalid.filter((f) => f.expect?.includes(': Invalid value: ') && !/in body/.test(f.expect));
    assert.ok(celFixtures.length >= 4, celFixtures.map((f) => f.file).join(', '));
    for (const f of celFixtures) {
      const serverWords = f.expect?.split(': Invalid value: ')[1]?.replace(/^"[^"]*": /, '');
      const loaderWords = f.expectFile?.replace(/^\S+: /, '');
      assert.equal(serverWords, loaderWords, f.file);
    }
  });
});
