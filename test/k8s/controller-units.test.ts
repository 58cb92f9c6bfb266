// The controller's parts without a cluster: status computation, lease decisions and the
// elector (fake Lease API, fake timers), RBAC objects, the keyed work queue, the namespace
// label cache, the command-line options, and the HTTPS webhook transport (real TLS).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import http from 'node:http';
import type { ValidationResult } from '../../src/chain/validate.ts';
import { parseControllerOptions, parseInjectOptions, UsageError } from '../../src/config/options.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { decideLease, LeaderElector, nextLeaseSpec, releasedLeaseSpec, type LeaseClient, type LeaseSpecLike } from '../../src/k8s/leader.ts';
import { NamespaceLabelCache } from '../../src/k8s/namespace-labels.ts';
import { CHAIN_READER, chainReaderClusterRole, chainReaderRoleBinding, roleBindingAction } from '../../src/k8s/rbac.ts';
import { desiredStatus, MAX_MESSAGE_CHARS, problemsMessage, statusPatch, type ChainStatus } from '../../src/k8s/status.ts';
import { MUTATE_PATH, startHealthServer, startWebhookServer, type RunningWebhookServer } from '../../src/k8s/webhook-server.ts';
import { KeyedQueue } from '../../src/k8s/work-queue.ts';
import { makeTestCerts, type TestCerts } from '../support/test-certs.ts';

const silent = createLogger('silent');
const NOW = new Date('2026-05-01T10:00:00Z');
const EARLIER = '2026-04-01T08:00:00Z';
const VALID: ValidationResult = { ok: true, doc: {} as never };
const INVALID: ValidationResult = {
  ok: false,
  problems: [{ path: '/spec/steps/0/provider', message: 'step names provider "x", which spec.providers does not declare' }],
};

