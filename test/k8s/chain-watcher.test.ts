// ChainWatcher without a cluster: a fake informer that behaves like the sidecar's
// ListWatch (start() lists through the watcher's list function, emits add per item,
// emits 'error' and stops when the list fails) and mock timers, so restart backoff,
// debouncing and readiness are checked step by step. The real informer against a real
// API server is in watcher.test.ts.
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Chain } from '../../src/core/types.ts';
import type { Rejection } from '../../src/chain/config-source.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { ApiEndpoint } from '../../src/k8s/api-endpoint.ts';
import { ChainWatcher, fallbackChainsPath, restartDelay, type ChainList, type FallbackChainObject } from '../../src/k8s/chain-watcher.ts';

type Verb = 'add' | 'update' | 'delete' | 'change' | 'error' | 'connect' | 'backoff';
type Callback = (arg?: unknown) => void;

class FakeInformer {
  readonly callbacks = new Map<Verb, Callback[]>();
  objects: FallbackChainObject[] = [];
  starts = 0;
  stopped = false;
  readonly path: string;
  readonly #list: () => Promise<ChainList>;
  constructor(path: string, list: () => Promise<ChainList>) {
    this.path = path;
    this.#list = list;
  }
  on(verb: Verb, cb: Callback): void {
    this.callbacks.set(verb, [...(this.callbacks.get(verb) ?? []), cb]);
  }
  off(): void {}
  emit(verb: Verb, arg?: unknown): void {
    for (const cb of this.callbacks.get(verb) ?? []) cb(arg);
  }
  async start(): Promise<void> {
    this.starts++;
    this.stopped = false;
    this.emit('connect');
    let list: ChainList;
    try {
      list = await this.#list();
    } catch (error) {
      this.emit('error', error);
      return;
    }
    this.objects = list.items;
    for (const item of list.items) this.emit('add', item);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  get(name: string): FallbackChainObject | undefined {
    return this.objects.find((o) => o.metadata?.name === name);
  }
  list(namespace?: string): FallbackChainObject[] {
    return this.objects.filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }
  /** A watch event: MODIFIED/ADDED replaces the object by name. */
  upsert(object: FallbackChainObject): void {
    this.objects = [...this.objects.filter((o) => o.metadata?.name !== object.metadata?.name), object];
    this.emit('update', object);
  }
}

function fc(name: string, o: { rv?: string; step?: string; namespace?: string; invalid?: boolean } = {}): FallbackChainObject {
  // As JSON from the API server: creationTimestamp is a string (client-node's type says Date).
  const object: Record<string, unknown> = {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name, namespace: o.namespace ?? 'shop', uid: `uid-${name}`, resourceVersion: o.rv ?? '1', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      providers: [{ name: 'up', baseURL: 'http://127.0.0.1:9/v1' }],
      steps: [{ provider: o.invalid ? 'nobody' : 'up', model: o.step ?? 'fault:ok' }],
    },
  };
  return object;
}

/** The fake informer and list function make no request: any use of the endpoint fails the test. */
const unusedEndpoint: ApiEndpoint = {
  server: 'https://127.0.0.1:1',
  via: 'kubeconfig',
  requestOptions: () => Promise.reject(new Error('the endpoint is not used with a fake informer')),
  unauthorized: () => false,
  tlsRejected: () => {},
};

const forbidden = Object.assign(new Error('HTTP-Code: 403'), { code: 403 });

interface Rig {
  watcher: ChainWatcher;
  informer: FakeInformer;
  applied: Chain[][];
  rejected: Rejection[];
  /** What the next list calls answer, in order; the last one repeats. */
  answers: Array<FallbackChainObject[] | Error>;
  lists: number;
}

