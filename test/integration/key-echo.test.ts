// Keys never reach a caller or a log, whatever an upstream does with them. An upstream that
// echoes every credential it was sent (the API key and a provider.headers value, as Azure's
// `api-key`) is driven through every path — the answer, the first stream event, an error
// event mid-stream, a malformed stream event, 4xx and 5xx error bodies, its response
// headers — in every encoding an echo may use (raw, JSON \u escapes and \/, URL encoding,
// HTML entities, base64 and base64url at each offset, mixtures), from OpenAI and Anthropic
// callers, against OpenAI, Anthropic and Gemini upstreams. No piece of either secret may
// appear in the caller's status line, headers, body or trailers, in any log line (the
// proxy logs at debug level here), in /config or in /metrics. The oracle (leakOf) decodes
// independently of the proxy's Redactor.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';
import { ECHO_PATHS, HEADER_CREDENTIAL, startEchoUpstream, type EchoFormat, type EchoPath, type EchoUpstream } from '../support/echo-upstream.ts';
import { encodings, leakOf } from '../support/secret-encodings.ts';

const KEY_ENV = 'ECHO_TEST_API_KEY';
const API_KEY = 'sk-echo-9fQ2/xT7+Lm4Zr8=Vb1Kw6Hs3Jd5';
const HEADER_SECRET = 'azure-hdr-Q8v2/Nc5+Tz7Wk1=Rm4Yp9Lb6';
const URL_USER = 'svc-user-Wq4Ez8Rt2Y';
const URL_PASSWORD = 'url-pass-7Hq2Zx9Lw4Pd';
const URL_QUERY_KEY = 'url-query-key-5Tb8Nm3Kc1';
const SECRETS = [API_KEY, HEADER_SECRET];
const FORMATS: EchoFormat[] = ['openai', 'anthropic', 'gemini'];
const ENCODINGS = encodings(API_KEY).map((e, index) => ({ name: e.name, index }));

type Caller = 'openai' | 'anthropic';
interface Case {
  path: EchoPath;
  stream: boolean;
}
// Every path of ECHO_PATHS, streamed and not where both exist.
const CASES: Case[] = [
  { path: 'answer', stream: false },
  { path: 'first-event', stream: true },
  { path: 'mid-stream', stream: true },
  { path: 'malformed-event', stream: true },
  { path: '4xx', stream: false },
  { path: '4xx', stream: true },
  { path: '5xx', stream: false },
  { path: '5xx', stream: true },
  { path: 'headers', stream: false },
  { path: 'headers', stream: true },
];
assert.deepEqual([...new Set(CASES.map((c) => c.path))].sort(), [...ECHO_PATHS].sort(), 'every echo path is exercised');

let up: EchoUpstream;
let proxy: ProxyHarness;

function chainDoc(format: EchoFormat): unknown {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: `echo-${format}` },
    spec: {
      providers: [{ name: 'echo', api: format, baseURL: up.urls[format], apiKey: { env: KEY_ENV }, headers: { [HEADER_CREDENTIAL]: HEADER_SECRET } }],
      steps: [{ provider: 'echo', model: 'echo-model', retries: 0 }],
      policy: { backoff: { baseMs: 1, maxMs: 20 } },
      // Every case fails on purpose somewhere: the breaker must not start skipping the upstream.
      circuitBreaker: { failureThreshold: 1000 },
    },
  };
}

/** A chain that is never called, for /config: credentials written into the baseURL. */
function urlCredentialsDoc(): unknown {
  const url = new URL(up.urls.openai);
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'url-credentials' },
    spec: {
      providers: [{ name: 'gateway', api: 'openai', baseURL: `http://${URL_USER}:${URL_PASSWORD}@${url.host}${url.pathname}?key=${URL_QUERY_KEY}` }],
      steps: [{ provider: 'gateway', model: 'm' }],
    },
  };
}

before(async () => {
  up = await startEchoUpstream();
  const config = [...FORMATS.map(chainDoc), urlCredentialsDoc()].map((d) => JSON.stringify(d)).join('\n---\n');
  proxy = await startProxy({ config, env: { [KEY_ENV]: API_KEY } });
});

after(async () => {
  await up?.close();
  await proxy?.close();
});

interface Seen {
  status: number;
  /** Status line, headers, body and trailers exactly as the caller received them. */
  text: string;
  body: string;
}