/** Let promise chains started by fired timers run to completion. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe('status: desiredStatus and statusPatch', () => {
  const readyTrue = { type: 'Ready', status: 'True' as const, reason: 'Valid', message: '', lastTransitionTime: EARLIER };
  const cases: Array<{ what: string; object: Record<string, unknown>; validation: ValidationResult; expect: ChainStatus; write: boolean }> = [
    // Proves a fresh object gets Ready True, its generation, and "now" as the transition time.
    {
      what: 'first status of a valid chain',
      object: { metadata: { generation: 1 } },
      validation: VALID,
      expect: {
        observedGeneration: 1,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Valid', message: '', lastTransitionTime: '2026-05-01T10:00:00Z' }],
      },
      write: true,
    },
    // Proves nothing is written when the object already carries exactly this status (no hot loop).
    {
      what: 'unchanged: no write',
      object: { metadata: { generation: 3 }, status: { observedGeneration: 3, conditions: [readyTrue] } },
      validation: VALID,
      expect: { observedGeneration: 3, conditions: [readyTrue] },
      write: false,
    },
    // Proves a new generation is written while the transition time stays (status value unchanged).
    {
      what: 'new generation, still valid',
      object: { metadata: { generation: 4 }, status: { observedGeneration: 3, conditions: [readyTrue] } },
      validation: VALID,
      expect: { observedGeneration: 4, conditions: [readyTrue] },
      write: true,
    },
    // Proves True -> False moves the transition time and carries the problems as the message.
    {
      what: 'becomes invalid',
      object: { metadata: { generation: 5 }, status: { observedGeneration: 4, conditions: [readyTrue] } },
      validation: INVALID,
      expect: {
        observedGeneration: 5,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'Invalid',
            message: '/spec/steps/0/provider: step names provider "x", which spec.providers does not declare',
            lastTransitionTime: '2026-05-01T10:00:00Z',
          },
        ],
      },
      write: true,
    },
    // Proves conditions of other types (someone else's) are kept after Ready.
    {
      what: 'other conditions kept',
      object: { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [{ type: 'Audited', status: 'True' }, readyTrue] } },
      validation: VALID,
      expect: { observedGeneration: 1, conditions: [readyTrue, { type: 'Audited', status: 'True' }] },
      write: true,
    },
    // Proves the step count is written for the STEPS printer column (a JSONPath column cannot count).
    {
      what: 'step count written',
      object: { metadata: { generation: 2 }, spec: { steps: [{}, {}, {}] }, status: { observedGeneration: 2, conditions: [readyTrue] } },
      validation: VALID,
      expect: { observedGeneration: 2, conditions: [readyTrue], steps: 3 },
      write: true,
    },
    // Proves an unchanged step count causes no write, and a changed one does (here: none yet → 1 step).
    {
      what: 'step count unchanged: no write',
      object: { metadata: { generation: 2 }, spec: { steps: [{}] }, status: { observedGeneration: 2, conditions: [readyTrue], steps: 1 } },
      validation: VALID,
      expect: { observedGeneration: 2, conditions: [readyTrue], steps: 1 },
      write: false,
    },
    // Proves an object without a generation (never from the API server, but possible) gets no observedGeneration.
    {
      what: 'no generation',
      object: { metadata: {} },
      validation: VALID,
      expect: { conditions: [{ ...readyTrue, lastTransitionTime: '2026-05-01T10:00:00Z' }] },
      write: true,
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const desired = desiredStatus(c.object, c.validation, NOW);
      assert.deepEqual(desired, c.expect);
      assert.equal(statusPatch(c.object, desired) !== undefined, c.write);
      if (c.write) assert.deepEqual(statusPatch(c.object, desired), { status: c.expect });
      // Idempotent: once written, the same computation asks for nothing more.
      const written = { ...c.object, status: desired };
      assert.equal(statusPatch(written, desiredStatus(written, c.validation, new Date(NOW.getTime() + 60_000))), undefined);
    });
  }

  test('a long list of problems is cut, saying how many were left out', () => {
    const problems = Array.from({ length: 200 }, (_, i) => ({ path: `/spec/steps/${i}/model`, message: 'x'.repeat(40) }));
    const message = problemsMessage(problems);
    assert.ok(message.length <= MAX_MESSAGE_CHARS, `${message.length} chars`);
    const kept = message.split('; ').filter((p) => p.startsWith('/spec/')).length;
    assert.match(message, new RegExp(`…and ${200 - kept} more problem\\(s\\)$`));
  });
});

describe('leader: decideLease', () => {
  const held = (holder: string, renewMs: number): LeaseSpecLike => ({ holderIdentity: holder, leaseDurationSeconds: 15, renewTime: new Date(renewMs) });
  const cases: Array<{ what: string; lease: LeaseSpecLike | undefined; nowMs: number; observed?: { fingerprint: string; atMs: number }; expect: string }> = [
    // Proves a missing Lease is created.
    { what: 'no lease', lease: undefined, nowMs: 0, expect: 'create' },
    // Proves our own lease is renewed.
    { what: 'ours', lease: held('me', 0), nowMs: 5_000, expect: 'renew' },
    // Proves a released lease (no holder) is taken at once.
    { what: 'released', lease: { holderIdentity: '', leaseDurationSeconds: 1 }, nowMs: 0, expect: 'takeover' },
    // Proves a lease first seen now is not taken, however old its renewTime looks (clock skew).
    { what: 'someone else, first seen now', lease: held('other', -3_600_000), nowMs: 100_000, expect: 'follow' },
    // Proves a lease unchanged for a full duration by our clock is taken over.
    {
      what: 'someone else, unchanged for 15 s',
      lease: held('other', 0),
      nowMs: 16_000,
      observed: { fingerprint: 'other|0|15', atMs: 1_000 },
      expect: 'takeover',
    },
    // Proves a renewal (new fingerprint) restarts the expiry clock.
    { what: 'someone else renewed', lease: held('other', 14_000), nowMs: 16_000, observed: { fingerprint: 'other|0|15', atMs: 1_000 }, expect: 'follow' },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const { decision } = decideLease(c.lease, 'me', c.nowMs, c.observed, 15);
      assert.equal(decision.kind, c.expect);
    });
  }

  test('takeover counts a transition and stamps acquire and renew times; release clears the holder', () => {
    const now = new Date(20_000);
    const taken = nextLeaseSpec({ holderIdentity: 'other', leaseTransitions: 2 }, { kind: 'takeover', previousHolder: 'other' }, 'me', now, 15);
    assert.deepEqual(taken, { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 3 });
    const renewed = nextLeaseSpec(taken, { kind: 'renew' }, 'me', new Date(22_000), 15);
    assert.equal(renewed.acquireTime, now);
    assert.equal(renewed.leaseTransitions, 3);
    assert.deepEqual(releasedLeaseSpec(renewed, new Date(23_000)).holderIdentity, '');
  });
});

describe('leader: LeaderElector against an in-memory Lease (fake timers)', () => {
  /** One Lease with optimistic concurrency, shared by the replicas; a replica can be cut off. */
  function leaseStore(): { store: { spec?: LeaseSpecLike; rv: number }; clientFor: (cutOff: () => boolean) => LeaseClient } {
    const store: { spec?: LeaseSpecLike; rv: number } = { rv: 0 };
    const conflict = (): Error => Object.assign(new Error('conflict'), { code: 409 });
    const clientFor = (cutOff: () => boolean): LeaseClient => ({
      async read() {
        if (cutOff()) throw new Error('unreachable');
        return store.spec === undefined ? undefined : { spec: structuredClone(store.spec), resourceVersion: String(store.rv) };
      },
      async create(spec) {
        if (cutOff()) throw new Error('unreachable');
        if (store.spec !== undefined) throw conflict();
        store.spec = structuredClone(spec);
        store.rv += 1;
      },
      async replace(spec, resourceVersion) {
        if (cutOff()) throw new Error('unreachable');
        if (resourceVersion !== String(store.rv)) throw conflict();
        store.spec = structuredClone(spec);
        store.rv += 1;
      },
    });
    return { store, clientFor };
  }

  function replica(clientFor: (cutOff: () => boolean) => LeaseClient, identity: string, events: string[]): { elector: LeaderElector; cut: () => void } {
    let cut = false;
    const elector = new LeaderElector(
      clientFor(() => cut),
      {
        identity,
        leaseDurationSeconds: 15,
        renewIntervalMs: 2_000,
        renewDeadlineMs: 10_000,
        logger: silent,
        now: () => Date.now(),
        onStartedLeading: () => void events.push(`${identity} started`),
        onStoppedLeading: () => void events.push(`${identity} stopped`),
      },
    );
    return { elector, cut: () => (cut = true) };
  }

  type Timers = { tick(ms: number): void };
  async function advance(timers: Timers, ms: number): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += 500) {
      timers.tick(500);
      await settle();
    }
  }

  test('two replicas: one leads; on release the other takes over at its next round', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { store, clientFor } = leaseStore();
    const events: string[] = [];
    const a = replica(clientFor, 'a', events);
    const b = replica(clientFor, 'b', events);
    a.elector.start();
    await advance(t.mock.timers, 500);
    b.elector.start();
    await advance(t.mock.timers, 6_000);
    assert.deepEqual([a.elector.isLeader, b.elector.isLeader], [true, false]);
    assert.equal(store.spec?.holderIdentity, 'a');
    await a.elector.stop();
    assert.equal(store.spec?.holderIdentity, '');
    await advance(t.mock.timers, 2_000);
    assert.deepEqual([a.elector.isLeader, b.elector.isLeader], [false, true]);
    assert.deepEqual(events, ['a started', 'a stopped', 'b started']);
    await b.elector.stop();
  });

  test('a leader cut off from the API steps down at the renew deadline, before the follower may take over', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { store, clientFor } = leaseStore();
    const events: string[] = [];
    const a = replica(clientFor, 'a', events);
    const b = replica(clientFor, 'b', events);
    a.elector.start();
    await advance(t.mock.timers, 500);
    b.elector.start();
    await advance(t.mock.timers, 2_000);
    a.cut();
    const cutAt = Date.now();
    // a last renewed at 2 s: past its 10 s renew deadline it steps down; b, which first saw
    // that renewal at 2.5 s, may take over only 15 s after that.
    await advance(t.mock.timers, 12_000);
    assert.equal(a.elector.isLeader, false);
    assert.equal(b.elector.isLeader, false);
    assert.deepEqual(events, ['a started', 'a stopped']);
    await advance(t.mock.timers, 6_000);
    assert.equal(b.elector.isLeader, true);
    assert.equal(store.spec?.holderIdentity, 'b');
    assert.equal(store.spec?.leaseTransitions, 1);
    assert.ok(Date.now() - cutAt >= 15_000);
    await a.elector.stop();
    await b.elector.stop();
  });
});

