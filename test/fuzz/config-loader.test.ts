// Property tests of the config loader: arbitrary YAML text through loadFiles and arbitrary
// values through validateChainDocument never throw, and every rejection says why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { loadFiles, type LoadResult } from '../../src/chain/load-files.ts';
import { validateChainDocument } from '../../src/chain/validate.ts';

const RUNS = 200;

type Json = Record<string, unknown>;

/** A valid document using most of the schema; properties mutate copies of it. */
function fullDoc(name = 'chat'): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      model: `${name}-model`,
      providers: [
        { name: 'a', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: { env: 'A_KEY' }, headers: { 'x-org': 'o' } },
        { name: 'b', api: 'anthropic', baseURL: 'http://127.0.0.1:9/v1' },
      ],
      steps: [
        { provider: 'a', model: 'm1', retries: 2, timeouts: { firstByteMs: 100, idleMs: 100, totalMs: 1000 }, price: { inputPerMTok: 1, outputPerMTok: 2 } },
        { provider: 'b', model: 'm2' },
      ],
      policy: {
        retryOn: ['rateLimited'],
        fallbackOn: ['serverError'],
        backoff: { baseMs: 1, maxMs: 10, jitter: 'none' },
        deadlineMs: 1000,
        hedge: { afterMs: 0 },
      },
      circuitBreaker: { failureThreshold: 3, windowSeconds: 1, cooldownSeconds: 1 },
      budget: { maxCostPerRequestUSD: 0.5 },
    },
  };
}

// Places a mutation can hit: every level of the document, from the envelope to leaf values.
const PATHS: ReadonlyArray<ReadonlyArray<string | number>> = [
  [],
  ['apiVersion'],
  ['kind'],
  ['metadata'],
  ['metadata', 'name'],
  ['spec'],
  ['spec', 'model'],
  ['spec', 'providers'],
  ['spec', 'providers', 0],
  ['spec', 'providers', 0, 'name'],
  ['spec', 'providers', 0, 'api'],
  ['spec', 'providers', 0, 'baseURL'],
  ['spec', 'providers', 0, 'apiKey'],
  ['spec', 'providers', 0, 'apiKey', 'env'],
  ['spec', 'providers', 0, 'headers'],
  ['spec', 'providers', 1],
  ['spec', 'steps'],
  ['spec', 'steps', 0],
  ['spec', 'steps', 0, 'provider'],
  ['spec', 'steps', 0, 'model'],
  ['spec', 'steps', 0, 'retries'],
  ['spec', 'steps', 0, 'timeouts'],
  ['spec', 'steps', 0, 'timeouts', 'firstByteMs'],
  ['spec', 'steps', 0, 'price'],
  ['spec', 'steps', 1, 'provider'],
  ['spec', 'policy'],
  ['spec', 'policy', 'retryOn'],
  ['spec', 'policy', 'fallbackOn', 0],
  ['spec', 'policy', 'backoff'],
  ['spec', 'policy', 'backoff', 'baseMs'],
  ['spec', 'policy', 'backoff', 'maxMs'],
  ['spec', 'policy', 'deadlineMs'],
  ['spec', 'policy', 'hedge'],
  ['spec', 'circuitBreaker'],
  ['spec', 'circuitBreaker', 'failureThreshold'],
  ['spec', 'budget'],
  ['spec', 'unknownField'],
  ['status'],
];

interface Mutation {
  at: ReadonlyArray<string | number>;
  remove: boolean;
  value: unknown;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.constantFrom(...PATHS),
  remove: fc.boolean(),
  value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', '${UNSET}', '${SET:-x}', -1, 0, 1e9, 0.5, 'a', 'A b', [], {}, null)),
});

/** Applies mutations to a copy; a path that no longer exists is skipped. Replacing the root replaces the document. */
function mutate(doc: Json, mutations: readonly Mutation[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const m of mutations) {
    if (m.at.length === 0) {
      root = m.remove ? null : structuredClone(m.value);
      continue;
    }
    let parent: unknown = root;
    for (const key of m.at.slice(0, -1)) parent = typeof parent === 'object' && parent !== null ? (parent as Record<string | number, unknown>)[key] : undefined;
    if (typeof parent !== 'object' || parent === null) continue;
    const last = m.at[m.at.length - 1] as string | number;
    if (m.remove) delete (parent as Record<string | number, unknown>)[last];
    else (parent as Record<string | number, unknown>)[last] = structuredClone(m.value);
  }
  return root;
}

const mutatedDocArb = fc.array(mutationArb, { maxLength: 4 }).map((ms) => mutate(fullDoc(), ms));

function assertWellFormedRejection(problems: ReadonlyArray<{ path: string; message: string }>, context: string): void {
  assert.ok(problems.length >= 1, `a rejection without a problem: ${context}`);
  for (const p of problems) {
    assert.equal(typeof p.path, 'string', `problem path: ${context}`);
    assert.equal(typeof p.message, 'string', `problem message: ${context}`);
    assert.ok(p.message.trim().length > 0, `empty problem message: ${context}`);
  }
}

