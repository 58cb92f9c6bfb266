// The sidecar's own FallbackChain list+watch client (src/k8s/list-watch.ts, api-client.ts,
// api-endpoint.ts): against a real kube-apiserver + etcd for listing, live changes, watches
// the server ends, and rotating service-account tokens (in-cluster, with the server's real
// CA); against a faked API server on 127.0.0.1 (plain http, through a kubeconfig) for what a
// real one does not do on demand: 410 Gone, bookmarks at a chosen point, ERROR events.
// The whole sidecar on this client (readiness, refusals, an API server restart) is watcher.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { getJson, KubeApiError, LIST_BODY_LIMIT, watchEvents } from '../../src/k8s/api-client.ts';
import { loadApiEndpoint, type ApiEndpoint } from '../../src/k8s/api-endpoint.ts';
import { ChainWatcher, fallbackChainsPath, watchPath, type ChainList, type FallbackChainObject } from '../../src/k8s/chain-watcher.ts';
import { ListWatch, type InformerVerb, type ListWatchOptions, type ReconnectBackoff } from '../../src/k8s/list-watch.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { chainReaderClusterRole, chainReaderRoleBinding } from '../../src/k8s/rbac.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';

const NS = 'shop';
const GROUP = { group: 'llmfallback.io', version: 'v1alpha1', plural: 'fallbackchains' };
const WAIT_LIMIT_MS = 20_000;

type Json = Record<string, unknown>;

interface Rig {
  informer: ListWatch<FallbackChainObject>;
  /** How many lists and from which resourceVersion each watch started. */
  lists: number;
  watches: string[];
  /** When each watch was opened (ms, performance.now()). */
  openedAt: number[];
  errors: unknown[];
  backoffs: ReconnectBackoff[];
  /** Resolves once `count` watches were opened. */
  untilWatches(count: number): Promise<void>;
  /** Resolves on the next `verb` whose object (or error) passes `match`. */
  next(verb: InformerVerb, match?: (arg: unknown) => boolean): Promise<unknown>;
  names(): string[];
}