describe('rbac', () => {
  const desired = chainReaderRoleBinding('shop');
  const cases: Array<{ what: string; existing: Parameters<typeof roleBindingAction>[0]; expect: string; desired?: ReturnType<typeof chainReaderRoleBinding> }> =
    [
      // Proves a missing binding is created.
      { what: 'missing', existing: undefined, expect: 'create' },
      // Proves an identical binding is left alone (no write per event).
      { what: 'identical', existing: chainReaderRoleBinding('shop'), expect: 'none' },
      // Proves edited subjects are put back.
      { what: 'subjects edited', existing: { ...desired, subjects: [{ kind: 'Group', name: 'system:authenticated' }] }, expect: 'update' },
      // Proves a binding made before the role's uid was known gets its owner (removed with the role).
      { what: 'owner missing', existing: chainReaderRoleBinding('shop'), expect: 'update', desired: chainReaderRoleBinding('shop', 'uid-1') },
      // Proves a binding owned by a deleted and re-created role is moved to the new one.
      { what: 'owner is an old role', existing: chainReaderRoleBinding('shop', 'uid-0'), expect: 'update', desired: chainReaderRoleBinding('shop', 'uid-1') },
      // Proves an owned binding is left alone when the owner is the same.
      { what: 'same owner', existing: chainReaderRoleBinding('shop', 'uid-1'), expect: 'none', desired: chainReaderRoleBinding('shop', 'uid-1') },
      // Proves a binding to another role is recreated (roleRef is immutable).
      {
        what: 'other roleRef',
        existing: { ...desired, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' } },
        expect: 'recreate',
      },
    ];
  for (const c of cases) test(`roleBindingAction: ${c.what}`, () => assert.equal(roleBindingAction(c.existing, c.desired ?? desired), c.expect));

  test('the binding grants the chain reader to every ServiceAccount of its own namespace only', () => {
    assert.equal(desired.metadata?.namespace, 'shop');
    assert.deepEqual(desired.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CHAIN_READER });
    assert.deepEqual(desired.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts:shop' }]);
  });

  test('the chain reader can only read FallbackChains', () => {
    assert.deepEqual(chainReaderClusterRole().rules, [{ apiGroups: ['llmfallback.io'], resources: ['fallbackchains'], verbs: ['get', 'list', 'watch'] }]);
  });
});

describe('KeyedQueue', () => {
  test('a key added while it is being handled runs once more afterwards, not in parallel', async () => {
    const calls: string[] = [];
    let release: () => void = () => undefined;
    let running = 0;
    let maxRunning = 0;
    const queue = new KeyedQueue(
      async (key) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        calls.push(key);
        if (calls.length === 1) await new Promise<void>((resolve) => (release = resolve));
        running -= 1;
      },
      { logger: silent, what: 'test' },
    );
    queue.add('a');
    queue.add('a');
    queue.add('a');
    await settle();
    release();
    await settle();
    assert.deepEqual(calls, ['a', 'a']);
    assert.equal(maxRunning, 1);
    assert.equal(queue.idle, true);
    await queue.stop();
  });

  test('a failing key is retried with growing delays until it succeeds', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const at: number[] = [];
    const queue = new KeyedQueue(
      async () => {
        at.push(Date.now());
        if (at.length < 3) throw new Error('api down');
      },
      { logger: silent, what: 'test', retryBaseMs: 100, retryMaxMs: 1_000 },
    );
    queue.add('k');
    await settle();
    for (let elapsed = 0; elapsed < 1_000; elapsed += 50) {
      t.mock.timers.tick(50);
      await settle();
    }
    assert.deepEqual(at, [0, 100, 300]); // 100 ms, then 200 ms later, then success: no more tries
    assert.equal(queue.idle, true);
    await queue.stop();
  });

  test('no more than `concurrency` keys are handled at once', async () => {
    let running = 0;
    let maxRunning = 0;
    const releases: Array<() => void> = [];
    const queue = new KeyedQueue(
      async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running -= 1;
      },
      { logger: silent, what: 'test', concurrency: 2 },
    );
    for (const key of ['a', 'b', 'c', 'd']) queue.add(key);
    await settle();
    assert.equal(running, 2);
    while (releases.length > 0) {
      releases.shift()?.();
      await settle();
    }
    assert.equal(maxRunning, 2);
    assert.equal(queue.idle, true);
    await queue.stop();
  });
});

