// Who may use the proxy's ports (issue 12, finding 10). A web page must not drive the API or
// read the admin port: DNS rebinding (a page's own name re-pointed at 127.0.0.1) is refused
// by checking Host on every request from loopback; simple cross-site requests (Origin,
// Sec-Fetch-Site, bodies that are not application/json) are refused in the caller's error
// shape. In a pod the admin port listens on the pod IP for the kubelet and Prometheus:
// probes and /metrics answer any peer, /config only loopback peers. The "pod network" peer
// here is this machine's own non-loopback address used as the source of a connection to
// 127.0.0.1, so no traffic leaves loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

let up: FaultUpstream;
let proxy: ProxyHarness;

const CHAT = JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'hi' }] });
const MESSAGES = JSON.stringify({ model: 'local', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

before(async () => {
  up = await startFaultUpstream();
  proxy = await startProxy({
    config: chainYaml({ name: 'local', baseURL: up.url, steps: [{ model: 'fault:ok#local' }] }),
    // As the injected sidecar runs: the admin port on every address, for the kubelet and Prometheus.
    extraArgs: ['--admin-host', '0.0.0.0', '--allowed-hosts', 'llm-proxy.internal,Other-Name'],
  });
});

after(async () => {
  await up?.close();
  await proxy?.close();
});

interface Answer {
  status: number;
  body: string;
  json: Record<string, unknown> | undefined;
}

function send(base: string, o: { method?: string; path: string; headers?: Record<string, string>; body?: string; localAddress?: string }): Promise<Answer> {
  const url = new URL(o.path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: url.port, path: url.pathname, method: o.method ?? 'GET', headers: o.headers ?? {}, localAddress: o.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const api = (o: Parameters<typeof send>[1]): Promise<Answer> => send(proxy.apiUrl, o);
const admin = (o: Parameters<typeof send>[1]): Promise<Answer> => send(proxy.adminUrl, o);
const chat = (headers: Record<string, string>, body = CHAT): Promise<Answer> => api({ method: 'POST', path: '/v1/chat/completions', headers, body });
const messages = (headers: Record<string, string>, body = MESSAGES): Promise<Answer> => api({ method: 'POST', path: '/v1/messages', headers, body });
const JSON_TYPE = { 'content-type': 'application/json' };

function openAICode(a: Answer): unknown {
  return (a.json?.['error'] as Record<string, unknown> | undefined)?.['code'];
}

/** Anthropic's shape: {type: "error", error: {type, message}}, the message saying why. */
function assertAnthropicError(a: Answer, status: number, says: string): void {
  assert.equal(a.status, status, a.body);
  assert.equal(a.json?.['type'], 'error', a.body);
  const error = a.json?.['error'] as Record<string, unknown>;
  assert.equal(error['type'], status === 415 ? 'invalid_request_error' : 'permission_error', a.body);
  assert.ok(String(error['message']).includes(says), a.body);
}

describe('DNS rebinding: requests from loopback must name the proxy by an address no page controls', () => {
  const port = (): string => new URL(proxy.apiUrl).port;
  test("localhost, IP literals, the host's own name and --allowed-hosts names are served; look-alikes are not", async () => {
    for (const host of ['localhost', '127.0.0.1', '[::1]', 'LOCALHOST', '10.1.2.3', hostname(), 'llm-proxy.internal', 'other-name']) {
      const a = await chat({ ...JSON_TYPE, host: `${host}:${port()}` });
      assert.equal(a.status, 200, `${host}: ${a.body}`);
    }
    for (const host of ['localhost.', 'xlocalhost', 'llm-proxy.internal.evil.example']) {
      assert.equal((await chat({ ...JSON_TYPE, host: `${host}:${port()}` })).status, 403, host);
    }
  });
  for (const host of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', 'llm-proxy.internal.evil.example']) {
    test(`Host ${host}: 403 host_not_allowed, in the caller's shape`, async () => {
      const before = up.requests.length;
      const openai = await chat({ ...JSON_TYPE, host: `${host}:${port()}` });
      assert.equal(openai.status, 403, openai.body);
      assert.equal(openAICode(openai), 'host_not_allowed');
      assertAnthropicError(await messages({ ...JSON_TYPE, host: `${host}:${port()}` }), 403, 'Host');
      assert.equal(up.requests.length, before, 'no upstream call');
    });
  }
  test('the admin port checks Host too (a page must not read /config or /metrics)', async () => {
    for (const path of ['/config', '/metrics', '/healthz']) {
      const a = await admin({ path, headers: { host: 'evil.example:4001' } });
      assert.equal(a.status, 403, `${path}: ${a.body}`);
      assert.equal(openAICode(a), 'host_not_allowed');
    }
    assert.equal((await admin({ path: '/config', headers: { host: 'localhost:4001' } })).status, 200);
  });
});

describe('cross-site browser requests are refused', () => {
  const cases: Array<{ name: string; headers: Record<string, string> }> = [
    { name: 'Origin of another site', headers: { origin: 'https://evil.example' } },
    { name: 'Origin null (sandboxed page, file://)', headers: { origin: 'null' } },
    { name: 'Sec-Fetch-Site: cross-site', headers: { 'sec-fetch-site': 'cross-site' } },
    { name: 'Sec-Fetch-Site: same-site (another port of localhost)', headers: { 'sec-fetch-site': 'same-site' } },
  ];
  for (const c of cases) {
    test(`${c.name}: 403 cross_site_request on both ports`, async () => {
      const openai = await chat({ ...JSON_TYPE, ...c.headers });
      assert.equal(openai.status, 403, openai.body);
      assert.equal(openAICode(openai), 'cross_site_request');
      assertAnthropicError(await messages({ ...JSON_TYPE, ...c.headers }), 403, 'browser requests');
      const config = await admin({ path: '/config', headers: c.headers });
      assert.equal(config.status, 403, config.body);
    });
  }
  test('Sec-Fetch-Site: none (typed into the address bar) and SDK requests without these headers are served; cross-site is not', async () => {
    assert.equal((await chat({ ...JSON_TYPE, 'sec-fetch-site': 'none' })).status, 200);
    assert.equal((await chat({ ...JSON_TYPE, 'sec-fetch-site': 'same-origin' })).status, 200);
    assert.equal((await chat(JSON_TYPE)).status, 200);
    assert.equal((await chat({ ...JSON_TYPE, 'sec-fetch-site': 'cross-site' })).status, 403);
  });
});

describe('chain routes take application/json only (a page sends text/plain or a form without a preflight)', () => {
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
    test(`${type ?? 'no Content-Type'}: 415 unsupported_media_type, in the caller's shape`, async () => {
      const before = up.requests.length;
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const openai = await chat(headers);
      assert.equal(openai.status, 415, openai.body);
      assert.equal(openAICode(openai), 'unsupported_media_type');
      assertAnthropicError(await messages(headers), 415, 'Content-Type');
      assert.equal(up.requests.length, before, 'no upstream call');
    });
  }
  test('application/json with parameters, in any case, is served; text/plain is not', async () => {
    assert.equal((await chat({ 'content-type': 'Application/JSON; charset=utf-8' })).status, 200);
    assert.equal((await chat({ 'content-type': 'text/plain' })).status, 415);
  });
});

describe('the admin port in a pod: probes and /metrics for the pod network, /config for loopback only', () => {
  const podAddress = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;

  test('a peer on the pod network (the kubelet, Prometheus, a neighbour pod)', async () => {
    assert.ok(podAddress, 'this test needs a non-loopback IPv4 address on the machine to act as the peer');
    const fromPod = (path: string): Promise<Answer> => admin({ path, localAddress: podAddress, headers: { host: `${podAddress}:4001` } });
    assert.equal((await fromPod('/healthz')).status, 200);
    assert.equal((await fromPod('/readyz')).status, 200);
    assert.equal((await fromPod('/metrics')).status, 200);
    const config = await fromPod('/config');
    assert.equal(config.status, 403, config.body);
    assert.equal(openAICode(config), 'loopback_only');
    assert.ok(!config.body.includes('fault:ok'), 'nothing of the configuration is shown');
  });

  test('a loopback peer (kubectl port-forward, kubectl exec) reads /config; a pod-network peer does not', async () => {
    const config = await admin({ path: '/config' });
    assert.equal(config.status, 200, config.body);
    assert.ok(Array.isArray(config.json?.['chains']));
    assert.ok(podAddress, 'this test needs a non-loopback IPv4 address on the machine to act as the peer');
    assert.equal((await admin({ path: '/config', localAddress: podAddress })).status, 403);
  });
});
