// FallbackChain documents: schema + cross-field validation, defaults, the file loader, and
// resolution into the engine's Chain (API keys from env, files and the credentials Secret).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { validateChainDocument } from '../../src/chain/validate.ts';
import { listConfigFiles, loadFiles } from '../../src/chain/load-files.ts';
import { resolveChain } from '../../src/chain/resolve.ts';
import type { FallbackChainDoc } from '../../src/chain/spec.ts';

type Json = Record<string, unknown>;

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A minimal valid document; each row mutates its own copy. */
function minimal(): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'chat' },
    spec: {
      providers: [{ name: 'a', baseURL: 'http://127.0.0.1:9/v1' }],
      steps: [{ provider: 'a', model: 'm1' }],
    },
  };
}

function spec(doc: Json): Json {
  return doc['spec'] as Json;
}
function at(list: unknown, i: number): Json {
  return (list as Json[])[i] as Json;
}

function mustValidate(input: unknown): FallbackChainDoc {
  const result = validateChainDocument(input);
  if (!result.ok) assert.fail(`expected valid, got ${JSON.stringify(result.problems)}`);
  return result.doc;
}

describe('validateChainDocument: invalid documents', () => {
  interface Row {
    name: string;
    /** A mutation of the minimal document, or a whole YAML document. */
    doc: ((d: Json) => void) | string;
    /** Every problem expected, as [path, message fragment]. */
    problems: Array<[string, string]>;
  }
  const rows: Row[] = [
    // spec.providers is required by the schema.
    {
      name: 'missing spec.providers',
      doc: (d) => {
        delete spec(d)['providers'];
      },
      problems: [['/spec/providers', 'is required']],
    },
    // spec itself is required.
    {
      name: 'missing spec',
      doc: (d) => {
        delete d['spec'];
      },
      problems: [['/spec', 'is required']],
    },
    // A step may only name a declared provider (a cross-field rule).
    {
      name: 'step names an undeclared provider',
      doc: (d) => {
        spec(d)['steps'] = [
          { provider: 'a', model: 'm1' },
          { provider: 'b', model: 'm2' },
        ];
      },
      problems: [['/spec/steps/1/provider', 'step names provider "b", which spec.providers does not declare']],
    },
    // Provider names must be unique.
    {
      name: 'duplicate provider names',
      doc: (d) => {
        spec(d)['providers'] = [
          { name: 'a', baseURL: 'http://x/v1' },
          { name: 'a', baseURL: 'http://y/v1' },
        ];
      },
      problems: [['/spec/providers/1/name', 'provider name "a" is declared twice']],
    },
    // An apiKey with two sources is ambiguous.
    {
      name: 'apiKey with two sources',
      doc: (d) => {
        at(spec(d)['providers'], 0)['apiKey'] = { env: 'A_KEY', file: '/run/key' };
      },
      problems: [['/spec/providers/0/apiKey', 'exactly one of secretKey, env, file']],
    },
    // An apiKey with no source at all is as wrong as two.
    {
      name: 'apiKey with no source',
      doc: (d) => {
        at(spec(d)['providers'], 0)['apiKey'] = {};
      },
      problems: [['/spec/providers/0/apiKey', 'exactly one of secretKey, env, file']],
    },
    // A typo must not be silently ignored (Kubernetes would prune it; the file loader refuses it).
    {
      name: 'unknown field retires (typo, YAML)',
      doc: `
apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: chat}
spec:
  providers: [{name: a, baseURL: "http://127.0.0.1:9/v1"}]
  steps:
    - provider: a
      model: m1
      retires: 3
`,
      problems: [['/spec/steps/0/retires', 'unknown field']],
    },
    // Unknown fields are refused at every level that lists its properties.
    {
      name: 'unknown field in spec',
      doc: (d) => {
        spec(d)['polcy'] = {};
      },
      problems: [['/spec/polcy', 'unknown field']],
    },
    // api is an enum.
    {
      name: 'bad enum api',
      doc: (d) => {
        at(spec(d)['providers'], 0)['api'] = 'azure';
      },
      problems: [['/spec/providers/0/api', 'must be one of "openai", "anthropic", "gemini", "openai-responses", "azure-openai", "bedrock", "vertex"']],
    },
    // retries is capped at 10.
    {
      name: 'retries out of range (11)',
      doc: (d) => {
        at(spec(d)['steps'], 0)['retries'] = 11;
      },
      problems: [['/spec/steps/0/retries', 'must be <= 10']],
    },
    // retries may not be negative.
    {
      name: 'retries negative',
      doc: (d) => {
        at(spec(d)['steps'], 0)['retries'] = -1;
      },
      problems: [['/spec/steps/0/retries', 'must be >= 0']],
    },
    // Prices are never negative.
    {
      name: 'negative price',
      doc: (d) => {
        at(spec(d)['steps'], 0)['price'] = { inputPerMTok: -0.5, outputPerMTok: 1 };
      },
      problems: [['/spec/steps/0/price/inputPerMTok', 'must be >= 0']],
    },
    // Timeouts are whole milliseconds.
    {
      name: 'fractional timeout',
      doc: (d) => {
        at(spec(d)['steps'], 0)['timeouts'] = { firstByteMs: 1.5 };
      },
      problems: [['/spec/steps/0/timeouts/firstByteMs', 'must be integer']],
    },
    // retryOn only takes retryable classes.
    {
      name: 'retryOn with a non-retryable class',
      doc: (d) => {
        spec(d)['policy'] = { retryOn: ['contentFiltered'] };
      },
      problems: [['/spec/policy/retryOn/0', 'must be one of']],
    },
    // badRequest can never fall back.
    {
      name: 'fallbackOn badRequest',
      doc: (d) => {
        spec(d)['policy'] = { fallbackOn: ['badRequest'] };
      },
      problems: [['/spec/policy/fallbackOn/0', 'must be one of']],
    },
    // A chain needs at least one step.
    {
      name: 'no steps',
      doc: (d) => {
        spec(d)['steps'] = [];
      },
      problems: [['/spec/steps', 'must NOT have fewer than 1 items']],
    },
    // Wrong apiVersion is refused before the schema runs.
    {
      name: 'wrong apiVersion',
      doc: (d) => {
        d['apiVersion'] = 'llmfallback.io/v1';
      },
      problems: [['/apiVersion', 'must be llmfallback.io/v1alpha1']],
    },
    // Wrong kind is refused.
    {
      name: 'wrong kind',
      doc: (d) => {
        d['kind'] = 'Chain';
      },
      problems: [['/kind', 'must be FallbackChain']],
    },
    // Both envelope errors are reported together.
    {
      name: 'wrong apiVersion and kind',
      doc: (d) => {
        d['apiVersion'] = 'v1';
        d['kind'] = 'Pod';
      },
      problems: [
        ['/apiVersion', 'must be'],
        ['/kind', 'must be'],
      ],
    },
    // metadata.name must be a DNS subdomain name.
    {
      name: 'bad metadata.name',
      doc: (d) => {
        d['metadata'] = { name: 'Chat_1' };
      },
      problems: [['/metadata/name', 'DNS subdomain']],
    },
    // A name may not end with a dash.
    {
      name: 'metadata.name ending in a dash',
      doc: (d) => {
        d['metadata'] = { name: 'chat-' };
      },
      problems: [['/metadata/name', 'DNS subdomain']],
    },
    // No metadata at all: no name.
    {
      name: 'missing metadata',
      doc: (d) => {
        delete d['metadata'];
      },
      problems: [['/metadata/name', 'DNS subdomain']],
    },
    // Backoff base above its cap is a cross-field error.
    {
      name: 'baseMs > maxMs',
      doc: (d) => {
        spec(d)['policy'] = { backoff: { baseMs: 500, maxMs: 100 } };
      },
      problems: [['/spec/policy/backoff', 'backoff.baseMs must not exceed backoff.maxMs']],
    },
    // Provider names follow the DNS-label pattern.
    {
      name: 'bad provider name',
      doc: (d) => {
        spec(d)['providers'] = [{ name: 'Bad_Name', baseURL: 'http://x' }];
        spec(d)['steps'] = [{ provider: 'Bad_Name', model: 'm' }];
      },
      problems: [['/spec/providers/0/name', 'must match pattern']],
    },
    // A cooldown below 50 ms is refused.
    {
      name: 'cooldown too short',
      doc: (d) => {
        spec(d)['circuitBreaker'] = { cooldownSeconds: 0 };
      },
      problems: [['/spec/circuitBreaker/cooldownSeconds', 'must be >= 0.05']],
    },
    // Several schema problems are all reported at once (allErrors).
    {
      name: 'several problems at once',
      doc: (d) => {
        at(spec(d)['steps'], 0)['retries'] = 11;
        at(spec(d)['providers'], 0)['api'] = 'x';
      },
      problems: [
        ['/spec/providers/0/api', 'must be one of'],
        ['/spec/steps/0/retries', 'must be <= 10'],
      ],
    },
    // A list is not a document.
    { name: 'not a mapping', doc: '- a\n- b\n', problems: [['', 'must be a mapping']] },
  ];
  for (const row of rows) {
    test(row.name, () => {
      let input: unknown;
      if (typeof row.doc === 'string') input = parseYaml(row.doc);
      else {
        const d = minimal();
        row.doc(d);
        input = d;
      }
      const result = validateChainDocument(input);
      assert.equal(result.ok, false, 'the document must be refused');
      if (result.ok) return;
      const got = [...result.problems].sort((a, b) => a.path.localeCompare(b.path));
      assert.deepEqual(
        got.map((p) => p.path),
        row.problems.map(([p]) => p),
        JSON.stringify(result.problems),
      );
      row.problems.forEach(([, fragment], i) => assert.ok(got[i]?.message.includes(fragment), `"${got[i]?.message}" contains "${fragment}"`));
    });
  }
});