describe('NamespaceLabelCache', () => {
  test('one lookup per namespace per TTL; concurrent lookups share it; failures are not cached', async () => {
    let now = 0;
    const fetched: string[] = [];
    let fail = false;
    const cache = new NamespaceLabelCache(
      async (ns) => {
        fetched.push(ns);
        if (fail) throw new Error('api down');
        return ns === 'gone' ? undefined : { team: ns };
      },
      30_000,
      () => now,
    );
    const [a, b] = await Promise.all([cache.get('shop'), cache.get('shop')]);
    assert.deepEqual([a, b], [{ team: 'shop' }, { team: 'shop' }]);
    now = 29_999;
    await cache.get('shop');
    assert.deepEqual(fetched, ['shop']);
    now = 30_000;
    await cache.get('shop');
    assert.deepEqual(fetched, ['shop', 'shop']);
    assert.equal(await cache.get('gone'), undefined);
    fail = true;
    await assert.rejects(cache.get('new'), /api down/);
    fail = false;
    assert.deepEqual(await cache.get('new'), { team: 'new' });
    assert.deepEqual(fetched, ['shop', 'shop', 'gone', 'new', 'new']);
  });
});

describe('options: controller and inject', () => {
  const tls = ['--tls-cert-file', '/c', '--tls-key-file', '/k'];
  const cases: Array<{ what: string; argv: string[]; env?: NodeJS.ProcessEnv; expect: Record<string, unknown> | RegExp }> = [
    // Proves the defaults: listen on all interfaces (the API server must reach it), 9443 / 8081, 15 s lease, 2 s renew.
    {
      what: 'defaults',
      argv: tls,
      expect: {
        host: '0.0.0.0',
        port: 9443,
        healthPort: 8081,
        leaseName: 'llm-fallback-controller',
        leaseDurationSeconds: 15,
        renewIntervalMs: 2000,
        namespaceCacheMs: 30000,
        tlsReloadIntervalMs: 10000,
      },
    },
    // Proves every flag has an LLM_FALLBACK_ environment twin.
    {
      what: 'environment',
      argv: [],
      env: { LLM_FALLBACK_TLS_CERT_FILE: '/c', LLM_FALLBACK_TLS_KEY_FILE: '/k', LLM_FALLBACK_SIDECAR_DEFAULTS: '/d.yaml', LLM_FALLBACK_PORT: '8443' },
      expect: { tlsCertFile: '/c', tlsKeyFile: '/k', sidecarDefaultsFile: '/d.yaml', port: 8443 },
    },
    // Proves the webhook cannot start without a certificate.
    { what: 'no TLS files', argv: [], expect: /--tls-cert-file and --tls-key-file/ },
    // Proves a renew interval that would let the lease lapse is refused.
    { what: 'renew too slow', argv: [...tls, '--lease-duration-seconds', '4', '--renew-interval-ms', '3000'], expect: /renew-interval-ms/ },
    // Proves a typo in a flag is a usage error, not a crash.
    { what: 'unknown flag', argv: [...tls, '--leader-elect'], expect: /leader-elect/ },
  ];
  for (const c of cases) {
    test(`parseControllerOptions: ${c.what}`, () => {
      if (c.expect instanceof RegExp) {
        const expected = c.expect;
        assert.throws(
          () => parseControllerOptions(c.argv, c.env ?? {}),
          (error: unknown) => error instanceof UsageError && expected.test(error.message),
        );
        return;
      }
      const options = parseControllerOptions(c.argv, c.env ?? {});
      for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(options[key as keyof typeof options], value, key);
    });
  }

  test('parseInjectOptions: -f is required, - means stdin', () => {
    assert.equal(parseInjectOptions(['-f', '-'], {}).filename, '-');
    assert.equal(parseInjectOptions(['--filename', 'x.yaml', '--sidecar-defaults', 'd.yaml'], {}).sidecarDefaultsFile, 'd.yaml');
    assert.throws(() => parseInjectOptions([], {}), UsageError);
  });
});

