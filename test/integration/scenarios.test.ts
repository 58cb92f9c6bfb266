// End-to-end scenarios: a real HTTP client -> the real proxy -> the fault-injecting
// upstream. One table; every row runs non-stream and stream (rows marked streamOnly
// only stream) and is checked from four sides: what the upstream saw, what the caller
// got, the headers, and the request log line.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type LogLine, type ProxyHarness } from '../support/proxy-harness.ts';
import type { AttemptVerdict } from '../../src/engine/outcome.ts';
import type { RequestOutcome } from '../../src/server/request-report.ts';

type Json = Record<string, unknown>;
type Timeouts = { firstByteMs?: number; idleMs?: number; totalMs?: number };
type Tokens = { input: number; output: number };

interface StepRow {
  /** The fault upstream behaviour (`fault:<fault>#<tag>` is sent upstream). */
  fault: string;
  retries?: number;
  /** Per mode when the same effect needs a different limit (firstByteMs only applies to streams). */
  timeouts?: Timeouts | ((stream: boolean) => Timeouts);
  price?: { inputPerMTok: number; outputPerMTok: number };
}

interface Expect {
  /** Requests the upstream received, per step. */
  calls?: number[];
  /** (step, verdict) of every attempt, in order: the log line, the header and the error body agree. */
  attempts?: Array<[number, AttemptVerdict]>;
  status: number;
  outcome: RequestOutcome;
  /** Failures: the error body's code and type. */
  error?: { code: string | null; type: string; message?: string };
  /** Streams that broke after the first byte: the code of the closing error event. */
  streamError?: string;
  /** What the caller reads; default `Hello from <winner model>` ('Hello' for a broken stream). */
  content?: string | ((stream: boolean) => string | undefined);
  tokens?: Tokens | ((stream: boolean) => Tokens);
  /** x-llm-fallback-cost-usd: a header for JSON, an HTTP trailer for streams. */
  costUSD?: string;
  /** Steps whose abandoned upstream connection must be closed by the proxy. */
  closedEarly?: number[];
}

interface Row {
  name: string;
  streamOnly?: boolean;
  steps: StepRow[];
  policy?: Record<string, unknown>;
  /** Point the provider at a port nobody listens on. */
  refused?: boolean;
  /** The provider's key comes from this environment variable. */
  apiKeyEnv?: string;
  /** Extra fields of the caller's request body. */
  body?: Json;
  expect: Expect;
  /** Row-specific assertions beyond the common ones. */
  check?: (run: Run) => void | Promise<void>;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  text: string;
  ms: number;
}

interface Sse {
  payloads: string[];
  chunks: Json[];
  done: boolean;
  error?: Json;
  content: string;
}

interface Run {
  stream: boolean;
  chain: string;
  models: string[];
  answer: Answer;
  /** The parsed JSON body, when the answer is not an event stream. */
  json?: Json;
  sse?: Sse;
  log: LogLine;
}

const PROVIDER_KEY_ENV = 'SCENARIO_PROVIDER_KEY';
const PROVIDER_KEY = 'sk-scenario-provider-key';
const CALLER_AUTH = 'Bearer caller-key';
const PRICE = { inputPerMTok: 3, outputPerMTok: 15 };
// 10 input and 5 output tokens (the fault upstream's usage) at PRICE: (30 + 75) / 1e6.
const PRICE_COST = '0.000105';
const USAGE_TOKENS: Tokens = { input: 10, output: 5 };
const NO_TOKENS: Tokens = { input: 0, output: 0 };
// The default fallbackOn with refusals opted in.
const WITH_REFUSALS = ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered', 'authFailed', 'contextLength'];
// Small limits make a silent upstream a timeout; for JSON only totalMs applies.
const quickTimeout =
  (ms: number) =>
  (stream: boolean): Timeouts =>
    stream ? { firstByteMs: ms } : { totalMs: ms };
const ok = (step: number): [number, AttemptVerdict] => [step, 'ok'];