describe('validateChainDocument: valid documents', () => {
  const rows: Array<{ name: string; doc: (d: Json) => void }> = [
    // The minimal document itself.
    { name: 'minimal', doc: () => {} },
    // metadata stays open, as in Kubernetes (labels, annotations, namespace, uid...).
    {
      name: 'metadata with extra fields',
      doc: (d) => {
        d['metadata'] = { name: 'chat.v2', namespace: 'shop', labels: { app: 'x' }, uid: 'abc' };
      },
    },
    // Every source kind of apiKey, one each.
    {
      name: 'one apiKey source each',
      doc: (d) => {
        spec(d)['providers'] = [
          { name: 'a', baseURL: 'http://x', apiKey: { env: 'K' } },
          { name: 'b', baseURL: 'http://y', apiKey: { secretKey: 'b' } },
          { name: 'c', baseURL: 'http://z', apiKey: { file: '/k' } },
        ];
      },
    },
    // The boundaries of retries are allowed.
    {
      name: 'retries 0 and 10',
      doc: (d) => {
        spec(d)['steps'] = [
          { provider: 'a', model: 'm', retries: 0 },
          { provider: 'a', model: 'n', retries: 10 },
        ];
      },
    },
    // baseMs == maxMs is fine.
    {
      name: 'baseMs == maxMs',
      doc: (d) => {
        spec(d)['policy'] = { backoff: { baseMs: 100, maxMs: 100 } };
      },
    },
    // Empty retryOn (never retry) and a status block written by the controller.
    {
      name: 'empty retryOn and a status',
      doc: (d) => {
        spec(d)['policy'] = { retryOn: [] };
        d['status'] = { observedGeneration: 2, conditions: [{ type: 'Ready', status: 'True' }] };
      },
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const d = minimal();
      row.doc(d);
      mustValidate(d);
    });
  }

  // The schema's defaults fill in everything the engine needs.
  test('defaults are filled for a minimal document', () => {
    const doc = mustValidate(minimal());
    assert.deepEqual(doc.spec.providers[0], { name: 'a', baseURL: 'http://127.0.0.1:9/v1', api: 'openai' });
    assert.deepEqual(doc.spec.steps[0], { provider: 'a', model: 'm1', retries: 1, timeouts: { firstByteMs: 10000, idleMs: 30000, totalMs: 120000 } });
    assert.deepEqual(doc.spec.policy, {
      retryOn: ['rateLimited', 'serverError', 'timeout', 'connection'],
      // Refusals are not routed around unless the chain opts in.
      fallbackOn: ['rateLimited', 'serverError', 'timeout', 'connection', 'authFailed', 'contextLength'],
      backoff: { baseMs: 250, maxMs: 8000, jitter: 'full' },
      deadlineMs: 120000,
      hedge: { afterMs: 0, maxInFlight: 1 },
      adaptive: false,
      priority: 'quality',
      stream: { commit: 'firstEvent', tokens: 20, heartbeatMs: 10000 },
    });
    assert.deepEqual(doc.spec.circuitBreaker, { failureThreshold: 5, windowSeconds: 30, cooldownSeconds: 30 });
  });

  // Partial objects get the missing members only.
  test('partial timeouts and backoff keep given values and fill the rest', () => {
    const d = minimal();
    at(spec(d)['steps'], 0)['timeouts'] = { firstByteMs: 500 };
    spec(d)['policy'] = { backoff: { maxMs: 1000 } };
    const doc = mustValidate(d);
    assert.deepEqual(doc.spec.steps[0]?.timeouts, { firstByteMs: 500, idleMs: 30000, totalMs: 120000 });
    assert.deepEqual(doc.spec.policy.backoff, { baseMs: 250, maxMs: 1000, jitter: 'full' });
  });

  // Defaults go into a copy: the caller's object is left as it was.
  test('the input is not mutated', () => {
    const d = minimal();
    const before = structuredClone(d);
    mustValidate(d);
    assert.deepEqual(d, before);
  });
});