describe('webhook transport (real TLS)', () => {
  let certs: TestCerts;
  let server: RunningWebhookServer;
  const reviews: unknown[] = [];

  before(async () => {
    certs = await makeTestCerts();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      reloadIntervalMs: 0,
      logger: silent,
      review: async (body) => {
        reviews.push(body);
        return { status: 200, body: { echoed: body } };
      },
    });
  });
  after(async () => {
    await server.close();
    await certs.remove();
  });

  function request(method: string, path: string, body?: string): Promise<{ status: number; body: string; peerCert: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.port, method, path, ca: certs.caCert, agent: false }, (res) => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? '';
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, peerCert: peer }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const cases: Array<{ what: string; method: string; path: string; body?: string; status: number }> = [
    // Proves a review POSTed to /mutate-pods reaches the handler and its answer comes back.
    { what: 'POST review', method: 'POST', path: MUTATE_PATH, body: '{"kind":"AdmissionReview"}', status: 200 },
    // Proves other paths are 404 (a misconfigured clientConfig.path shows up clearly).
    { what: 'wrong path', method: 'POST', path: '/mutate', body: '{}', status: 404 },
    // Proves only POST is accepted.
    { what: 'GET', method: 'GET', path: MUTATE_PATH, status: 405 },
    // Proves a body that is not JSON is refused without calling the handler.
    { what: 'not JSON', method: 'POST', path: MUTATE_PATH, body: 'nope', status: 400 },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const before = reviews.length;
      const reply = await request(c.method, c.path, c.body);
      assert.equal(reply.status, c.status, reply.body);
      assert.equal(reviews.length - before, c.status === 200 ? 1 : 0);
      if (c.status === 200) assert.deepEqual(JSON.parse(reply.body), { echoed: JSON.parse(c.body ?? 'null') });
    });
  }

  test('a rotated certificate is served to new connections after reload, without a restart', async () => {
    const before = await request('POST', MUTATE_PATH, '{}');
    assert.equal(await server.reloadCertificate(), false, 'files unchanged: nothing to reload');
    const rotated = await certs.rotate();
    assert.equal(await server.reloadCertificate(), true);
    const afterRotation = await request('POST', MUTATE_PATH, '{}');
    assert.notEqual(afterRotation.peerCert, before.peerCert);
    assert.equal(afterRotation.peerCert, new X509Certificate(rotated).fingerprint256);
  });

  test('health port: /healthz always, /readyz follows readiness', async () => {
    let ready = false;
    const health = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => ready, details: () => ({ leader: true }) });
    try {
      const get = (path: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          http
            .get(`${health.url}${path}`, (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            })
            .on('error', reject);
        });
      assert.equal((await get('/healthz')).status, 200);
      assert.equal((await get('/readyz')).status, 503);
      ready = true;
      const readyz = await get('/readyz');
      assert.equal(readyz.status, 200);
      assert.deepEqual(JSON.parse(readyz.body), { status: 'ready', leader: true });
    } finally {
      await health.close();
    }
  });
});