/** A ListWatch put together as ChainWatcher does (getJson list, watchEvents watch), counting its calls. */
function rig(
  endpoint: ApiEndpoint,
  timeoutSeconds: number,
  extra: Pick<ListWatchOptions<FallbackChainObject>, 'idleTimeoutMs' | 'reconnectBackoff' | 'random'> = {},
): Rig {
  const listPath = fallbackChainsPath(NS);
  const waiters: Array<{ verb: InformerVerb; match: (arg: unknown) => boolean; resolve: (arg: unknown) => void }> = [];
  const watchWaiters: Array<{ count: number; resolve: () => void }> = [];
  const r: Rig = {
    lists: 0,
    watches: [],
    openedAt: [],
    errors: [],
    backoffs: [],
    informer: new ListWatch<FallbackChainObject>({
      ...extra,
      list: async () => {
        r.lists++;
        return (await getJson(endpoint, listPath)) as ChainList;
      },
      watch: ({ resourceVersion, signal, onEvent }) => {
        r.watches.push(resourceVersion);
        r.openedAt.push(performance.now());
        for (const waiter of watchWaiters.filter((w) => w.count <= r.watches.length)) {
          watchWaiters.splice(watchWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
        return watchEvents(endpoint, watchPath(listPath, resourceVersion, timeoutSeconds), onEvent, { signal });
      },
      watchDeadlineMs: timeoutSeconds * 1000 + 30_000,
    }),
    untilWatches: (count) =>
      new Promise((resolve, reject) => {
        if (r.watches.length >= count) return resolve();
        const timer = setTimeout(() => reject(new Error(`not ${count} watches within ${WAIT_LIMIT_MS} ms`)), WAIT_LIMIT_MS);
        watchWaiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    next: (verb, match = () => true) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${verb} within ${WAIT_LIMIT_MS} ms`)), WAIT_LIMIT_MS);
        waiters.push({
          verb,
          match,
          resolve: (arg) => {
            clearTimeout(timer);
            resolve(arg);
          },
        });
      }),
    names: () =>
      r.informer
        .list(NS)
        .map((o) => o.metadata?.name ?? '')
        .sort(),
  };
  for (const verb of ['add', 'update', 'delete', 'error', 'backoff'] as const) {
    r.informer.on(verb, (arg) => {
      if (verb === 'error') r.errors.push(arg);
      if (verb === 'backoff') r.backoffs.push(arg as ReconnectBackoff);
      for (const waiter of [...waiters]) {
        if (waiter.verb !== verb || !waiter.match(arg)) continue;
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(arg);
      }
    });
  }
  return r;
}

const named =
  (name: string) =>
  (arg: unknown): boolean =>
    (arg as FallbackChainObject).metadata?.name === name;

const statusOf = (error: unknown): number | undefined => (error instanceof KubeApiError ? error.statusCode : undefined);

function chainObject(name: string, step: string): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name, namespace: NS },
    spec: { providers: [{ name: 'mock', baseURL: 'http://127.0.0.1:9/v1' }], steps: [{ provider: 'mock', model: step }] },
  };
}

describe('ListWatch on a real API server', { timeout: 180_000 }, () => {
  let kube: KubeHarness;
  let chains: CustomObjectsApi;
  let saKubeconfig: string;
  let saDir: string;

  const create = async (name: string, step: string): Promise<void> => {
    await chains.createNamespacedCustomObject({ ...GROUP, namespace: NS, body: chainObject(name, step) });
  };
  const edit = async (name: string, step: string): Promise<void> => {
    const current = (await chains.getNamespacedCustomObject({ ...GROUP, namespace: NS, name })) as Json;
    ((current['spec'] as Json)['steps'] as Json[])[0] = { provider: 'mock', model: step };
    await chains.replaceNamespacedCustomObject({ ...GROUP, namespace: NS, name, body: current });
  };
  const remove = async (name: string): Promise<void> => {
    await chains.deleteNamespacedCustomObject({ ...GROUP, namespace: NS, name });
  };

  before(async () => {
    kube = await startKube();
    await kube.installCrd();
    await kube.createNamespace(NS);
    const admin = kube.kubeConfig();
    chains = admin.makeApiClient(CustomObjectsApi);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: chainReaderClusterRole() });
    await rbac.createNamespacedRoleBinding({ namespace: NS, body: chainReaderRoleBinding(NS) });
    saKubeconfig = (await kube.serviceAccountKubeConfig(NS, 'app')).kubeconfigPath;
    saDir = await mkdtemp(path.join(tmpdir(), 'llmfb-sa-'));
  });

  after(async () => {
    await kube?.stop();
    if (saDir) await rm(saDir, { recursive: true, force: true });
  });

  test('lists what exists, then sees objects added, modified and deleted live', async () => {
    await create('one', 'fault:ok#1');
    const r = rig(await loadApiEndpoint({ kubeconfigPath: saKubeconfig, env: {} }), 300);
    await r.informer.start();
    assert.deepEqual(r.names(), ['one'], 'the list filled the cache before start() resolved');
    const added = r.next('add', named('two'));
    await create('two', 'fault:ok#2');
    await added;
    const updated = r.next('update', named('one'));
    await edit('one', 'fault:ok#1b');
    const one = (await updated) as FallbackChainObject;
    assert.equal((one.spec as { steps: Json[] }).steps[0]?.['model'], 'fault:ok#1b');
    const deleted = r.next('delete', named('two'));
    await remove('two');
    await deleted;
    assert.deepEqual(r.names(), ['one']);
    assert.equal(r.lists, 1, 'one list, then only the watch');
    assert.equal(r.watches.length, 1, 'one watch held open');
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
  });

  test('a watch the server ends (timeoutSeconds) is opened again from the last resourceVersion, without a new list', async () => {
    const r = rig(await loadApiEndpoint({ kubeconfigPath: saKubeconfig, env: {} }), 1);
    await r.informer.start();
    const added = r.next('add', named('three'));
    await create('three', 'fault:ok#3');
    const three = (await added) as FallbackChainObject;
    const seenAt = r.watches.length;
    // Two more server-ended watches: changes in between are not lost.
    await r.untilWatches(seenAt + 2);
    const updated = r.next('update', named('three'));
    await edit('three', 'fault:ok#3b');
    await updated;
    assert.equal(r.lists, 1, 'never listed again');
    assert.ok(r.watches.length >= 3, `${r.watches.length} watches`);
    const versions = r.watches.map(Number);
    assert.ok(
      versions.every((v, i) => i === 0 || v >= (versions[i - 1] ?? 0)),
      `each watch starts where the last left off: ${r.watches.join(', ')}`,
    );
    assert.ok((versions[seenAt] ?? 0) >= Number(three.metadata?.resourceVersion), 'the watch after the event starts at or after its resourceVersion');
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
  });

  test('in-cluster: the service account token is read again on a 401 and when it is older than the re-read period', async () => {
    // The pod's mount: the API server's real CA (its self-signed serving cert names 127.0.0.1), a token, the namespace.
    const served = await readFile(path.join(path.dirname(kube.kubeconfigPath), 'certs', 'apiserver.crt'), 'utf8');
    const ca = served.split(/(?=-----BEGIN CERTIFICATE-----)/)[1];
    assert.ok(ca, 'the serving cert file holds the CA after the cert');
    await writeFile(path.join(saDir, 'ca.crt'), ca);
    const validToken = JSON.parse(await readFile(saKubeconfig, 'utf8')).users[0].user.token as string;
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(kube.server).port };
    const tokenFile = path.join(saDir, 'token');

    // 1. A token the server refuses, then rotated: the next request's 401 makes the client read it again and retry.
    await writeFile(tokenFile, 'revoked-token');
    const refused = rig(await loadApiEndpoint({ env, serviceAccountDir: saDir }, { tokenRereadMs: 3_600_000 }), 300);
    await refused.informer.start();
    assert.equal(statusOf(refused.errors[0]), 401, 'the first token was refused');
    await writeFile(tokenFile, validToken);
    await refused.informer.start();
    assert.equal(refused.errors.length, 1, 'the second start listed: the rotated token was read on the 401, within the hour');
    assert.equal(refused.lists, 2);
    await refused.informer.stop();

    // 2. Without a 401 to prompt it: a token older than the period is read again before the next request.
    const aging = rig(await loadApiEndpoint({ env, serviceAccountDir: saDir }, { tokenRereadMs: 200 }), 1);
    await aging.informer.start();
    assert.deepEqual(aging.errors, []);
    const failed = aging.next('error');
    await writeFile(tokenFile, 'revoked-token');
    // The server ends the watch after 1 s; the next watch reads the file again and is refused.
    assert.equal(statusOf(await failed), 401);
    assert.equal(aging.lists, 1);
    await aging.informer.stop();
  });
});

interface FakeApi {
  url: string;
  kubeconfigPath: string;
  /** Request paths with their query, in order. */
  requests: string[];
  /** The list answer (resourceVersion and items). */
  list: { resourceVersion: string; items: FallbackChainObject[] };
  /** What each next watch request gets (status line included); when empty, a watch is held open until the server closes. */
  watches: Array<(res: http.ServerResponse) => void>;
  close(): Promise<void>;
}

async function startFakeApi(dir: string): Promise<FakeApi> {
  const api: FakeApi = {
    url: '',
    kubeconfigPath: path.join(dir, 'kubeconfig'),
    requests: [],
    list: { resourceVersion: '10', items: [] },
    watches: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    api.requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== 'Bearer fake-token') {
      res.writeHead(401).end();
    } else if (url.searchParams.get('watch') === '1') {
      const script = api.watches.shift();
      if (script) script(res);
      else res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'llmfallback.io/v1alpha1',
          kind: 'FallbackChainList',
          metadata: { resourceVersion: api.list.resourceVersion },
          items: api.list.items,
        }),
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await writeFile(
    api.kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain http: the client sends credentials to it only with TLS verification knowingly off.
      clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u' } }],
      'current-context': 'fake',
    }),
  );
  return api;
}

const object = (name: string, resourceVersion: string): FallbackChainObject => ({ metadata: { name, namespace: NS, resourceVersion }, spec: {} });
const line = (type: string, body: Json | FallbackChainObject): string => `${JSON.stringify({ type, object: body })}\n`;

describe('ListWatch against a faked API server', () => {
  let dir: string;
  let api: FakeApi;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-fake-api-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function started(extra: Parameters<typeof rig>[2] = {}): Promise<Rig> {
    api = await startFakeApi(dir);
    return rig(await loadApiEndpoint({ kubeconfigPath: api.kubeconfigPath, env: {} }), 300, extra);
  }

  test('asks for bookmarks; a BOOKMARK moves the resourceVersion the next watch starts from', async () => {
    const r = await started();
    api.list = { resourceVersion: '10', items: [object('a', '9')] };
    api.watches.push((res) =>
      res.writeHead(200).end(line('BOOKMARK', { kind: 'FallbackChain', apiVersion: 'llmfallback.io/v1alpha1', metadata: { resourceVersion: '77' } })),
    );
    await r.informer.start();
    await r.untilWatches(2);
    const query = new URL(api.requests.find((q) => q.includes('watch=1')) ?? '', 'http://x').searchParams;
    assert.deepEqual(
      { rv: query.get('resourceVersion'), bookmarks: query.get('allowWatchBookmarks'), timeout: query.get('timeoutSeconds') },
      { rv: '10', bookmarks: 'true', timeout: '300' },
    );
    assert.deepEqual(r.watches, ['10', '77'], 'the second watch starts from the bookmark');
    assert.deepEqual(r.names(), ['a'], 'a bookmark changes no object');
    assert.equal(r.lists, 1);
    await r.informer.stop();
    await api.close();
  });

  test('410 Gone as the HTTP status: lists again and watches from the new list', async () => {
    const r = await started();
    api.list = { resourceVersion: '10', items: [object('a', '9'), object('b', '9')] };
    api.watches.push((res) => {
      // What a real server answers a watch from a compacted resourceVersion (its status line says 410 too).
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 10 (50)' }),
      );
      api.list = { resourceVersion: '60', items: [object('a', '55'), object('c', '58')] };
    });
    const deleted = r.next('delete', named('b'));
    const added = r.next('add', named('c'));
    const updated = r.next('update', named('a'));
    await r.informer.start();
    await Promise.all([deleted, added, updated]);
    await r.untilWatches(2);
    assert.deepEqual(r.names(), ['a', 'c'], 'the cache is the new list: b went while the watch was gone');
    assert.equal(r.lists, 2);
    assert.deepEqual(r.watches, ['10', '60'], 'watching again from the new list');
    assert.deepEqual(r.errors, [], 'a relist is not a failure');
    await r.informer.stop();
    await api.close();
  });

  test('an ERROR event with code 410 mid-stream lists again; events before it were applied', async () => {
    const r = await started();
    api.list = { resourceVersion: '10', items: [] };
    api.watches.push((res) => {
      res.writeHead(200).write(line('ADDED', object('a', '11')));
      res.end(line('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' }));
      api.list = { resourceVersion: '20', items: [object('a', '11'), object('d', '19')] };
    });
    const addedA = r.next('add', named('a'));
    const addedD = r.next('add', named('d'));
    await r.informer.start();
    await Promise.all([addedA, addedD]);
    await r.untilWatches(2);
    assert.equal(r.lists, 2);
    assert.deepEqual(r.watches, ['10', '20']);
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
    await api.close();
  });

  test('an ERROR event with another code fails the watch for the owner to restart', async () => {
    const r = await started();
    api.watches.push((res) =>
      res
        .writeHead(200)
        .end(line('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500, message: 'etcd is sad' })),
    );
    const failed = r.next('error');
    await r.informer.start();
    const error = await failed;
    assert.equal(statusOf(error), 500);
    assert.match((error as Error).message, /etcd is sad/);
    assert.equal(r.watches.length, 1);
    await r.informer.stop();
    await api.close();
  });

  test('a connection cut mid-stream is watched again from the last resourceVersion, without a list; the half event is never applied', async () => {
    const r = await started({ reconnectBackoff: { baseMs: 10, maxMs: 1_000 } });
    api.watches.push((res) => {
      res.writeHead(200).write(line('ADDED', object('a', '11')));
      res.write('{"type":"ADDED","object":{"metadata":{"name":"half"');
      setImmediate(() => res.socket?.destroy());
    });
    await r.informer.start();
    await r.untilWatches(2);
    assert.deepEqual(r.watches, ['10', '11'], 'the second watch starts after the last whole event');
    assert.deepEqual(r.names(), ['a']);
    assert.equal(r.lists, 1, 'no relist for a cut connection');
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
    await api.close();
  });

  test('410 again right after the relist for one is an error for the owner to back off on, not a relist loop', async () => {
    const r = await started({ reconnectBackoff: { baseMs: 10, maxMs: 5_000 }, random: () => 1 });
    const gone = (res: http.ServerResponse): void => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' }));
    };
    api.watches.push(gone, gone, gone, gone, gone, gone);
    const failed = r.next('error');
    await r.informer.start();
    assert.equal(statusOf(await failed), 410);
    assert.deepEqual({ lists: r.lists, watches: r.watches.length }, { lists: 2, watches: 2 }, 'one relist, then the error');
    // The owner's restart lists fine, and the loop would start over: the waits keep growing instead.
    const again = r.next('error');
    await r.informer.start();
    assert.equal(statusOf(await again), 410);
    assert.deepEqual(
      r.backoffs.map((b) => [b.attempt, b.delayMs]),
      [
        [1, 10],
        [2, 20],
        [3, 40],
      ],
    );
    await r.informer.stop();
    await api.close();
  });

  test('watches that end without a change are opened again after a doubling wait, announced; a change resets it', async () => {
    // random 1: the top of each equal-jitter range, the ceiling itself.
    const r = await started({ reconnectBackoff: { baseMs: 40, maxMs: 5_000 }, random: () => 1 });
    const bookmarkThenEnd = (res: http.ServerResponse): void => {
      res.writeHead(200).end(line('BOOKMARK', { kind: 'FallbackChain', metadata: { resourceVersion: '12' } }));
    };
    const endAtOnce = (res: http.ServerResponse): void => {
      res.writeHead(200).end();
    };
    api.watches.push(bookmarkThenEnd, endAtOnce, bookmarkThenEnd, (res) => res.writeHead(200).end(line('ADDED', object('a', '13'))), endAtOnce);
    await r.informer.start();
    await r.untilWatches(6);
    assert.deepEqual(
      r.backoffs,
      [
        { attempt: 1, delayMs: 40, ended: 'ended' },
        { attempt: 2, delayMs: 80, ended: 'ended' },
        { attempt: 3, delayMs: 160, ended: 'ended' },
        { attempt: 1, delayMs: 40, ended: 'ended' },
      ],
      'no wait after the watch that delivered a change',
    );
    const gaps = r.openedAt.slice(1).map((at, i) => at - (r.openedAt[i] ?? 0));
    for (const [i, wait] of [40, 80, 160].entries()) assert.ok((gaps[i] ?? 0) >= wait - 2, `watch ${i + 2} opened ${gaps[i]} ms after the one before`);
    assert.equal(r.lists, 1);
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
    await api.close();
  });

  test('stop() during the wait between watches ends it: no timer is left and no further watch opens', async () => {
    const r = await started({ reconnectBackoff: { baseMs: 600_000, maxMs: 600_000 } });
    api.watches.push((res) => res.writeHead(200).end());
    const waiting = new Promise<void>((resolve) => r.informer.on('backoff', () => resolve()));
    await r.informer.start();
    await waiting;
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    await r.informer.stop();
    assert.equal(timers(), before - 1, 'the ten-minute wait was cleared');
    assert.equal(r.watches.length, 1);
    await api.close();
  });

  test('a watch silent for the idle timeout is opened again from the last resourceVersion; each bookmark restarts the timer', async () => {
    const r = await started({ idleTimeoutMs: 400, reconnectBackoff: { baseMs: 10, maxMs: 100 } });
    api.watches.push((res) => {
      // Bookmarks every 50 ms for 300 ms (the timer restarts on each), then silence: a half-open connection.
      res.writeHead(200).flushHeaders();
      let version = 70;
      const timer = setInterval(() => {
        version++;
        if (!res.destroyed) res.write(line('BOOKMARK', { kind: 'FallbackChain', metadata: { resourceVersion: String(version) } }));
        if (version === 76) clearInterval(timer);
      }, 50);
    });
    await r.informer.start();
    await r.untilWatches(2);
    assert.deepEqual(r.watches, ['10', '76'], 'the watch lived through all six bookmarks, then idled out');
    assert.equal(r.lists, 1, 'a silent watch is not a reason to list');
    assert.deepEqual(r.errors, []);
    await r.informer.stop();
    await api.close();
  });

  test('ChainWatcher: timeoutSeconds is random over one to two times the minimum (5-10 min), as client-go asks', async () => {
    api = await startFakeApi(dir);
    const endpoint = await loadApiEndpoint({ kubeconfigPath: api.kubeconfigPath, env: {} });
    const randoms = [0, 0.5, 0.999];
    const watcher = new ChainWatcher({
      endpoint,
      namespace: NS,
      keys: { env: {}, credentialsDir: '/nonexistent/llm-fallback-credentials' },
      logger: createLogger('silent'),
      random: () => randoms.shift() ?? 0,
      reconnectBackoff: { baseMs: 1, maxMs: 2 },
    });
    const ended = (res: http.ServerResponse): void => {
      res.writeHead(200).end(line('ADDED', object(`x${api.requests.length}`, String(api.requests.length + 10))));
    };
    api.watches.push(ended, ended);
    await watcher.start(
      () => {},
      () => {},
    );
    while (api.requests.filter((q) => q.includes('watch=1')).length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    watcher.stop();
    const timeouts = api.requests.filter((q) => q.includes('watch=1')).map((q) => new URL(q, 'http://x').searchParams.get('timeoutSeconds'));
    assert.deepEqual(timeouts, ['300', '450', '599']);
    await api.close();
  });
});

describe('list requests: aborted on timeout and stop(), and capped', () => {
  interface ListServer {
    url: string;
    kubeconfigPath: string;
    /** Resolves when the server sees the client close the list request's connection. */
    closed: Promise<void>;
    /** Resolves on the first list request. */
    requested: Promise<void>;
    close(): Promise<void>;
  }
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-list-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A server whose list answer is `body(res)`: a trickle or a flood the test chooses. */
  async function listServer(body: (res: http.ServerResponse) => void): Promise<ListServer> {
    let closed = (): void => {};
    let requested = (): void => {};
    const server = http.createServer((req, res) => {
      requested();
      req.socket.on('close', () => closed());
      res.writeHead(200, { 'content-type': 'application/json' });
      body(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const kubeconfigPath = path.join(dir, `kubeconfig-${(server.address() as AddressInfo).port}`);
    await writeFile(
      kubeconfigPath,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'fake-token' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u' } }],
        'current-context': 'fake',
      }),
    );
    return {
      url,
      kubeconfigPath,
      closed: new Promise((resolve) => (closed = resolve)),
      requested: new Promise((resolve) => (requested = resolve)),
      close: async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  /** A byte every 50 ms: never idle, never done. */
  const trickle = (res: http.ServerResponse): void => {
    res.write('{');
    const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(' ')), 50);
  };

  async function watcherOn(server: ListServer, listTimeoutMs: number): Promise<ChainWatcher> {
    return new ChainWatcher({
      endpoint: await loadApiEndpoint({ kubeconfigPath: server.kubeconfigPath, env: {} }),
      namespace: NS,
      keys: { env: {}, credentialsDir: '/nonexistent/llm-fallback-credentials' },
      logger: createLogger('silent'),
      listTimeoutMs,
      // No restart within the test: one list request to watch.
      restartBackoff: { baseMs: 600_000, maxMs: 600_000 },
    });
  }

  test('a list still trickling at the list timeout is aborted: its connection closes', async () => {
    const server = await listServer(trickle);
    const watcher = await watcherOn(server, 300);
    await watcher.start(
      () => {},
      () => {},
    );
    await server.closed;
    assert.equal(watcher.listed, false);
    watcher.stop();
    await server.close();
  });

  test('stop() aborts a list in flight: its connection closes', async () => {
    const server = await listServer(trickle);
    const watcher = await watcherOn(server, 600_000);
    await watcher.start(
      () => {},
      () => {},
    );
    await server.requested;
    watcher.stop();
    await server.closed;
    await server.close();
  });

  test(`a list answer over ${LIST_BODY_LIMIT} bytes is refused with a clear error and its connection closed`, async () => {
    let sent = 0;
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    // An endless answer, written as fast as the client reads (at most twice the limit, should the client never stop).
    const server = await listServer((res) => {
      const pump = (): void => {
        while (!res.destroyed && sent < 2 * LIST_BODY_LIMIT) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const endpoint = await loadApiEndpoint({ kubeconfigPath: server.kubeconfigPath, env: {} });
    await assert.rejects(getJson(endpoint, fallbackChainsPath(NS)), (e: unknown) => e instanceof KubeApiError && /over 67108864 bytes/.test(e.message));
    await server.closed;
    assert.ok(sent < 2 * LIST_BODY_LIMIT, `the server stopped at ${sent} bytes`);
    await server.close();
  });
});