/** One request as an SDK would send it, everything the caller receives kept as text. */
function call(caller: Caller, chain: string, instruction: string, stream: boolean): Promise<Seen> {
  const path = caller === 'openai' ? '/v1/chat/completions' : '/v1/messages';
  const messages = [{ role: 'user', content: instruction }];
  const payload = JSON.stringify(caller === 'openai' ? { model: chain, messages, stream } : { model: chain, max_tokens: 64, messages, stream });
  return new Promise((resolve, reject) => {
    const req = request(`${proxy.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const text = [`${res.statusCode} ${res.statusMessage}`, ...res.rawHeaders, body, ...res.rawTrailers].join('\n');
        resolve({ status: res.statusCode ?? 0, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function assertNoLeak(where: string, text: string): void {
  for (const secret of SECRETS) {
    const leak = leakOf(text, secret);
    assert.equal(leak, undefined, `${where}: ${leak ?? ''}\n${text.slice(0, 2000)}`);
  }
}

/** What the path must have produced, so a case that never reached its path cannot pass. */
function assertPathTaken(c: Case, format: EchoFormat, seen: Seen): void {
  if (c.path === '4xx') assert.equal(seen.status, format === 'gemini' ? 403 : 401, seen.body);
  else if (c.path === '5xx') assert.ok(seen.status >= 500, seen.body);
  else assert.equal(seen.status, 200, seen.body);
  if (c.path === 'answer' || c.path === 'first-event' || c.path === '4xx' || c.path === '5xx') assert.match(seen.body, /\[REDACTED\]/, seen.body);
  if (c.path === 'mid-stream') assert.match(seen.body, /error[\s\S]*\[REDACTED\]/, seen.body);
}

describe('a key-echoing upstream: nothing reaches the caller', () => {
  for (const caller of ['openai', 'anthropic'] as const) {
    for (const format of FORMATS) {
      for (const encoding of ENCODINGS) {
        test(`${caller} caller, ${format} upstream, echo ${encoding.name}: every path`, async () => {
          for (const c of CASES) {
            const where = `${c.path}${c.stream ? ' (stream)' : ''}`;
            const before = up.received.length;
            const seen = await call(caller, `echo-${format}`, `ECHO ${c.path} ${encoding.index}`, c.stream);
            const received = up.received.slice(before);
            assert.equal(received.length, 1, `${where}: one upstream call`);
            assert.deepEqual(received[0]?.credentials, SECRETS, `${where}: the upstream was sent both credentials`);
            assertPathTaken(c, format, seen);
            assertNoLeak(`${caller} caller, ${format} upstream, ${where}, ${encoding.name}`, seen.text);
          }
        });
      }
    }
  }
});

describe('a key-echoing upstream: nothing reaches a log line, /config or /metrics', () => {
  test('every log line (debug level) of all the requests above', async () => {
    // The malformed events were logged, and their data (which quoted both secrets) kept, redacted.
    const malformed = proxy.logs.filter((l) => l.msg === 'dropped a malformed stream event');
    assert.ok(malformed.length >= FORMATS.length * 2 * ENCODINGS.length, `${malformed.length} malformed-event lines`);
    assert.ok(malformed.every((l) => String(l['data']).includes('[REDACTED]')));
    // The harness runs the proxy with --log-level debug: every line it writes is here.
    assert.ok(proxy.logs.length > CASES.length * FORMATS.length * 2 * ENCODINGS.length);
    for (const line of proxy.logs) assertNoLeak(`log line "${line.msg}"`, JSON.stringify(line));
  });

  test('/config and /metrics: no key, no header value, no URL credentials', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/config`)).text();
    assertNoLeak('/config', text);
    for (const credential of [URL_USER, URL_PASSWORD, URL_QUERY_KEY]) assert.ok(!text.includes(credential), `/config shows ${credential}`);
    const config = JSON.parse(text) as { chains: Array<{ name: string; steps: Array<{ baseURL: string; headers: string[] }> }> };
    const gateway = config.chains.find((c) => c.name === 'url-credentials')?.steps[0];
    assert.match(gateway?.baseURL ?? '', /^http:\/\/\[REDACTED\]@127\.0\.0\.1:\d+\/openai\/v1\?key=\[REDACTED\]$/);
    assert.deepEqual(config.chains.find((c) => c.name === 'echo-openai')?.steps[0]?.headers, [HEADER_CREDENTIAL]);

    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /llm_fallback_malformed_events_total/);
    assertNoLeak('/metrics', metrics);
    for (const credential of [URL_USER, URL_PASSWORD, URL_QUERY_KEY]) assert.ok(!metrics.includes(credential), `/metrics shows ${credential}`);
  });
});