describe('loadFiles and listConfigFiles', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llmf-validate-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const chainYaml = (name: string, extra = '', model?: string): string => `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: ${name}}
spec:
${model ? `  model: ${model}\n` : ''}  providers: [{name: a, baseURL: "http://127.0.0.1:9/v1"}]
  steps: [{provider: a, model: m}]
${extra}`;

  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const sub = path.join(dir, name);
    await mkdir(sub);
    for (const [file, text] of Object.entries(files)) await writeFile(path.join(sub, file), text);
    return sub;
  }

  // Only *.yaml / *.yml directly in the folder, sorted; hidden files (Kubernetes' ..data) skipped.
  test('listConfigFiles picks YAML files only', async () => {
    const sub = await folder('list', { 'b.yml': '', 'a.yaml': '', 'C.YAML': '', 'notes.txt': '', '.hidden.yaml': '' });
    await mkdir(path.join(sub, 'nested.yaml'));
    assert.deepEqual(
      await listConfigFiles(sub),
      ['C.YAML', 'a.yaml', 'b.yml'].map((f) => path.join(sub, f)),
    );
  });

  // Several documents in one file are numbered from 1; empty documents are skipped.
  test('multi-document file with an empty document', async () => {
    const sub = await folder('multi', { 'chains.yaml': `${chainYaml('one')}---\n---\n# only a comment\n---\n${chainYaml('two')}` });
    const result = await loadFiles(await listConfigFiles(sub), {});
    assert.deepEqual(result.problems, []);
    assert.deepEqual(
      result.docs.map((d) => [d.doc.metadata.name, d.source]),
      [
        ['one', 'chains.yaml#1'],
        ['two', 'chains.yaml#4'],
      ],
    );
  });

  // A YAML syntax error names the file and the document; the file's other documents still load.
  test('YAML syntax error is reported with file and document number', async () => {
    const sub = await folder('syntax', { 'bad.yaml': `${chainYaml('fine')}---\nspec: {providers: [unclosed\n` });
    const file = path.join(sub, 'bad.yaml');
    const result = await loadFiles([file], {});
    assert.deepEqual(
      result.docs.map((d) => d.source),
      ['bad.yaml#1'],
    );
    assert.ok(result.problems.length > 0);
    for (const p of result.problems) {
      assert.equal(p.file, file);
      assert.equal(p.document, 2);
      assert.match(p.message, /^YAML: /);
    }
  });

  // YAML that parses but cannot become a value (an alias with no anchor; an alias bomb) is a
  // reported problem, not a crash of validate or serve (found by the config-loader fuzz test).
  for (const [name, text] of [
    ['unknown alias', 'b: *x\n'],
    [
      'alias bomb',
      `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
    ],
  ] as const) {
    test(`YAML ${name} is reported, not thrown`, async () => {
      const sub = await folder(`alias-${name.replace(' ', '-')}`, { 'bad.yaml': text });
      const file = path.join(sub, 'bad.yaml');
      const result = await loadFiles([file], {});
      assert.equal(result.docs.length, 0);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.file, file);
      assert.match(result.problems[0]?.message ?? '', /^YAML: /);
    });
  }

  // Schema problems carry file, document and path.
  test('schema problems are sourced', async () => {
    const sub = await folder('schema', { 'x.yaml': `${chainYaml('ok')}---\n${chainYaml('typo').replace('model: m}', 'model: m, retires: 2}')}` });
    const file = path.join(sub, 'x.yaml');
    const result = await loadFiles([file], {});
    assert.deepEqual(result.problems, [{ file, document: 2, path: '/spec/steps/0/retires', message: 'unknown field' }]);
  });

  // Two chains answering to the same model name are refused (spec.model vs another's metadata.name).
  test('duplicate spec.model across files', async () => {
    const sub = await folder('dupe', { 'a.yaml': chainYaml('first', '', 'chat'), 'b.yaml': chainYaml('chat') });
    const result = await loadFiles(await listConfigFiles(sub), {});
    assert.deepEqual(result.problems, [
      { file: path.join(sub, 'b.yaml'), document: 1, path: '/spec/model', message: 'model "chat" is already served by the chain in a.yaml#1' },
    ]);
  });

  // ${VAR} / ${VAR:-default} are expanded in values; a missing variable without default is a problem.
  test('${VAR:-default} expansion', async () => {
    const text = chainYaml('env').replace('"http://127.0.0.1:9/v1"', '"${UP_URL:-http://127.0.0.1:4010/v1}"').replace('model: m}', 'model: "${MODEL_NAME}"}');
    const sub = await folder('env', { 'e.yaml': text });
    const file = path.join(sub, 'e.yaml');

    const withDefault = await loadFiles([file], { MODEL_NAME: 'gpt-x' });
    assert.deepEqual(withDefault.problems, []);
    assert.equal(withDefault.docs[0]?.doc.spec.providers[0]?.baseURL, 'http://127.0.0.1:4010/v1');
    assert.equal(withDefault.docs[0]?.doc.spec.steps[0]?.model, 'gpt-x');

    const withVar = await loadFiles([file], { MODEL_NAME: 'gpt-x', UP_URL: 'http://127.0.0.1:5555/v1' });
    assert.equal(withVar.docs[0]?.doc.spec.providers[0]?.baseURL, 'http://127.0.0.1:5555/v1');

    const missing = await loadFiles([file], {});
    assert.equal(missing.problems[0]?.file, file);
    assert.equal(missing.problems[0]?.document, 1);
    assert.match(missing.problems[0]?.message ?? '', /environment variable MODEL_NAME is not set and has no default/);
  });

  // An unreadable file is a file-level problem (document 0), not a crash.
  test('missing file', async () => {
    const file = path.join(dir, 'nope.yaml');
    const result = await loadFiles([file], {});
    assert.equal(result.problems.length, 1);
    assert.equal(result.problems[0]?.file, file);
    assert.equal(result.problems[0]?.document, 0);
    assert.match(result.problems[0]?.message ?? '', /cannot read file/);
  });

  // The repo's own examples must always validate, exactly as `serve` and `validate` load them.
  test('examples/ validate', async () => {
    const files = await listConfigFiles(path.join(REPO, 'examples'));
    assert.deepEqual(
      files.map((f) => path.basename(f)),
      ['chat.yaml', 'demo.yaml'],
    );
    const result = await loadFiles(files, {});
    assert.deepEqual(result.problems, []);
    assert.deepEqual(
      result.docs.map((d) => d.source),
      ['chat.yaml#1', 'demo.yaml#1', 'demo.yaml#2'],
    );
    const demo = result.docs[1]?.doc;
    assert.equal(demo?.spec.providers[1]?.baseURL, 'http://127.0.0.1:4010/v1', 'DEMO_UPSTREAM_URL default applied');
  });
});

describe('resolveChain', () => {
  let dir: string;
  let credentialsDir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llmf-resolve-'));
    credentialsDir = path.join(dir, 'credentials');
    await mkdir(credentialsDir);
    await writeFile(path.join(credentialsDir, 'zhipu'), 'zp-secret-from-secret\n');
    await writeFile(path.join(dir, 'key.txt'), '  file-secret-value  \n');
    await writeFile(path.join(dir, 'empty.txt'), '\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function docWith(apiKey: Json | undefined, baseURL = 'https://api.example.com/v1'): FallbackChainDoc {
    const d = minimal();
    at(spec(d)['providers'], 0)['baseURL'] = baseURL;
    if (apiKey) at(spec(d)['providers'], 0)['apiKey'] = apiKey;
    return mustValidate(d);
  }

  const rows: Array<{
    name: string;
    apiKey: () => Json | undefined;
    env?: Record<string, string>;
    want: { apiKey?: string; keyProblem?: RegExp; keySource: string | RegExp };
  }> = [
    // An env key that is set is used, trimmed.
    { name: 'env key present', apiKey: () => ({ env: 'A_KEY' }), env: { A_KEY: ' sk-env-value\n' }, want: { apiKey: 'sk-env-value', keySource: 'env:A_KEY' } },
    // An env key that is not set leaves the key undefined with the reason (the step is skipped, the config still loads).
    { name: 'env key missing', apiKey: () => ({ env: 'A_KEY' }), want: { keyProblem: /^environment variable A_KEY is not set$/, keySource: 'env:A_KEY' } },
    // An empty env value counts as not set.
    { name: 'env key empty', apiKey: () => ({ env: 'A_KEY' }), env: { A_KEY: '' }, want: { keyProblem: /A_KEY is not set/, keySource: 'env:A_KEY' } },
    // A key file is read and trimmed.
    { name: 'file key', apiKey: () => ({ file: path.join(dir, 'key.txt') }), want: { apiKey: 'file-secret-value', keySource: /^file:.*key\.txt$/ } },
    // A key file that is not there is a keyProblem.
    {
      name: 'file key missing',
      apiKey: () => ({ file: path.join(dir, 'absent.txt') }),
      want: { keyProblem: /absent\.txt cannot be read/, keySource: /^file:/ },
    },
    // An empty key file is a keyProblem.
    { name: 'file key empty', apiKey: () => ({ file: path.join(dir, 'empty.txt') }), want: { keyProblem: /is empty/, keySource: /^file:/ } },
    // secretKey reads that key of the mounted credentials Secret.
    {
      name: 'secretKey from the credentials dir',
      apiKey: () => ({ secretKey: 'zhipu' }),
      want: { apiKey: 'zp-secret-from-secret', keySource: 'secretKey:zhipu' },
    },
    // A secretKey the Secret does not have is a keyProblem naming it.
    {
      name: 'secretKey missing',
      apiKey: () => ({ secretKey: 'deepseek' }),
      want: { keyProblem: /credentials Secret has no readable key "deepseek"/, keySource: 'secretKey:deepseek' },
    },
    // No apiKey: no key and no problem (local upstreams need none).
    { name: 'no apiKey', apiKey: () => undefined, want: { keySource: 'none' } },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const chain = resolveChain(docWith(row.apiKey()), 'x.yaml#1', { env: row.env ?? {}, credentialsDir });
      const provider = chain.steps[0]?.provider;
      assert.ok(provider);
      assert.equal(provider.apiKey, row.want.apiKey);
      if (row.want.keyProblem) assert.match(provider.keyProblem ?? '', row.want.keyProblem);
      else assert.equal(provider.keyProblem, undefined);
      if (typeof row.want.keySource === 'string') assert.equal(provider.keySource, row.want.keySource);
      else assert.match(provider.keySource, row.want.keySource);
    });
  }

  const urls: Array<{ baseURL: string; want: string; why: string }> = [
    { baseURL: 'https://api.example.com/v1/', want: 'https://api.example.com/v1', why: 'one trailing slash removed' },
    { baseURL: 'https://api.example.com/v1///', want: 'https://api.example.com/v1', why: 'several trailing slashes removed' },
    { baseURL: 'https://api.example.com/v1', want: 'https://api.example.com/v1', why: 'no slash: unchanged' },
  ];
  for (const u of urls) {
    test(`baseURL ${u.baseURL} → ${u.want} (${u.why})`, () => {
      const chain = resolveChain(docWith(undefined, u.baseURL), 'x.yaml#1', { env: {}, credentialsDir });
      assert.equal(chain.steps[0]?.provider.baseURL, u.want);
      assert.equal(chain.steps[0]?.target, `a|${u.want}|m1`, 'the breaker target uses the normalised URL');
    });
  }

  // The whole Chain: names, policy sets, breaker in ms, prices, step indexes, shared provider objects.
  test('a full document resolves to the engine Chain', () => {
    const d = minimal();
    d['metadata'] = { name: 'chat', namespace: 'shop' };
    spec(d)['model'] = 'chat-model';
    spec(d)['steps'] = [
      { provider: 'a', model: 'm1', retries: 2, price: { inputPerMTok: 1, outputPerMTok: 2 } },
      { provider: 'a', model: 'm2', price: { outputPerMTok: 3 } },
    ];
    spec(d)['policy'] = { retryOn: ['timeout'], deadlineMs: 5000, hedge: { afterMs: 7 } };
    spec(d)['circuitBreaker'] = { failureThreshold: 3, windowSeconds: 1.5, cooldownSeconds: 0.25 };
    spec(d)['budget'] = { maxCostPerRequestUSD: 0.01 };
    const chain = resolveChain(mustValidate(d), 'c.yaml#2', { env: {}, credentialsDir });
    assert.equal(chain.name, 'chat');
    assert.equal(chain.namespace, 'shop');
    assert.equal(chain.model, 'chat-model');
    assert.equal(chain.source, 'c.yaml#2');
    assert.deepEqual(
      chain.steps.map((s) => [s.index, s.model, s.retries]),
      [
        [0, 'm1', 2],
        [1, 'm2', 1],
      ],
    );
    assert.deepEqual(chain.steps[0]?.price, { inputPerMTok: 1, outputPerMTok: 2, cachedInputPerMTok: undefined });
    assert.deepEqual(chain.steps[1]?.price, { inputPerMTok: 0, outputPerMTok: 3, cachedInputPerMTok: undefined });
    assert.equal(chain.steps[0]?.provider, chain.steps[1]?.provider, 'one Provider object per declared provider');
    assert.deepEqual([...chain.policy.retryOn], ['timeout']);
    assert.equal(chain.policy.fallbackOn.has('contextLength'), true);
    assert.equal(chain.policy.deadlineMs, 5000);
    assert.equal(chain.policy.hedgeAfterMs, 7);
    assert.deepEqual(chain.breaker, { failureThreshold: 3, windowMs: 1500, cooldownMs: 250 });
    assert.equal(chain.maxCostPerRequestUSD, 0.01);
  });

  // Without spec.model the chain answers to metadata.name.
  test('model defaults to metadata.name', () => {
    const chain = resolveChain(mustValidate(minimal()), 'x.yaml#1', { env: {}, credentialsDir });
    assert.equal(chain.model, 'chat');
    assert.equal(chain.steps[0]?.price, undefined);
  });
});
