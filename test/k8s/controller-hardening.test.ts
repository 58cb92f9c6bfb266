// Finding 11 of issue 12, the parts that need no cluster: a hung namespace-label lookup is
// bounded and never cached (each pod is admitted within the bound, with a warning, an Event
// and a metric), webhook bodies larger than the API server can send are refused before they
// are parsed (or even read), injection skips carry constant reasons into Events and metrics,
// and chains naming local credentials get Ready=False/CredentialsRefused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http from 'node:http';
import type { CoreV1Event } from '@kubernetes/client-node';
import { KUBERNETES_POLICY } from '../../src/chain/credential-rules.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ControllerMetrics } from '../../src/k8s/controller-metrics.ts';
import { eventBody, EventRecorder, WEBHOOK_EVENT } from '../../src/k8s/events.ts';
import { INJECT_SKIP, injectPod } from '../../src/k8s/inject.ts';
import { NamespaceLabelCache, NamespaceLookupTimeout } from '../../src/k8s/namespace-labels.ts';
import { reviewPod } from '../../src/k8s/pod-review.ts';
import { DEFAULT_SIDECAR } from '../../src/k8s/sidecar-settings.ts';
import { checkChain } from '../../src/k8s/status-controller.ts';
import { desiredStatus } from '../../src/k8s/status.ts';
import {
  MAX_BODY_BYTES,
  MUTATE_PATH,
  startHealthServer,
  startWebhookServer,
  type BodyBytesHeld,
  type RunningWebhookServer,
  type WebhookServerOptions,
} from '../../src/k8s/webhook-server.ts';
import { makeTestCerts, type TestCerts } from '../support/test-certs.ts';

const silent = createLogger('silent');
type Json = Record<string, unknown>;

function review(pod: Json, extra: Json = {}): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: pod,
      ...extra,
    },
  };
}

const plainPod = {
  metadata: { generateName: 'web-', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9', uid: 'rs-uid', controller: true }] },
  spec: { containers: [{ name: 'app', image: 'app:1' }] },
};

function harness(fetch: (ns: string) => Promise<Record<string, string> | undefined>) {
  const events: CoreV1Event[] = [];
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const recorder = new EventRecorder(
    async (_ns, body) => void events.push(body),
    silent,
    'controller-a',
    (reason, result) => metrics.events.inc({ reason, result }),
  );
  const fetched: string[] = [];
  const cache = new NamespaceLabelCache(
    async (ns) => {
      fetched.push(ns);
      return fetch(ns);
    },
    30_000,
    Date.now,
    200,
  );
  const run = (body: unknown) => reviewPod(body, { settings: DEFAULT_SIDECAR, namespaceLabels: cache, logger: silent, metrics, events: recorder });
  return { events, metrics, fetched, run };
}

async function metricValue(metrics: ControllerMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('namespace-label lookup: bounded, never cached when it fails', () => {
  test('a lookup that never answers is given up after the bound, and the next get asks again', { timeout: 5000 }, async () => {
    let calls = 0;
    const cache = new NamespaceLabelCache(
      () => {
        calls++;
        return new Promise(() => {}); // the API server never answers
      },
      30_000,
      Date.now,
      100,
    );
    await assert.rejects(cache.get('shop'), NamespaceLookupTimeout);
    await assert.rejects(cache.get('shop'), NamespaceLookupTimeout);
    assert.equal(calls, 2, 'the hung lookup was not cached');
  });

  test('pods of a namespace whose lookup hangs are each admitted within the bound, with a warning, an Event and a metric', { timeout: 10_000 }, async () => {
    const h = harness(() => new Promise(() => {}));
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const answer = await h.run(review(plainPod));
      assert.ok(Date.now() - started < 2000, 'admitted within the bound, not the API server timeout');
      assert.equal(answer.status, 200);
      const response = (answer.body as { response: Json }).response;
      assert.equal(response['allowed'], true);
      assert.match(String((response['warnings'] as string[])[0]), /could not read the labels of namespace shop .*took longer than 200 ms/);
    }
    assert.deepEqual(h.fetched, ['shop', 'shop'], 'each pod asked the API again');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      h.events.map((e) => [e.reason, e.type, e.involvedObject.kind, e.involvedObject.name]),
      [
        [WEBHOOK_EVENT.namespaceLookupFailed, 'Warning', 'ReplicaSet', 'web-7d9'],
        [WEBHOOK_EVENT.namespaceLookupFailed, 'Warning', 'ReplicaSet', 'web-7d9'],
      ],
    );
    assert.equal(await metricValue(h.metrics, 'llm_fallback_controller_namespace_lookup_failures_total'), 2);
  });

  test('a dry run gets the warning but writes no Event', async () => {
    const h = harness(() => Promise.reject(new Error('api down')));
    const answer = await h.run(review(plainPod, { dryRun: true }));
    assert.match(JSON.stringify(answer.body), /could not read the labels/);
    assert.deepEqual(h.events, []);
  });
});