function rig(answers: Array<FallbackChainObject[] | Error>): Rig {
  let informer: FakeInformer | undefined;
  const r = { applied: [] as Chain[][], rejected: [] as Rejection[], answers, lists: 0 } as Rig;
  r.watcher = new ChainWatcher({
    endpoint: unusedEndpoint,
    namespace: 'shop',
    keys: { env: {}, credentialsDir: '/nonexistent/llm-fallback-credentials' },
    logger: createLogger('silent'),
    random: () => 0, // the lowest delay of each backoff step: half the ceiling
    listFromServer: async () => {
      r.lists++;
      const answer = r.answers.length > 1 ? r.answers.shift() : r.answers[0];
      if (answer instanceof Error) throw answer;
      return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(r.lists) }, items: answer ?? [] };
    },
    createInformer: (path, list) => {
      informer = new FakeInformer(path, list);
      return informer;
    },
  });
  r.informer = informer as FakeInformer;
  return r;
}

async function start(r: Rig): Promise<void> {
  await r.watcher.start(
    (chains) => r.applied.push(chains),
    (rejection) => r.rejected.push(rejection),
  );
  await settle();
}

/** Lets pending promise continuations run (timers are mocked; setImmediate is not). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await settle();
}

const models = (chains: Chain[] | undefined): string[] => (chains ?? []).map((c) => `${c.model}:${c.steps[0]?.model ?? ''}`);

describe('restartDelay', () => {
  const backoff = { baseMs: 500, maxMs: 30_000 };
  const rows: Array<{ failures: number; random: number; expected: number; why: string }> = [
    { failures: 1, random: 0, expected: 250, why: 'first restart: half of the base at the lowest jitter' },
    { failures: 1, random: 1, expected: 500, why: 'first restart: the base at the highest jitter' },
    { failures: 2, random: 1, expected: 1000, why: 'doubles per failure' },
    { failures: 4, random: 0.5, expected: 3000, why: 'equal jitter: three quarters of the 4 s ceiling at random 0.5' },
    { failures: 7, random: 1, expected: 30_000, why: '500·2^6 = 32 s is capped at maxMs' },
    { failures: 50, random: 0, expected: 15_000, why: 'far past the cap: never below half of maxMs, never a flood' },
  ];
  for (const row of rows) {
    test(`${row.failures} failures, random ${row.random}: ${row.why}`, () => {
      assert.equal(
        restartDelay(row.failures, backoff, () => row.random),
        row.expected,
      );
    });
  }
});

describe('ChainWatcher with a fake informer', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  test('watches the namespaced fallbackchains path', () => {
    // Own namespace only: the informer is built on the namespaced path, never the cluster-wide one.
    const r = rig([[]]);
    assert.equal(r.informer.path, '/apis/llmfallback.io/v1alpha1/namespaces/shop/fallbackchains');
    assert.equal(fallbackChainsPath('shop'), r.informer.path);
  });

  test('nothing is applied until a list succeeds; failed starts are retried with growing delays', async () => {
    const r = rig([forbidden, forbidden, forbidden, [fc('chat')]]);
    await start(r);
    // First list refused: no snapshot (so /readyz stays 503), a restart is scheduled 250 ms out.
    assert.equal(r.lists, 1);
    assert.equal(r.watcher.listed, false);
    await advance(249);
    assert.equal(r.lists, 1, 'no restart before the backoff delay');
    await advance(1);
    assert.equal(r.lists, 2, 'restarted after 250 ms');
    await advance(499);
    assert.equal(r.lists, 2, 'second delay is 500 ms');
    await advance(1);
    assert.equal(r.lists, 3);
    await advance(1000);
    assert.equal(r.lists, 4, 'third delay is 1000 ms; this list succeeds');
    assert.equal(r.applied.length, 0, 'applied only after the debounce window');
    await advance(50);
    assert.equal(r.watcher.listed, true);
    assert.deepEqual(r.applied.map(models), [['chat:fault:ok']]);
    assert.equal(r.informer.starts, 4);
    r.watcher.stop();
  });

  test('an empty namespace is a successful list: an empty snapshot is applied', async () => {
    // Ready with zero chains: readiness is about having listed, not about having chains.
    const r = rig([[]]);
    await start(r);
    await advance(50);
    assert.deepEqual(r.applied, [[]]);
    r.watcher.stop();
  });

  test('a burst of events makes one snapshot; an unchanged re-list applies nothing', async () => {
    const r = rig([[fc('chat')]]);
    await start(r);
    await advance(50);
    assert.equal(r.applied.length, 1);
    // Three events within the window: one snapshot with all three changes.
    r.informer.upsert(fc('chat', { rv: '2', step: 'fault:ok#2' }));
    r.informer.upsert(fc('other', { rv: '3' }));
    await advance(20);
    r.informer.upsert(fc('chat', { rv: '4', step: 'fault:ok#4' }));
    await advance(29);
    assert.equal(r.applied.length, 1, 'still inside the 50 ms window');
    await advance(1);
    assert.deepEqual(r.applied.map(models), [['chat:fault:ok'], ['chat:fault:ok#4', 'other:fault:ok']]);
    // The same objects again (what a re-list after a reconnect delivers): no new snapshot.
    r.informer.upsert(fc('chat', { rv: '4', step: 'fault:ok#4' }));
    await advance(50);
    assert.equal(r.applied.length, 2);
    r.watcher.stop();
  });

  test('objects of another namespace in the cache are never served', async () => {
    // Defence in depth: the path is namespaced, and the snapshot also filters on metadata.namespace.
    const r = rig([[fc('chat'), fc('intruder', { namespace: 'other' })]]);
    await start(r);
    await advance(50);
    assert.deepEqual(r.applied.map(models), [['chat:fault:ok']]);
    r.watcher.stop();
  });

  test('an invalid edit is refused once, the last good version keeps serving', async () => {
    const r = rig([[fc('chat')]]);
    await start(r);
    await advance(50);
    r.informer.upsert(fc('chat', { rv: '2', invalid: true }));
    await advance(50);
    assert.equal(r.rejected.length, 1);
    assert.equal(r.rejected[0]?.object, 'shop/chat');
    assert.equal(r.rejected[0]?.lastGoodKept, true);
    assert.match(r.rejected[0]?.problems.join() ?? '', /\/spec\/steps\/0\/provider/);
    // The served set did not change: no new snapshot.
    assert.equal(r.applied.length, 1);
    // Another object changes: a new snapshot, still with chat's last good version, and no second report.
    r.informer.upsert(fc('other', { rv: '3' }));
    await advance(50);
    assert.deepEqual(r.applied.map(models), [['chat:fault:ok'], ['chat:fault:ok', 'other:fault:ok']]);
    assert.equal(r.rejected.length, 1);
    r.watcher.stop();
  });

  test('an informer error after running restarts it; a successful list resets the backoff', async () => {
    const r = rig([[fc('chat')], forbidden, [fc('chat')], forbidden, [fc('chat')]]);
    await start(r);
    await advance(50);
    // The informer stops on an error (as ListWatch does); the watcher restarts it.
    r.informer.emit('error', new Error('connect ECONNREFUSED'));
    await advance(250);
    assert.equal(r.lists, 2, 'first restart after 250 ms, list refused');
    await advance(500);
    assert.equal(r.lists, 3, 'second restart after 500 ms, list succeeds');
    r.informer.emit('error', new Error('socket hang up'));
    await advance(249);
    assert.equal(r.lists, 3);
    await advance(1);
    assert.equal(r.lists, 4, 'backoff started again from 250 ms after the successful list');
    r.watcher.stop();
  });

  test('stop() cancels a pending restart and the informer', async () => {
    const r = rig([forbidden]);
    await start(r);
    r.watcher.stop();
    await advance(60_000);
    assert.equal(r.lists, 1, 'no restart after stop');
    assert.equal(r.informer.stopped, true);
    assert.equal(await r.watcher.reload(), false, 'a stopped watcher applies nothing');
  });

  test('reload() re-resolves the current objects even when none changed', async () => {
    // Used when the credentials files change: the objects are the same, the keys are not.
    const r = rig([forbidden, [fc('chat')]]);
    await start(r);
    assert.equal(await r.watcher.reload(), false, 'not before the first successful list');
    await advance(250);
    await advance(50);
    assert.equal(r.applied.length, 1);
    assert.equal(await r.watcher.reload(), true);
    assert.equal(r.applied.length, 2);
    r.watcher.stop();
  });
});