describe('validateChainDocument (fast-check)', () => {
  test('the unmutated document is valid (so the mutations below are what gets rejected)', () => {
    assert.equal(validateChainDocument(fullDoc()).ok, true);
  });

  for (const [name, arb] of [
    ['arbitrary JSON values', fc.jsonValue()],
    ['mutated valid documents', mutatedDocArb],
  ] as const) {
    test(`${name}: never throws; every rejection has at least one problem with a message`, () => {
      fc.assert(
        fc.property(arb, (input) => {
          const result = validateChainDocument(input);
          if (result.ok) assert.equal(typeof result.doc.metadata.name, 'string');
          else assertWellFormedRejection(result.problems, JSON.stringify(input).slice(0, 200));
        }),
        { numRuns: RUNS },
      );
    });
  }
});

// ---------------------------------------------------------------------------
// loadFiles: YAML text, from noise to nearly-valid chains.

const yamlTokens = fc.constantFrom(
  '---',
  '...',
  'apiVersion: llmfallback.io/v1alpha1',
  'kind: FallbackChain',
  'metadata:',
  '  name: chat',
  'spec:',
  '  providers:',
  '  - name: a',
  '    baseURL: http://x',
  '  steps:',
  '  - provider: a',
  '    model: m',
  '    retries: 99',
  'a: &x 1',
  'b: *x',
  '<<: *x',
  '? [a, b]',
  ': c',
  '- ',
  '{',
  '}',
  '[',
  ']',
  ',',
  '"',
  "'",
  '#',
  '|',
  '>',
  '!!str',
  '!!binary',
  '!custom',
  '%YAML 1.2',
  '%TAG ! tag:x,2000:',
  '${VAR}',
  '${VAR:-d}',
  '${',
  '\t',
  '  ',
  ':',
  'null',
  '~',
  'true',
  '0x1F',
  '.inf',
);
const tokenSoupArb = fc
  .array(fc.tuple(yamlTokens, fc.constantFrom('\n', ' ', '', '\n  ')), { maxLength: 40 })
  .map((parts) => parts.map(([t, sep]) => t + sep).join(''));
const docsYamlArb = fc.array(mutatedDocArb, { minLength: 1, maxLength: 3 }).map((docs) => docs.map((d) => (d === undefined ? '' : stringify(d))).join('---\n'));
const yamlTextArb = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), tokenSoupArb, docsYamlArb);

const FILE = 'chains.yaml';

/** Which documents the loader must account for: each non-empty one is either loaded or has a problem. */
function documentsToAccountFor(text: string): number[] {
  const parsed = parseAllDocuments(text);
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const numbers: number[] = [];
  list.forEach((document, i) => {
    if (document.errors.length > 0) return void numbers.push(i + 1);
    let value: unknown;
    try {
      value = document.toJS();
    } catch {
      return void numbers.push(i + 1); // the yaml library itself refuses it: must be a problem
    }
    if (value !== null && value !== undefined) numbers.push(i + 1);
  });
  return numbers;
}

function assertAccounted(result: LoadResult, file: string, text: string): void {
  for (const p of result.problems) {
    assert.ok(p.message.trim().length > 0, `empty problem message for ${JSON.stringify(text).slice(0, 200)}`);
    assert.ok(Number.isInteger(p.document) && p.document >= 0);
  }
  for (const n of documentsToAccountFor(text)) {
    const loaded = result.docs.some((d) => d.source === `${path.basename(file)}#${n}`);
    const refused = result.problems.some((p) => p.document === n);
    assert.ok(loaded || refused, `document ${n} neither loaded nor given a problem: ${JSON.stringify(text).slice(0, 300)}`);
  }
}

describe('loadFiles on arbitrary YAML (fast-check)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-fuzz-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('never throws; every non-empty document is loaded or rejected with a non-empty reason', async () => {
    await fc.assert(
      fc.asyncProperty(yamlTextArb, fc.boolean(), async (text, withEnv) => {
        const file = path.join(dir, FILE);
        await writeFile(file, text);
        const result = await loadFiles([file], withEnv ? { VAR: 'v', SET: 's', A_KEY: 'k' } : {});
        assertAccounted(result, file, text);
      }),
      { numRuns: RUNS },
    );
  });

  // Inputs the yaml library parses without errors but then refuses to turn into values: they
  // must come back as problems (and `validate`/`serve` print a reason), not as exceptions.
  const tricky: Array<{ name: string; text: string }> = [
    // An alias "billion laughs": the yaml library throws on excessive alias expansion.
    {
      name: 'alias bomb',
      text: [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
        'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
        '',
      ].join('\n'),
    },
    // An alias with no anchor (found by this property): reported by the yaml library only when converting.
    { name: 'unresolved alias', text: 'b: *x\n' },
    // The same inside a merge key.
    { name: 'unresolved alias in a merge key', text: 'apiVersion: llmfallback.io/v1alpha1\n<<: *nowhere\n' },
  ];
  for (const row of tricky) {
    test(`${row.name}: a problem for the document, not an exception`, async () => {
      const file = path.join(dir, `tricky-${tricky.indexOf(row)}.yaml`);
      await writeFile(file, row.text);
      const result = await loadFiles([file], {});
      assert.equal(result.docs.length, 0);
      assert.ok(
        result.problems.some((p) => p.document === 1 && p.message.trim().length > 0),
        JSON.stringify(result.problems),
      );
    });
  }
});