describe('injection skips: constant reasons in Events and metrics', () => {
  test('a pod that asks for the sidecar on hostNetwork gets an Event with reason HostNetwork and is counted', async () => {
    const h = harness(async () => ({}));
    const pod = {
      metadata: { name: 'db', annotations: { 'llmfallback.io/inject': 'true' } },
      spec: { hostNetwork: true, containers: [{ name: 'app', image: 'app:1' }] },
    };
    const answer = await h.run(review(pod));
    assert.match(JSON.stringify(answer.body), /sidecar not injected: hostNetwork pods/);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      h.events.map((e) => [e.reason, e.involvedObject.kind, e.involvedObject.name, e.source?.component]),
      [[INJECT_SKIP.hostNetwork, 'Pod', 'db', 'llm-fallback-controller']],
    );
    assert.equal(await metricValue(h.metrics, 'llm_fallback_controller_injection_skips_total', { reason: 'HostNetwork' }), 1);
    assert.equal(await metricValue(h.metrics, 'llm_fallback_controller_admissions_total', { outcome: 'skipped' }), 1);
    const ok = { metadata: { name: 'web', annotations: { 'llmfallback.io/inject': 'true' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
    await h.run(review(ok));
    assert.equal(await metricValue(h.metrics, 'llm_fallback_controller_injections_total'), 1);
    assert.match(await h.metrics.registry.metrics(), /^llm_fallback_controller_webhook_duration_seconds_count 2$/m);
  });

  test('an Event names the pod by generateName when it has no owner, and long messages are cut', () => {
    const body = eventBody(
      { namespace: 'shop', pod: { metadata: { generateName: 'job-' } }, type: 'Warning', reason: INJECT_SKIP.portTaken, message: 'x'.repeat(5000) },
      'me',
      new Date(0),
    );
    assert.deepEqual(body.involvedObject, { apiVersion: 'v1', kind: 'Pod', name: 'job-', namespace: 'shop' });
    assert.equal(body.message?.length, 1024);
    assert.equal(body.metadata.namespace, 'shop');
    assert.equal(body.metadata.generateName, 'job.llm-fallback.', 'a valid name prefix even from a generateName ending in "-"');
  });
});

describe('sidecar settings: allowLocalCredentials reaches the injected sidecar only when set', () => {
  const asked = { metadata: { name: 'web', annotations: { 'llmfallback.io/inject': 'true' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
  const sidecarEnv = (allow: boolean): string[] => {
    const pod = injectPod(asked, { ...DEFAULT_SIDECAR, allowLocalCredentials: allow }).pod;
    return (pod.spec?.initContainers?.[0]?.env ?? []).map((e) => `${e.name}=${e.value ?? ''}`);
  };
  test('off by default: no flag; on: LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS=true', () => {
    assert.equal(DEFAULT_SIDECAR.allowLocalCredentials, false);
    assert.ok(!sidecarEnv(false).some((e) => e.startsWith('LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS')));
    assert.ok(sidecarEnv(true).includes('LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS=true'));
  });
});

describe('status: chains naming local credentials are not Ready', () => {
  const chain = (apiKey: Json): Json => ({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'steal', generation: 1 },
    spec: { providers: [{ name: 'p', baseURL: 'https://attacker.example/v1', apiKey }], steps: [{ provider: 'p', model: 'm' }] },
  });
  test('apiKey.file (the service-account token) and apiKey.env: Ready=False, reason CredentialsRefused', () => {
    for (const apiKey of [{ file: '/var/run/secrets/kubernetes.io/serviceaccount/token' }, { env: 'OPENAI_API_KEY' }]) {
      const object = chain(apiKey);
      const { validation, reason } = checkChain(object, KUBERNETES_POLICY);
      const ready = desiredStatus(object, validation, new Date(0), reason).conditions[0];
      assert.equal(ready?.status, 'False');
      assert.equal(ready?.reason, 'CredentialsRefused');
      assert.match(ready?.message ?? '', /local_credentials_refused: apiKey\.(file|env) is refused in Kubernetes/);
    }
  });
  test('allowed by the sidecar settings, or secretKey: Ready=True', () => {
    const allowed = checkChain(chain({ env: 'OPENAI_API_KEY' }), { kubernetes: true, allowLocalCredentials: true });
    assert.equal(allowed.validation.ok, true);
    assert.equal(checkChain(chain({ secretKey: 'openai' }), KUBERNETES_POLICY).validation.ok, true);
  });
});

describe('webhook transport: bodies the API server cannot send are refused unread', () => {
  let certs: TestCerts;
  let server: RunningWebhookServer;
  let reviews = 0;
  const rejected: string[] = [];

  before(async () => {
    certs = await makeTestCerts();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      reloadIntervalMs: 0,
      logger: silent,
      review: async () => {
        reviews++;
        return { status: 200, body: {} };
      },
      onRejected: (reason) => rejected.push(reason),
    });
  });
  after(async () => {
    await server.close();
    await certs.remove();
  });

  function post(body: Buffer, chunked: boolean): Promise<number> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = chunked ? {} : { 'content-length': String(body.length) };
      const req = https.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: MUTATE_PATH, ca: certs.caCert, agent: false, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      // The server may close before the whole body is written: only the status matters.
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.end(body);
    });
  }

  test('the limit is what the API server can send (3 MiB) plus slack, far below the old 16 MiB', () => {
    assert.ok(MAX_BODY_BYTES >= 3 * 1024 * 1024 && MAX_BODY_BYTES <= 4 * 1024 * 1024);
  });

  test('a declared length over the limit: 413 without reading the body', async () => {
    assert.equal(await post(Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), false), 413);
    assert.equal(reviews, 0);
  });

  test('a chunked body that grows past the limit: 413, never parsed', async () => {
    assert.equal(await post(Buffer.alloc(6 * 1024 * 1024, 0x20), true), 413);
    assert.equal(reviews, 0);
    assert.deepEqual(rejected, ['too_large', 'too_large']);
  });

  test('a review just under the limit still goes through', async () => {
    const padding = ' '.repeat(3 * 1024 * 1024);
    assert.equal(await post(Buffer.from(`{"kind":"AdmissionReview"}${padding}`), false), 200);
    assert.equal(reviews, 1);
  });

  test('bodies held at once share one budget: beyond it a request gets 503 at once; the budget comes back', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const busy: string[] = [];
    let entered: () => void = () => {};
    const inReview = new Promise<void>((resolve) => (entered = resolve));
    const small = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      reloadIntervalMs: 0,
      logger: silent,
      maxBufferedBytes: 1024 * 1024,
      // The shared budget alone (the reserve for small bodies is tested below).
      smallBodyReserveBytes: 0,
      review: async () => {
        entered();
        await held;
        return { status: 200, body: {} };
      },
      onRejected: (reason) => busy.push(reason),
    });
    const send = (bytes: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: small.port, method: 'POST', path: MUTATE_PATH, ca: certs.caCert, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
        req.end(Buffer.from(`{}${' '.repeat(bytes - 2)}`));
      });
    try {
      const first = send(700 * 1024);
      await inReview; // its 700 KiB are held until the review answers
      assert.equal(await send(700 * 1024), 503);
      assert.deepEqual(busy, ['busy']);
      release();
      assert.equal(await first, 200);
      assert.equal(await send(700 * 1024), 200, 'the first body was released');
    } finally {
      release();
      await small.close();
    }
  });

  test('the health port serves the controller metrics', async () => {
    const metrics = new ControllerMetrics({ defaultMetrics: false });
    metrics.statusWrites.inc({ ready: 'False' });
    const health = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => true,
      metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
    });
    try {
      const text = await new Promise<string>((resolve, reject) => {
        http
          .get(`${health.url}/metrics`, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
      assert.match(text, /llm_fallback_controller_status_writes_total\{ready="False"\} 1/);
      assert.match(text, /# TYPE llm_fallback_controller_webhook_duration_seconds histogram/);
      assert.match(text, /# TYPE llm_fallback_controller_injection_skips_total counter/);
      assert.match(text, /# TYPE llm_fallback_controller_webhook_body_bytes gauge/);
    } finally {
      await health.close();
    }
  });
});

// The review's F4: four slow bodies of the largest size held the whole shared budget for the
// 30 s request timeout, so every review meanwhile got 503 (and, under failurePolicy: Ignore,
// pods started without the sidecar). Bodies that stall are now given up, and large bodies
// leave a reserve that ordinary reviews always get. Real TLS sockets dribble the bytes; the
// server's own notices (onBodyBytesHeld, onRejected) say when it has read them.
describe('webhook transport: slow bodies cannot hold the budget', { timeout: 20_000 }, () => {
  let certs: TestCerts;
  before(async () => {
    certs = await makeTestCerts();
  });
  after(async () => {
    await certs.remove();
  });

  /** A webhook server whose budget changes and rejections can be awaited. */
  async function server(options: Partial<WebhookServerOptions>) {
    const rejected: string[] = [];
    let held: BodyBytesHeld = { small: 0, large: 0 };
    const waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
    const notice = (): void => {
      for (const w of [...waiters])
        if (w.done()) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
    };
    const running = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      reloadIntervalMs: 0,
      logger: silent,
      review: async () => ({ status: 200, body: { kind: 'AdmissionReview' } }),
      onRejected: (reason) => {
        rejected.push(reason);
        notice();
      },
      onBodyBytesHeld: (now) => {
        held = now;
        notice();
      },
      ...options,
    });
    const until = (done: () => boolean): Promise<void> => (done() ? Promise.resolve() : new Promise((resolve) => waiters.push({ done, resolve })));
    return { running, rejected, held: () => held, until };
  }

  /** A POST that declares `declared` bytes; `send` writes pieces of the body; the status once the server answers. */
  function open(port: number, declared: number) {
    const req = https.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: MUTATE_PATH,
      ca: certs.caCert,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(declared) },
    });
    req.on('error', () => {}); // the server closes what it gave up; only the status matters
    const answer = new Promise<{ status: number; connection: string | undefined }>((resolve) => {
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, connection: res.headers['connection'] });
      });
    });
    return { req, answer, send: (bytes: number) => new Promise<void>((resolve) => req.write(Buffer.alloc(bytes, 0x20), () => resolve())) };
  }

  function review(bytes: number): Buffer {
    const head = '{"kind":"AdmissionReview","request":{"uid":"u-1"}}';
    return Buffer.from(head + ' '.repeat(bytes - head.length));
  }

  test('a body that stops sending is given up: 408, the connection closed, its bytes released at once', async () => {
    const s = await server({ bodyIdleTimeoutMs: 200 });
    try {
      const slow = open(s.running.port, 100_000);
      await slow.send(40_000);
      await s.until(() => s.held().small === 40_000);
      const { status, connection } = await slow.answer;
      assert.equal(status, 408);
      assert.equal(connection, 'close');
      assert.deepEqual(s.rejected, ['idle']);
      assert.deepEqual(s.held(), { small: 0, large: 0 });
      slow.req.destroy();
    } finally {
      await s.running.close();
    }
  });

  test('a body that keeps sending, with gaps shorter than the idle timeout, is read whole however long it takes', async () => {
    const s = await server({ bodyIdleTimeoutMs: 500 });
    try {
      const body = review(8 * 1024);
      const flowing = open(s.running.port, body.length);
      // Eight gaps of 150 ms: longer in all than the idle timeout, each well within it.
      for (let i = 0; i < 8; i++) {
        await new Promise<void>((resolve) => flowing.req.write(body.subarray(i * 1024, (i + 1) * 1024), () => resolve()));
        if (i < 7) await new Promise((resolve) => setTimeout(resolve, 150));
      }
      flowing.req.end();
      assert.equal((await flowing.answer).status, 200);
      assert.deepEqual(s.rejected, []);
    } finally {
      await s.running.close();
    }
  });

  test('four slow bodies of the largest size cannot take the reserve: an ordinary review still gets through while they wait', async () => {
    // The defaults: a 14 MiB budget, 2 MiB of it for small bodies; idle timeout long enough not to end the slow bodies here.
    const s = await server({ bodyIdleTimeoutMs: 15_000 });
    const slow = [0, 1, 2, 3].map(() => open(s.running.port, MAX_BODY_BYTES));
    try {
      // Each sends all but its last byte and then waits: the old code held 14 MiB less 4 bytes.
      await Promise.all(slow.map((body) => body.send(MAX_BODY_BYTES - 1)));
      await s.until(() => s.held().large === 3 * (MAX_BODY_BYTES - 1) && s.rejected.includes('busy'));
      // The fourth found the large bodies' share spent: 503 at once, not a 30 s wait.
      const refused = await Promise.race(slow.map((body) => body.answer));
      assert.equal(refused.status, 503);
      assert.deepEqual(s.rejected, ['busy']);

      // Ordinary reviews (a few KiB, and one near the small limit) are answered meanwhile.
      for (const bytes of [4 * 1024, 200 * 1024]) {
        const small = open(s.running.port, bytes);
        small.req.end(review(bytes));
        assert.equal((await small.answer).status, 200, `a ${bytes}-byte review while the large bodies wait`);
      }
      assert.equal(s.held().large, 3 * (MAX_BODY_BYTES - 1), 'the three slow bodies are still held');
    } finally {
      for (const body of slow) body.req.destroy();
      await s.running.close();
    }
  });

  test('a body without a length that grows past the small size moves to the large share, and is refused if that is spent', async () => {
    const s = await server({ bodyIdleTimeoutMs: 15_000, maxBufferedBytes: 1024 * 1024, smallBodyReserveBytes: 512 * 1024 });
    try {
      const first = https.request({ host: '127.0.0.1', port: s.running.port, method: 'POST', path: MUTATE_PATH, ca: certs.caCert, agent: false });
      first.on('error', () => {});
      await new Promise<void>((resolve) => first.write(Buffer.alloc(400 * 1024, 0x20), () => resolve()));
      await s.until(() => s.held().large === 400 * 1024);
      // The large share (512 KiB) has 112 KiB left: a second chunked body is refused when it grows past 256 KiB.
      const second = https.request({ host: '127.0.0.1', port: s.running.port, method: 'POST', path: MUTATE_PATH, ca: certs.caCert, agent: false });
      second.on('error', () => {});
      const status = new Promise<number>((resolve) => second.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0))));
      second.write(Buffer.alloc(300 * 1024, 0x20));
      assert.equal(await status, 503);
      assert.deepEqual(s.rejected, ['busy']);
      assert.deepEqual(s.held(), { small: 0, large: 400 * 1024 }, 'what the refused body held was released');
      first.destroy();
      second.destroy();
    } finally {
      await s.running.close();
    }
  });
});