const ROWS: Row[] = [
  // The first step answers: one request, no fallback, cost from the step's price.
  {
    name: 'ok-first',
    steps: [{ fault: 'ok', price: PRICE }, { fault: 'ok' }],
    expect: { calls: [1, 0], attempts: [ok(0)], status: 200, outcome: 'success', costUSD: PRICE_COST },
  },
  // A 429 without Retry-After is rateLimited and moves on to the next step.
  {
    name: 'rate-limited',
    steps: [{ fault: '429' }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'rateLimited'], ok(1)], status: 200, outcome: 'success' },
  },
  // retry-after-ms within backoff.maxMs is honoured on the same step: the retry comes at least 50 ms later.
  {
    name: 'retry-after-ms',
    steps: [{ fault: '429-retry-after-ms-50-then-ok', retries: 1 }, { fault: 'ok' }],
    policy: { backoff: { baseMs: 1, maxMs: 1000 } },
    expect: { calls: [2, 0], attempts: [[0, 'rateLimited'], ok(0)], status: 200, outcome: 'success' },
    check: ({ models, log }) => {
      const [first, second] = up.requestsFor(models[0] ?? '');
      assert.ok(first && second);
      assert.ok(second.receivedAt - first.receivedAt >= 50 - 1, `retried after ${second.receivedAt - first.receivedAt} ms (1 ms allowed for clock rounding)`);
      assert.match(logAttempts(log)[0]?.reason ?? '', /honouring Retry-After/);
    },
  },
  // A Retry-After (5 s) longer than backoff.maxMs is not waited for: the next step is tried at once.
  {
    name: 'retry-after-too-long',
    steps: [{ fault: '429-retry-after-5', retries: 2 }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'rateLimited'], ok(1)], status: 200, outcome: 'success' },
    check: ({ answer, log }) => {
      assert.ok(answer.ms < 4000, `answered after ${answer.ms} ms: the 5 s Retry-After was waited for`);
      assert.match(logAttempts(log)[0]?.reason ?? '', /exceeds backoff\.maxMs/);
    },
  },
  // A 500 is retried on the same step, and the retry's answer is served.
  {
    name: 'server-error-retried',
    steps: [{ fault: '500-then-ok', retries: 1 }, { fault: 'ok' }],
    expect: { calls: [2, 0], attempts: [[0, 'serverError'], ok(0)], status: 200, outcome: 'success' },
  },
  // retries: 2 means exactly 3 attempts on a step that keeps failing, then the next step.
  {
    name: 'retries-used-up',
    steps: [{ fault: '503', retries: 2 }, { fault: 'ok' }],
    expect: { calls: [3, 1], attempts: [[0, 'serverError'], [0, 'serverError'], [0, 'serverError'], ok(1)], status: 200, outcome: 'success' },
  },
  // 529 (overloaded, Anthropic-shaped body) is a serverError.
  {
    name: 'overloaded-529',
    steps: [{ fault: '529' }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'serverError'], ok(1)], status: 200, outcome: 'success' },
  },
  // A reset connection is a connection failure and moves on.
  {
    name: 'connection-reset',
    steps: [{ fault: 'reset' }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'connection'], ok(1)], status: 200, outcome: 'success' },
  },
  // A silent upstream times out (stream: firstByteMs even before response headers) and is not
  // waited on again despite retries: 2; its connection is closed; all well before the 10 s deadline.
  {
    name: 'silent-timeout',
    steps: [{ fault: 'silent', retries: 2, timeouts: quickTimeout(300) }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'timeout'], ok(1)], status: 200, outcome: 'success', closedEarly: [0] },
    check: ({ answer }) => assert.ok(answer.ms < 5000, `answered after ${answer.ms} ms`),
  },
  // Headers at once but the first token after 600 ms: over firstByteMs 200 (JSON: totalMs 200) -> timeout -> next.
  {
    name: 'slow-first-token',
    steps: [{ fault: 'slow-first-token-600', retries: 2, timeouts: quickTimeout(200) }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'timeout'], ok(1)], status: 200, outcome: 'success', closedEarly: [0] },
  },
  // 401 is authFailed: never retried, the next step answers.
  {
    name: 'auth-failed',
    steps: [{ fault: '401', retries: 2 }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'authFailed'], ok(1)], status: 200, outcome: 'success' },
  },
  // A context-length 400 is contextLength: not retried, a model with a larger window may take it.
  {
    name: 'context-length',
    steps: [{ fault: 'context-length', retries: 2 }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'contextLength'], ok(1)], status: 200, outcome: 'success' },
  },
  // A content-policy 400 is a refusal: by default it goes back to the caller with the provider's
  // reason, neither retried nor sent to another provider (that is the chain owner's opt-in).
  {
    name: 'content-policy',
    steps: [{ fault: 'content-policy', retries: 2 }, { fault: 'ok' }],
    expect: {
      calls: [1, 0],
      attempts: [[0, 'contentFiltered']],
      status: 400,
      outcome: 'failure',
      error: { code: 'content_policy_violation', type: 'invalid_request_error', message: 'Your request was rejected as a result of our safety system.' },
    },
  },
  // With contentFiltered in fallbackOn it is not retried, and the next step is tried.
  {
    name: 'content-policy-opt-in',
    steps: [{ fault: 'content-policy', retries: 2 }, { fault: 'ok' }],
    policy: { fallbackOn: WITH_REFUSALS },
    expect: { calls: [1, 1], attempts: [[0, 'contentFiltered'], ok(1)], status: 200, outcome: 'success' },
  },
  // finish_reason content_filter is, by default, the provider's answer: the caller gets it as it came.
  {
    name: 'content-filter-finish',
    steps: [{ fault: 'content-filter-finish', retries: 2 }, { fault: 'ok' }],
    // The fault upstream's refusing stream has no text; its JSON refusal carries the usual text.
    expect: { calls: [1, 0], attempts: [ok(0)], status: 200, outcome: 'success', content: (stream) => (stream ? '' : undefined) },
    check: ({ sse, json }) => {
      const choices = sse ? sse.chunks.flatMap((c) => (Array.isArray(c['choices']) ? c['choices'] : [])) : json?.['choices'];
      assert.ok(Array.isArray(choices) && choices.some((c) => isJson(c) && c['finish_reason'] === 'content_filter'), 'the refusal reaches the caller');
    },
  },
  // Opted in (stream: in the first event), it is contentFiltered -> next step; the JSON answer's
  // tokens were billed, so they count too (the stream's usage chunk never came).
  {
    name: 'content-filter-finish-opt-in',
    steps: [{ fault: 'content-filter-finish', retries: 2 }, { fault: 'ok' }],
    policy: { fallbackOn: WITH_REFUSALS },
    expect: {
      calls: [1, 1],
      attempts: [[0, 'contentFiltered'], ok(1)],
      status: 200,
      outcome: 'success',
      tokens: (stream) => (stream ? USAGE_TOKENS : { input: 20, output: 10 }),
    },
  },
  // A plain 400 is the caller's fault: returned as it came (body shape kept), no retry, no later step.
  {
    name: 'bad-request-400',
    steps: [{ fault: '400', retries: 2 }, { fault: 'ok' }],
    expect: {
      calls: [1, 0],
      attempts: [[0, 'badRequest']],
      status: 400,
      outcome: 'client_error',
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'Bad request' },
    },
  },
  // Same for 422.
  {
    name: 'bad-request-422',
    steps: [{ fault: '422', retries: 2 }, { fault: 'ok' }],
    expect: {
      calls: [1, 0],
      attempts: [[0, 'badRequest']],
      status: 422,
      outcome: 'client_error',
      error: { code: 'unprocessable_entity', type: 'invalid_request_error', message: 'Unprocessable entity' },
    },
  },
  // Every step fails: the caller gets the LAST upstream error (503, its body) with the attempts listed.
  {
    name: 'all-fail',
    steps: [{ fault: '500' }, { fault: '503' }],
    expect: {
      calls: [1, 1],
      attempts: [
        [0, 'serverError'],
        [1, 'serverError'],
      ],
      status: 503,
      outcome: 'failure',
      error: { code: null, type: 'server_error', message: 'The server had an error while processing your request.' },
    },
  },
  // No upstream ever answered (all silent): our own OpenAI-shaped 504.
  {
    name: 'all-silent',
    steps: [
      { fault: 'silent', timeouts: quickTimeout(300) },
      { fault: 'silent', timeouts: quickTimeout(300) },
    ],
    expect: {
      calls: [1, 1],
      attempts: [
        [0, 'timeout'],
        [1, 'timeout'],
      ],
      status: 504,
      outcome: 'failure',
      error: { code: 'upstream_timeout', type: 'timeout_error' },
      closedEarly: [0, 1],
    },
  },
  // Nobody listens (connection refused, retried once on step 0): our own OpenAI-shaped 502.
  {
    name: 'all-refused',
    refused: true,
    steps: [{ fault: 'ok', retries: 1 }, { fault: 'ok' }],
    expect: {
      calls: [0, 0],
      attempts: [
        [0, 'connection'],
        [0, 'connection'],
        [1, 'connection'],
      ],
      status: 502,
      outcome: 'failure',
      error: { code: 'upstream_connection', type: 'server_error' },
    },
  },
  // The upstream gets the provider's key from the sidecar's environment, never the caller's Authorization.
  {
    name: 'provider-key',
    apiKeyEnv: PROVIDER_KEY_ENV,
    steps: [{ fault: 'echo-key' }],
    // The upstream received the key; its echo reaches the caller redacted.
    expect: { calls: [1], attempts: [ok(0)], status: 200, outcome: 'success', content: 'Bearer [REDACTED]' },
    check: ({ models }) => assert.equal(up.requestsFor(models[0] ?? '')[0]?.headers['authorization'], `Bearer ${PROVIDER_KEY}`),
  },
  // policy.deadlineMs 400 bounds the whole request even when each step would wait 30 s: a 504 in time.
  // (Which step the deadline hits depends on timer rounding, so the attempt list is checked loosely.)
  {
    name: 'deadline',
    policy: { deadlineMs: 400 },
    steps: [
      { fault: 'silent', timeouts: { firstByteMs: 30000, totalMs: 30000 } },
      { fault: 'silent', timeouts: { firstByteMs: 30000, totalMs: 30000 } },
    ],
    expect: { status: 504, outcome: 'failure', closedEarly: [0] },
    check: ({ answer, json, models, log, chain }) => {
      assert.ok(answer.ms < 5000, `answered after ${answer.ms} ms`);
      assert.equal(up.requestsFor(models[0] ?? '').length, 1);
      assert.ok(up.requestsFor(models[1] ?? '').length <= 1);
      const error = field(json, 'error');
      assert.ok(['deadline_exceeded', 'upstream_timeout'].includes(String(error['code'])), `code ${String(error['code'])}`);
      assert.equal(error['type'], 'timeout_error');
      assert.equal(field(error, 'llm_fallback')['chain'], chain);
      const verdicts = logAttempts(log).map((a) => a.outcome);
      assert.ok(verdicts.length >= 1 && verdicts.every((v) => v === 'timeout'), `attempts ${verdicts.join(',')}`);
      assert.equal(logAttempts(log)[0]?.step, 0);
      assert.ok(String(answer.headers['x-llm-fallback-attempts']).startsWith(`mock/${models[0]}=timeout`));
    },
  },
  // An error object as the FIRST event (JSON: inside a 200 body) is a serverError before any byte reached the caller: next step.
  {
    name: 'error-first-event',
    steps: [{ fault: 'error-event' }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'serverError'], ok(1)], status: 200, outcome: 'success' },
  },
  // A stream that ends with no event (JSON: an empty 200 body) is a serverError: next step.
  {
    name: 'empty-answer',
    steps: [{ fault: 'empty-stream' }, { fault: 'ok' }],
    expect: { calls: [1, 1], attempts: [[0, 'serverError'], ok(1)], status: 200, outcome: 'success' },
  },

  // --- Streams after the first byte with no step left to carry them on (resumes: stream-resume.test.ts):
  // failures end with an error event and no [DONE], and count as failures of the step.
  // A connection cut after 2 events: the caller has 'Hello', then upstream_stream_cut.
  {
    name: 'cut-mid-stream',
    streamOnly: true,
    steps: [{ fault: 'cut-after-2' }],
    expect: {
      calls: [1],
      attempts: [[0, 'connection']],
      status: 200,
      outcome: 'stream_failed',
      streamError: 'upstream_stream_cut',
      content: 'Hello',
      tokens: NO_TOKENS,
    },
  },
  // Silence after 2 events longer than idleMs: upstream_stalled, and the stalled connection is closed.
  {
    name: 'stall-mid-stream',
    streamOnly: true,
    steps: [{ fault: 'stall-after-2', timeouts: { idleMs: 200 } }],
    expect: {
      calls: [1],
      attempts: [[0, 'timeout']],
      status: 200,
      outcome: 'stream_failed',
      streamError: 'upstream_stalled',
      content: 'Hello',
      tokens: NO_TOKENS,
      closedEarly: [0],
    },
  },
  // A malformed event is dropped (and logged), the answer goes on intact to [DONE].
  {
    name: 'malformed-event',
    streamOnly: true,
    steps: [{ fault: 'malformed' }, { fault: 'ok' }],
    expect: { calls: [1, 0], attempts: [ok(0)], status: 200, outcome: 'success' },
    check: async ({ sse, chain }) => {
      assert.ok(sse && sse.payloads.every((p) => p === '[DONE]' || !p.startsWith('{not json')));
      const warn = await proxy.waitForLog((l) => l.msg === 'dropped a malformed stream event' && l['chain'] === chain);
      assert.equal(warn['data'], '{not json');
    },
  },
  // An upstream that ends after finish_reason without [DONE]: the answer is whole, [DONE] is added.
  { name: 'no-done', streamOnly: true, steps: [{ fault: 'no-done' }], expect: { calls: [1], attempts: [ok(0)], status: 200, outcome: 'success' } },
  // The caller asked for include_usage: it gets the usage chunk; the cost follows as a trailer.
  {
    name: 'usage-asked',
    streamOnly: true,
    body: { stream_options: { include_usage: true } },
    steps: [{ fault: 'ok', price: PRICE }],
    expect: { calls: [1], attempts: [ok(0)], status: 200, outcome: 'success', costUSD: PRICE_COST },
    check: ({ sse }) => {
      const usageChunks = (sse?.chunks ?? []).filter((c) => isJson(c['usage']));
      assert.equal(usageChunks.length, 1);
      assert.deepEqual(usageChunks[0]?.['usage'], { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
      assert.deepEqual(usageChunks[0]?.['choices'], []);
    },
  },
  // The caller did not ask: no chunk carries `usage` (checked for every such stream), yet the proxy
  // asked upstream for it, so tokens and the cost trailer are still known.
  {
    name: 'usage-not-asked',
    streamOnly: true,
    steps: [{ fault: 'ok', price: PRICE }],
    expect: { calls: [1], attempts: [ok(0)], status: 200, outcome: 'success', costUSD: PRICE_COST },
    check: ({ models }) => assert.deepEqual(field(up.requestsFor(models[0] ?? '')[0]?.body, 'stream_options'), { include_usage: true }),
  },
];

let up: FaultUpstream;
let proxy: ProxyHarness;

const modeName = (stream: boolean): string => (stream ? 'stream' : 'json');
const chainName = (row: Row, stream: boolean): string => `${row.name}-${modeName(stream)}`;
const modelsOf = (row: Row, stream: boolean): string[] => row.steps.map((s, i) => `fault:${s.fault}#${chainName(row, stream)}-${i}`);
const modesOf = (row: Row): boolean[] => (row.streamOnly ? [true] : [false, true]);

async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function configFor(refusedURL: string): string {
  const docs: string[] = [];
  for (const row of ROWS) {
    for (const stream of modesOf(row)) {
      const models = modelsOf(row, stream);
      docs.push(
        chainYaml({
          name: chainName(row, stream),
          baseURL: row.refused ? refusedURL : up.url,
          apiKey: row.apiKeyEnv,
          policy: row.policy,
          steps: row.steps.map((s, i) => ({
            model: models[i] ?? '',
            retries: s.retries ?? 0,
            ...(s.timeouts ? { timeouts: typeof s.timeouts === 'function' ? s.timeouts(stream) : s.timeouts } : {}),
            ...(s.price ? { price: s.price } : {}),
          })),
        }),
      );
    }
  }
  return docs.join('\n---\n');
}

before(async () => {
  up = await startFaultUpstream();
  const refusedURL = `http://127.0.0.1:${await closedPort()}/v1`;
  proxy = await startProxy({ config: configFor(refusedURL), env: { [PROVIDER_KEY_ENV]: PROVIDER_KEY } });
});

after(async () => {
  await proxy.close();
  await up.close();
});

// ---------------------------------------------------------------------------
// Helpers

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(value: unknown, key: string): Json {
  assert.ok(isJson(value), `expected an object holding "${key}", got ${JSON.stringify(value)}`);
  const inner = value[key];
  assert.ok(isJson(inner), `expected "${key}" to be an object, got ${JSON.stringify(inner)}`);
  return inner;
}

interface LoggedAttempt {
  step: number;
  model: string;
  outcome: string;
  reason?: string;
}

function logAttempts(log: LogLine): LoggedAttempt[] {
  const attempts = log['attempts'];
  assert.ok(Array.isArray(attempts));
  return attempts as LoggedAttempt[];
}

/** POST through node:http (not fetch) so the HTTP trailers of a stream can be read. */
function post(path: string, body: Json, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(`${proxy.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          trailers: res.trailers,
          text: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - started,
        }),
      );
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** SSE events split on blank lines; `data: ` payloads, JSON chunks, the closing error event if any. */
function parseSse(text: string): Sse {
  const payloads = text
    .split('\n\n')
    .filter((e) => e.trim() !== '')
    .map((e) => {
      assert.ok(e.startsWith('data: '), `not a data event: ${e}`);
      return e.slice('data: '.length);
    });
  const parsed = payloads.filter((p) => p !== '[DONE]').map((p) => JSON.parse(p) as Json);
  const chunks = parsed.filter((c) => !isJson(c['error']));
  const errors = parsed.filter((c) => isJson(c['error']));
  assert.ok(errors.length <= 1, 'at most one error event');
  const content = chunks
    .map((c) => {
      const choices = c['choices'];
      const first: unknown = Array.isArray(choices) ? choices[0] : undefined;
      const delta = isJson(first) ? first['delta'] : undefined;
      return isJson(delta) && typeof delta['content'] === 'string' ? delta['content'] : '';
    })
    .join('');
  return { payloads, chunks, done: payloads.includes('[DONE]'), error: errors[0] ? field(errors[0], 'error') : undefined, content };
}

function expectedTokens(e: Expect, stream: boolean): Tokens {
  if (typeof e.tokens === 'function') return e.tokens(stream);
  return e.tokens ?? (e.outcome === 'success' ? USAGE_TOKENS : NO_TOKENS);
}

// ---------------------------------------------------------------------------
// The common assertions of every row

function assertUpstreamSide(row: Row, run: Run): void {
  const { calls } = row.expect;
  if (calls)
    assert.deepEqual(
      run.models.map((m) => up.requestsFor(m).length),
      calls,
      'upstream requests per step',
    );
  for (const m of run.models) {
    for (const r of up.requestsFor(m)) assert.notEqual(r.headers['authorization'], CALLER_AUTH, "the caller's key reached the upstream");
  }
}

function assertCallerSide(row: Row, run: Run, winner: string | undefined): void {
  const e = row.expect;
  const { answer } = run;
  assert.equal(answer.status, e.status, `status; body: ${answer.text.slice(0, 500)}`);
  if (winner !== undefined) {
    const content = (typeof e.content === 'function' ? e.content(run.stream) : e.content) ?? (e.streamError ? 'Hello' : `Hello from ${winner}`);
    if (run.stream) {
      const sse = run.sse;
      assert.ok(sse, `expected an event stream, got ${answer.headers['content-type']}`);
      assert.equal(sse.content, content);
      for (const chunk of sse.chunks) assert.equal(chunk['model'], winner);
      if (e.streamError) {
        assert.equal(sse.done, false, 'a broken stream must not end with [DONE]');
        assert.equal(sse.error?.['code'], e.streamError);
        assert.equal(sse.error?.['type'], 'server_error');
        assert.ok(isJson(JSON.parse(sse.payloads.at(-1) ?? '{}')['error']), 'the error event is the last event');
      } else {
        assert.equal(sse.error, undefined, `unexpected error event ${JSON.stringify(sse.error)}`);
        assert.equal(sse.payloads.at(-1), '[DONE]');
        assert.equal(sse.payloads.filter((p) => p === '[DONE]').length, 1);
      }
      const asked = isJson(row.body?.['stream_options']) && row.body['stream_options']['include_usage'] === true;
      if (!asked) for (const chunk of sse.chunks) assert.ok(!('usage' in chunk), `a usage key reached a caller who did not ask: ${JSON.stringify(chunk)}`);
    } else {
      assert.equal(run.json?.['model'], winner);
      const choices = run.json?.['choices'];
      assert.ok(Array.isArray(choices));
      assert.equal(field(choices[0], 'message')['content'], content);
    }
    return;
  }
  if (e.error) {
    const error = field(run.json, 'error');
    assert.equal(error['code'], e.error.code);
    assert.equal(error['type'], e.error.type);
    if (e.error.message !== undefined) assert.equal(error['message'], e.error.message);
    const listed = field(error, 'llm_fallback');
    assert.equal(listed['chain'], run.chain);
    const attempts = listed['attempts'];
    assert.ok(Array.isArray(attempts));
    assert.deepEqual(
      attempts.map((a: unknown) => (isJson(a) ? a['outcome'] : undefined)),
      (e.attempts ?? []).map(([, v]) => v),
    );
  }
}

function assertHeaders(row: Row, run: Run, winner: string | undefined): void {
  const h = run.answer.headers;
  assert.equal(h['x-request-id'], `scenario-${run.chain}`);
  assert.equal(h['x-llm-fallback-chain'], run.chain);
  if (row.expect.attempts) {
    const listed = row.expect.attempts.map(([step, verdict]) => `mock/${run.models[step]}=${verdict}`).join(', ');
    // A stream's headers go out at its commit point; the trailer has every attempt as it ended.
    assert.equal(run.sse ? run.answer.trailers['x-llm-fallback-attempts'] : h['x-llm-fallback-attempts'], listed);
  }
  assert.equal(h['x-llm-fallback-provider'], winner === undefined ? undefined : 'mock');
  assert.equal(h['x-llm-fallback-model'], winner);
  const cost = row.expect.costUSD;
  if (cost !== undefined) {
    if (run.stream) assert.equal(run.answer.trailers['x-llm-fallback-cost-usd'], cost, 'cost trailer');
    else assert.equal(h['x-llm-fallback-cost-usd'], cost, 'cost header');
  }
}

function assertLogLine(row: Row, run: Run, winnerStep: number | undefined): void {
  const e = row.expect;
  const { log } = run;
  assert.equal(log['chain'], run.chain);
  assert.equal(log['endpoint'], 'chat');
  assert.equal(log['stream'], run.stream);
  assert.equal(log['outcome'], e.outcome);
  assert.equal(log['status'], e.status);
  if (e.attempts)
    assert.deepEqual(
      logAttempts(log).map((a) => [a.step, a.outcome]),
      e.attempts,
    );
  const winner = winnerStep === undefined ? null : { provider: 'mock', model: run.models[winnerStep], step: winnerStep };
  assert.deepEqual(log['winner'], winner);
  assert.deepEqual(log['tokens'], { ...expectedTokens(e, run.stream), cachedInput: 0 });
  if (e.costUSD !== undefined) assert.equal(log['costUSD'], Number(e.costUSD));
}

async function runRow(row: Row, stream: boolean): Promise<void> {
  const chain = chainName(row, stream);
  const models = modelsOf(row, stream);
  const requestId = `scenario-${chain}`;
  const body = { model: chain, messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true } : {}), ...row.body };
  const answer = await post('/v1/chat/completions', body, { authorization: CALLER_AUTH, 'x-request-id': requestId });
  const isSse = String(answer.headers['content-type']).includes('text/event-stream');
  const run: Run = {
    stream,
    chain,
    models,
    answer,
    json: isSse ? undefined : (JSON.parse(answer.text) as Json),
    sse: isSse ? parseSse(answer.text) : undefined,
    log: await proxy.requestLog(requestId),
  };
  const okAttempt =
    row.expect.outcome === 'success' || row.expect.outcome === 'stream_failed' ? logAttempts(run.log).find((a) => a.outcome === 'ok') : undefined;
  // A stream that broke is answered (headers, chunks) by the step whose attempt failed mid-way.
  const answering = isJson(run.log['winner']) && typeof run.log['winner']['step'] === 'number' ? run.log['winner']['step'] : undefined;
  const winnerStep = row.expect.outcome === 'stream_failed' ? answering : okAttempt?.step;
  const winner = winnerStep === undefined ? undefined : models[winnerStep];
  if (row.expect.outcome === 'success' || row.expect.outcome === 'stream_failed') assert.ok(winner, 'a successful row has a winner');
  assertUpstreamSide(row, run);
  assertCallerSide(row, run, winner);
  assertHeaders(row, run, winner);
  assertLogLine(row, run, winnerStep);
  for (const step of row.expect.closedEarly ?? []) await up.waitForClosedEarly(models[step] ?? '');
  await row.check?.(run);
}

describe('scenarios through the proxy and the fault upstream', () => {
  for (const row of ROWS) {
    for (const stream of modesOf(row)) {
      // The timeout turns a hang (e.g. a connection that is never closed) into a failure.
      test(stream ? `${row.name} (stream)` : row.name, { timeout: 20_000 }, () => runRow(row, stream));
    }
  }
});
