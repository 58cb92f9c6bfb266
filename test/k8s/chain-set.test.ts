// computeChainSet: which FallbackChains of the namespace the sidecar serves, from the
// informer's objects and the previously served set. No cluster: objects are shaped
// the way the API server returns them (uid, resourceVersion, creationTimestamp, status).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeChainSet, refusalKey, servedKey, type ServedChain } from '../../src/k8s/chain-set.ts';

type Json = Record<string, unknown>;

interface ObjOptions {
  /** spec.model; omitted: the chain answers to metadata.name. */
  model?: string;
  /** The one step's upstream model: lets a row tell two versions of a chain apart. */
  step?: string;
  uid?: string;
  rv?: string;
  created?: string;
  /** 'semantic': a step names an undeclared provider; 'schema': retries out of range. */
  invalid?: 'semantic' | 'schema';
  status?: Json;
}

/** A FallbackChain as the API server returns it. */
function fc(name: string, o: ObjOptions = {}): Json {
  const step: Json = { provider: o.invalid === 'semantic' ? 'nobody' : 'up', model: o.step ?? 'fault:ok' };
  if (o.invalid === 'schema') step['retries'] = 99;
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: {
      name,
      namespace: 'shop',
      uid: o.uid ?? `uid-${name}`,
      resourceVersion: o.rv ?? '1',
      generation: 1,
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
      managedFields: [{ manager: 'kubectl', operation: 'Update' }],
    },
    spec: {
      ...(o.model ? { model: o.model } : {}),
      providers: [{ name: 'up', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: { secretKey: 'up' } }],
      steps: [step],
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

function objects(...list: Json[]): Map<string, unknown> {
  return new Map(list.map((o) => [String((o['metadata'] as Json)['name']), o]));
}

/** The served set after computing from `list` with no history. */
function servedFrom(...list: Json[]): Map<string, ServedChain> {
  return computeChainSet(objects(...list), new Map()).served;
}

interface Expected {
  /** name -> [model served, step model, from last good?] */
  served: Record<string, [string, string, boolean]>;
  /** name -> [lastGoodKept, substring of a problem] */
  refused: Record<string, [boolean, string]>;
}

interface Row {
  what: string;
  now: Json[];
  before?: Map<string, ServedChain>;
  expect: Expected;
}

const rows: Row[] = [
  {
    // Nothing in the namespace serves nothing and refuses nothing.
    what: 'an empty namespace',
    now: [],
    expect: { served: {}, refused: {} },
  },
  {
    // A valid object is served under metadata.name when spec.model is not set.
    what: 'one valid object, model defaults to its name',
    now: [fc('chat')],
    expect: { served: { chat: ['chat', 'fault:ok', false] }, refused: {} },
  },
  {
    // spec.model, not the object name, is what the app asks for.
    what: 'spec.model names the served model',
    now: [fc('chat-v2', { model: 'chat' })],
    expect: { served: { 'chat-v2': ['chat', 'fault:ok', false] }, refused: {} },
  },
  {
    // The controller's status (any content) never makes a chain invalid.
    what: 'status is ignored',
    now: [fc('chat', { status: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Valid', unexpected: 1 }] } })],
    expect: { served: { chat: ['chat', 'fault:ok', false] }, refused: {} },
  },
  {
    // A new object failing a semantic check (undeclared provider) is refused; nothing to keep.
    what: 'invalid new object (semantic check)',
    now: [fc('chat', { invalid: 'semantic' }), fc('other')],
    expect: { served: { other: ['other', 'fault:ok', false] }, refused: { chat: [false, '/spec/steps/0/provider'] } },
  },
  {
    // Schema violations are refused the same way.
    what: 'invalid new object (schema)',
    now: [fc('chat', { invalid: 'schema' })],
    expect: { served: {}, refused: { chat: [false, '/spec/steps/0/retries'] } },
  },
  {
    // An invalid edit keeps the last good version of that chain serving, the others unaffected.
    what: 'invalid edit keeps the last good version',
    now: [fc('chat', { rv: '7', invalid: 'semantic' }), fc('other')],
    before: servedFrom(fc('chat', { rv: '5', step: 'fault:old' }), fc('other')),
    expect: { served: { chat: ['chat', 'fault:old', true], other: ['other', 'fault:ok', false] }, refused: { chat: [true, 'does not declare'] } },
  },
  {
    // The last good version stays through later computations while the object stays invalid.
    what: 'last good version kept again on the next computation',
    now: [fc('chat', { rv: '7', invalid: 'semantic' })],
    before: computeChainSet(objects(fc('chat', { rv: '7', invalid: 'semantic' })), servedFrom(fc('chat', { rv: '5', step: 'fault:old' }))).served,
    expect: { served: { chat: ['chat', 'fault:old', true] }, refused: { chat: [true, 'does not declare'] } },
  },
  {
    // An object deleted and re-created invalid under the same name is a different object (uid): nothing kept.
    what: 'invalid re-created object does not inherit the old last good version',
    now: [fc('chat', { uid: 'uid-new', rv: '9', invalid: 'semantic' })],
    before: servedFrom(fc('chat', { uid: 'uid-old', rv: '5' })),
    expect: { served: {}, refused: { chat: [false, 'does not declare'] } },
  },
  {
    // A valid edit replaces the last good version.
    what: 'valid edit replaces the served version',
    now: [fc('chat', { rv: '6', step: 'fault:new' })],
    before: servedFrom(fc('chat', { rv: '5', step: 'fault:old' })),
    expect: { served: { chat: ['chat', 'fault:new', false] }, refused: {} },
  },
  {
    // A deleted object drops its chain, last good version included.
    what: 'deleted object drops its chain',
    now: [fc('other')],
    before: servedFrom(fc('chat'), fc('other')),
    expect: { served: { other: ['other', 'fault:ok', false] }, refused: {} },
  },
  {
    // Two chains for one model: the older object (creationTimestamp) wins, whatever the names.
    what: 'duplicate model: older creationTimestamp wins',
    now: [fc('a-young', { model: 'chat', created: '2026-02-01T00:00:00Z' }), fc('z-old', { model: 'chat', created: '2026-01-01T00:00:00Z' })],
    expect: { served: { 'z-old': ['chat', 'fault:ok', false] }, refused: { 'a-young': [false, 'already served by the older FallbackChain "z-old"'] } },
  },
  {
    // Same creation second: the name decides, so the outcome never depends on map order.
    what: 'duplicate model: same timestamp, name order wins',
    now: [fc('b', { model: 'chat' }), fc('a', { model: 'chat' })],
    expect: { served: { a: ['chat', 'fault:ok', false] }, refused: { b: [false, 'already served by the older FallbackChain "a"'] } },
  },
  {
    // A chain edited to a model an older chain serves keeps serving its previous model.
    what: 'duplicate model after an edit: the loser keeps its last good version',
    now: [fc('a', { model: 'chat' }), fc('b', { model: 'chat', rv: '8', created: '2026-03-01T00:00:00Z' })],
    before: servedFrom(fc('a', { model: 'chat' }), fc('b', { model: 'summary', rv: '4', created: '2026-03-01T00:00:00Z' })),
    expect: { served: { a: ['chat', 'fault:ok', false], b: ['summary', 'fault:ok', true] }, refused: { b: [true, 'already served'] } },
  },
  {
    // The older chain's deletion frees the model: the younger one is served from then on.
    what: 'duplicate resolved by deleting the winner',
    now: [fc('b', { model: 'chat', created: '2026-02-01T00:00:00Z' })],
    before: servedFrom(fc('a', { model: 'chat' }), fc('b', { model: 'chat', created: '2026-02-01T00:00:00Z' })),
    expect: { served: { b: ['chat', 'fault:ok', false] }, refused: {} },
  },
  {
    // An invalid object whose last good version collides with an older chain is dropped, with both reasons.
    what: 'invalid object whose last good version lost its model',
    now: [fc('a', { model: 'chat' }), fc('b', { model: 'chat', rv: '9', invalid: 'semantic', created: '2026-02-01T00:00:00Z' })],
    before: new Map([['b', { ...(servedFrom(fc('b', { model: 'chat', created: '2026-02-01T00:00:00Z' })).get('b') as ServedChain) }]]),
    expect: { served: { a: ['chat', 'fault:ok', false] }, refused: { b: [false, 'does not declare'] } },
  },
];

describe('computeChainSet', () => {
  for (const row of rows) {
    test(row.what, () => {
      const set = computeChainSet(objects(...row.now), row.before ?? new Map());
      const served = Object.fromEntries([...set.served.values()].map((s) => [s.name, [s.model, s.doc.spec.steps[0]?.model, s.lastGood]]));
      assert.deepEqual(served, row.expect.served);
      assert.deepEqual(set.refusals.map((r) => r.name).sort(), Object.keys(row.expect.refused).sort());
      for (const refusal of set.refusals) {
        const [kept, problem] = row.expect.refused[refusal.name] ?? [false, ''];
        assert.equal(refusal.lastGoodKept, kept, `${refusal.name}: lastGoodKept`);
        assert.ok(
          refusal.problems.some((p) => p.includes(problem)),
          `${refusal.name}: ${refusal.problems.join('; ')} should mention ${problem}`,
        );
      }
    });
  }

  test('an invalid object whose last good version lost its model names both reasons', () => {
    // Same setup as the last row: the refusal must say why the object is invalid AND why its old version cannot serve.
    const row = rows.at(-1) as Row;
    const [refusal] = computeChainSet(objects(...row.now), row.before ?? new Map()).refusals;
    assert.equal(refusal?.problems.length, 2);
    assert.match(refusal?.problems[1] ?? '', /already served by the older FallbackChain "a"/);
  });

  test('defaults from the schema are filled in on served documents', () => {
    // The API server fills defaults too; the watcher must not depend on it (e.g. an object stored before a default changed).
    const chat = servedFrom(fc('chat')).get('chat');
    assert.equal(chat?.doc.spec.steps[0]?.retries, 1);
    assert.deepEqual(chat?.doc.spec.policy.retryOn, ['rateLimited', 'serverError', 'timeout', 'connection']);
  });
});

describe('refusalKey and servedKey', () => {
  const table: Array<{ what: string; a: Json[]; b: Json[]; sameServed: boolean; sameRefusals: boolean }> = [
    {
      // Recomputing from the same objects (e.g. an informer re-list) changes nothing: no re-apply, no second report.
      what: 'same objects',
      a: [fc('chat'), fc('bad', { invalid: 'semantic' })],
      b: [fc('chat'), fc('bad', { invalid: 'semantic' })],
      sameServed: true,
      sameRefusals: true,
    },
    {
      // A new resourceVersion of a served chain is a change to apply.
      what: 'served chain edited',
      a: [fc('chat', { rv: '1' })],
      b: [fc('chat', { rv: '2', step: 'fault:new' })],
      sameServed: false,
      sameRefusals: true,
    },
    {
      // A refused object edited into another invalid version is reported again.
      what: 'refused object edited, still invalid',
      a: [fc('bad', { rv: '1', invalid: 'semantic' })],
      b: [fc('bad', { rv: '2', invalid: 'schema' })],
      sameServed: true,
      sameRefusals: false,
    },
  ];
  for (const row of table) {
    test(row.what, () => {
      const a = computeChainSet(objects(...row.a), new Map());
      const b = computeChainSet(objects(...row.b), new Map());
      assert.equal(servedKey(a) === servedKey(b), row.sameServed);
      assert.equal(a.refusals.map(refusalKey).join() === b.refusals.map(refusalKey).join(), row.sameRefusals);
    });
  }
});
