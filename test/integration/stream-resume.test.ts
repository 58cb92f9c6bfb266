// Streams that break part-way through a long answer (issue 13): the official OpenAI and
// Anthropic SDKs as callers, OpenAI-format and Anthropic-format upstreams that answer 60
// tokens one event each and honour prefill (test/support/long-answer-upstream.ts). After a
// cut, a stall or an error event the caller still gets the whole answer exactly once, from
// a continuation (prefill) or a verified restart; when neither can be proven exact, the
// stream ends with the clean error of the original failure; before the commit point
// nothing is sent; and breaks count against the broken target.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ANSWER, TOKENS, startLongAnswerUpstream, type LongAnswerUpstream } from '../support/long-answer-upstream.ts';
import { startProxy, type LogLine, type ProxyHarness } from '../support/proxy-harness.ts';

type Format = 'openai' | 'anthropic';
type Caller = 'openai' | 'anthropic';
type Prefill = 'supported' | 'unsupported' | 'auto';

interface StepSpec {
  format: Format;
  behaviour: string;
  prefill?: Prefill;
  retries?: number;
  idleMs?: number;
}
interface ChainSpec {
  steps: StepSpec[];
  policy?: Record<string, unknown>;
  circuitBreaker?: Record<string, number>;
}

const chains = new Map<string, ChainSpec>();

/** Registers a chain (written to the config in before()) and returns its name. */
function chain(name: string, spec: ChainSpec): string {
  assert.ok(!chains.has(name), `chain ${name} defined twice`);
  chains.set(name, spec);
  return name;
}

const model = (name: string, step: number): string => `long:${chains.get(name)?.steps[step]?.behaviour ?? 'missing'}#${name}-${step}`;
const first = (n: number): string => TOKENS.slice(0, n).join('');

let up: LongAnswerUpstream;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;
let ids = 0;

function chainDocument(name: string, spec: ChainSpec): string {
  // One provider per (format, prefill) the steps use: prefill is a provider's capability here.
  const providers = new Map<string, Record<string, unknown>>();
  const steps = spec.steps.map((s, i) => {
    const provider = `${s.format}-${s.prefill ?? 'default'}`;
    providers.set(provider, { name: provider, api: s.format, baseURL: up.url, apiKey: { env: 'LONG_KEY' }, ...(s.prefill ? { prefill: s.prefill } : {}) });
    return { provider, model: model(name, i), retries: s.retries ?? 0, timeouts: { firstByteMs: 5000, idleMs: s.idleMs ?? 5000, totalMs: 10000 } };
  });
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [...providers.values()],
      steps,
      policy: { backoff: { baseMs: 1, maxMs: 5 }, deadlineMs: 15000, ...spec.policy },
      ...(spec.circuitBreaker ? { circuitBreaker: spec.circuitBreaker } : {}),
    },
  });
}

interface Streamed {
  text: string;
  error?: { code?: string | null; type?: string; message: string };
  /** OpenAI: chunks with a role; Anthropic: message_start events. */
  starts: number;
  /** OpenAI: distinct chunk ids; Anthropic: distinct content block indexes with text. */
  ids: Set<string>;
  /** The answer ended normally: OpenAI finish_reason stop, Anthropic message_stop. */
  ended: boolean;
}

async function streamFrom(caller: Caller, chainName: string, requestId: string): Promise<Streamed> {
  const out: Streamed = { text: '', starts: 0, ids: new Set(), ended: false };
  const headers = { headers: { 'x-request-id': requestId } };
  try {
    if (caller === 'openai') {
      const stream = await openai.chat.completions.create(
        { model: chainName, messages: [{ role: 'user', content: 'Tell me a long story.' }], stream: true },
        headers,
      );
      for await (const chunk of stream) {
        out.ids.add(chunk.id);
        const choice = chunk.choices[0];
        if (choice?.delta.role) out.starts++;
        out.text += choice?.delta.content ?? '';
        if (choice?.finish_reason === 'stop') out.ended = true;
      }
    } else {
      const stream = await anthropic.messages.create(
        { model: chainName, max_tokens: 1000, messages: [{ role: 'user', content: 'Tell me a long story.' }], stream: true },
        headers,
      );
      for await (const event of stream) {
        if (event.type === 'message_start') out.starts++;
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          out.text += event.delta.text;
          out.ids.add(String(event.index));
        }
        if (event.type === 'message_stop') out.ended = true;
      }
    }
  } catch (error) {
    if (error instanceof OpenAI.APIError) out.error = { code: error.code, message: error.message };
    else if (error instanceof Anthropic.APIError)
      out.error = { type: (error.error as { error?: { type?: string } } | undefined)?.error?.type, message: error.message };
    else throw error;
  }
  return out;
}

/** The raw SSE text and trailers of a stream (an OpenAI caller). */
async function rawStream(
  chainName: string,
  requestId: string,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; text: string; trailers: NodeJS.Dict<string>; headers: NodeJS.Dict<string | string[]> }> {
  const url = new URL('/v1/chat/completions', proxy.apiUrl);
  const body = JSON.stringify({ model: chainName, messages: [{ role: 'user', content: 'Tell me a long story.' }], stream: true, ...extra });
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, trailers: res.trailers, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function attemptsOf(log: LogLine): Array<{ step: number; outcome: string; reason?: string }> {
  return log['attempts'] as Array<{ step: number; outcome: string; reason?: string }>;
}

async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').pop()) : 0;
}

const newId = (): string => `resume-${++ids}`;

// --- The chains, registered while the suites are built.
const FORMATS: Format[] = ['openai', 'anthropic'];
const CALLERS: Caller[] = ['openai', 'anthropic'];
// Each way a committed stream breaks, with the attempt's class and the code the caller would have got.
const BREAKS = [
  { behaviour: 'cut-40', failure: 'connection', code: 'upstream_stream_cut' },
  { behaviour: 'stall-40', failure: 'timeout', code: 'upstream_stalled', idleMs: 300 },
  { behaviour: 'error-40', failure: 'serverError', code: 'upstream_error' },
];

describe('a stream broken after 40 of 60 tokens is finished by the next step', { timeout: 30_000 }, () => {
  for (const format of FORMATS) {
    for (const brk of BREAKS) {
      for (const caller of CALLERS) {
        const name = chain(`cont-${format}-${brk.behaviour}-${caller}`, {
          steps: [
            { format, behaviour: brk.behaviour, ...(brk.idleMs ? { idleMs: brk.idleMs } : {}) },
            { format, behaviour: 'ok', prefill: 'supported' },
          ],
        });
        test(`${format} upstream, ${brk.behaviour}, ${caller} caller: all 60 tokens exactly once, by continuation`, async () => {
          const id = newId();
          const got = await streamFrom(caller, name, id);
          assert.equal(got.error, undefined, `the stream ended with an error: ${JSON.stringify(got.error)}`);
          assert.equal(got.text, ANSWER);
          assert.ok(got.ended, 'the stream ended normally');
          assert.equal(got.starts, 1, 'one role chunk / one message_start');
          assert.equal(got.ids.size, 1, 'one chunk id / one text block');
          // The next step was sent the conversation plus the 40 delivered tokens as prefill.
          const [continued] = up.requestsFor(model(name, 1));
          assert.equal(continued?.prefill, first(40));
          // The answer as a whole stays within the caller's limit: 40 of its 1000 tokens are spent.
          if (caller === 'anthropic') assert.equal(continued?.body['max_tokens'] ?? continued?.body['max_completion_tokens'], 960);
          const log = await proxy.requestLog(id);
          assert.equal(log['outcome'], 'success');
          assert.equal(log['streamResume'], 'continued');
          assert.deepEqual(
            attemptsOf(log).map((a) => [a.step, a.outcome]),
            [
              [0, brk.failure],
              [1, 'ok'],
            ],
          );
          assert.deepEqual(log['winner'], { provider: `${format}-supported`, model: model(name, 1), step: 1 });
        });
      }
    }
  }
});

describe('usage and cost of a resumed stream', { timeout: 30_000 }, () => {
  for (const format of FORMATS) {
    const name = chain(`usage-${format}`, {
      steps: [
        { format, behaviour: 'cut-40' },
        { format, behaviour: 'ok', prefill: 'supported' },
      ],
    });
    test(`${format} upstream: the caller's usage is every attempt's, as billed in the log; the trailers list every attempt`, async () => {
      const id = newId();
      const raw = await rawStream(name, id, { stream_options: { include_usage: true } });
      const chunks = raw.text
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => JSON.parse(e.slice('data: '.length)) as { usage?: { prompt_tokens: number; completion_tokens: number } | null });
      const usage = chunks
        .map((c) => c.usage)
        .filter((u) => u)
        .at(-1);
      const log = await proxy.requestLog(id);
      const tokens = log['tokens'] as { input: number; output: number };
      assert.ok(usage, 'a usage chunk');
      assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [tokens.input, tokens.output]);
      assert.ok(tokens.output >= 20, 'the continuation reported its 20 tokens');
      assert.equal(raw.trailers['x-llm-fallback-attempts'], `${format}-default/${model(name, 0)}=connection, ${format}-supported/${model(name, 1)}=ok`);
      assert.equal(raw.trailers['x-llm-fallback-model'], model(name, 1));
      assert.equal(raw.headers['x-llm-fallback-model'], model(name, 0), 'the headers name the step the stream began with');
    });
  }
});

describe('a next step that cannot continue is asked again and verified', { timeout: 30_000 }, () => {
  for (const format of FORMATS) {
    for (const caller of CALLERS) {
      // auto (OpenAI) learns from the rejection; supported (Anthropic's default) is restarted all the same.
      const prefill: Prefill = format === 'openai' ? 'auto' : 'supported';
      const rejects = chain(`reject-${format}-${caller}`, {
        steps: [
          { format, behaviour: 'cut-40' },
          { format, behaviour: 'no-prefill', prefill },
        ],
      });
      test(`${format} upstream that rejects prefill, ${caller} caller: the whole answer, its first 40 tokens verified and not sent twice`, async () => {
        const id = newId();
        const got = await streamFrom(caller, rejects, id);
        assert.equal(got.error, undefined, `the stream ended with an error: ${JSON.stringify(got.error)}`);
        assert.equal(got.text, ANSWER);
        assert.ok(got.ended);
        assert.equal(got.starts, 1);
        const asked = up.requestsFor(model(rejects, 1));
        assert.deepEqual(
          asked.map((r) => r.prefill),
          [first(40), undefined],
          'prefill first, then the original conversation',
        );
        const log = await proxy.requestLog(id);
        assert.equal(log['streamResume'], 'restarted');
        assert.deepEqual(
          attemptsOf(log).map((a) => [a.step, a.outcome]),
          [
            [0, 'connection'],
            [1, 'ok'],
          ],
        );
        const rejection = await proxy.waitForLog((l) => l['requestId'] === id && String(l.msg).startsWith('prefill rejected'));
        assert.equal(rejection['model'], model(rejects, 1));
      });
    }
  }

  const unsupported = chain('restart-unsupported', {
    steps: [
      { format: 'openai', behaviour: 'cut-40' },
      { format: 'openai', behaviour: 'ok' },
    ],
  });
  test('a step declared (by default, OpenAI format) not to take prefill is only asked for the whole answer', async () => {
    const id = newId();
    const got = await streamFrom('openai', unsupported, id);
    assert.equal(got.text, ANSWER);
    assert.deepEqual(
      up.requestsFor(model(unsupported, 1)).map((r) => r.prefill),
      [undefined],
    );
    assert.equal((await proxy.requestLog(id))['streamResume'], 'restarted');
  });

  for (const caller of CALLERS) {
    // Declared to take prefill, but it answers anew (as OpenAI's own API does): no text twice.
    const anew = chain(`ignores-prefill-${caller}`, {
      steps: [
        { format: 'openai', behaviour: 'cut-40' },
        { format: 'openai', behaviour: 'ignore-prefill', prefill: 'supported' },
      ],
    });
    test(`${caller} caller: a step that takes the prefill but answers from the start is verified like a restart`, async () => {
      const id = newId();
      const got = await streamFrom(caller, anew, id);
      assert.equal(got.error, undefined);
      assert.equal(got.text, ANSWER, 'the first 40 tokens are not delivered twice');
      assert.deepEqual(
        up.requestsFor(model(anew, 1)).map((r) => r.prefill),
        [first(40)],
      );
      assert.equal((await proxy.requestLog(id))['streamResume'], 'restarted');
    });

    const diverges = chain(`diverge-${caller}`, {
      steps: [
        { format: 'openai', behaviour: 'cut-40' },
        { format: 'openai', behaviour: 'diverge' },
      ],
    });
    test(`${caller} caller: a restart whose answer differs ends with the original failure, nothing altered or added`, async () => {
      const id = newId();
      const got = await streamFrom(caller, diverges, id);
      assert.equal(got.text, first(40), 'only what the first step delivered');
      assert.ok(!got.ended);
      assert.ok(got.error, 'the stream ended with an error');
      if (caller === 'openai') assert.equal(got.error.code, 'upstream_stream_cut');
      else assert.match(got.error.message, /upstream_stream_cut/);
      const log = await proxy.requestLog(id);
      assert.equal(log['outcome'], 'stream_failed');
      assert.equal(log['streamResume'], 'failed');
      assert.match(String(log['streamEnd']), /^upstream_stream_cut/);
      const [, restart] = attemptsOf(log);
      assert.match(restart?.reason ?? '', /diverged|does not begin with/);
    });
  }
});

describe('streams that cannot be resumed exactly end with the clean error', { timeout: 30_000 }, () => {
  for (const format of FORMATS) {
    for (const caller of CALLERS) {
      const name = chain(`tools-${format}-${caller}`, {
        steps: [
          { format, behaviour: 'tools-cut-2' },
          { format, behaviour: 'ok', prefill: 'supported' },
        ],
      });
      test(`${format} upstream, ${caller} caller: a stream cut after tool-call deltas is not resumed`, async () => {
        const id = newId();
        const got = await streamFrom(caller, name, id);
        assert.ok(got.error, 'the stream ended with an error');
        if (caller === 'openai') assert.equal(got.error.code, 'upstream_stream_cut');
        else assert.match(got.error.message, /upstream_stream_cut/);
        assert.equal(up.requestsFor(model(name, 1)).length, 0, 'the next step was not asked');
        const log = await proxy.requestLog(id);
        assert.equal(log['streamResume'], 'failed');
        const [broken] = attemptsOf(log);
        assert.equal(broken?.outcome, 'connection', 'the cut counts against the step');
        assert.match(broken?.reason ?? '', /tool-call deltas/);
      });
    }
  }
});

describe('the commit point', { timeout: 30_000 }, () => {
  for (const caller of CALLERS) {
    for (const format of FORMATS) {
      const name = chain(`complete-${format}-${caller}`, {
        steps: [
          { format, behaviour: 'cut-50' },
          { format, behaviour: 'ok' },
        ],
        policy: { stream: { commit: 'complete' } },
      });
      test(`commit complete, ${format} upstream, ${caller} caller: a failure after 50 tokens gives the next step's whole answer and nothing of the first`, async () => {
        const id = newId();
        const got = await streamFrom(caller, name, id);
        assert.equal(got.error, undefined);
        assert.equal(got.text, ANSWER);
        assert.equal(got.starts, 1);
        assert.ok(got.ended);
        // The next step was asked afresh: nothing had been delivered, there was nothing to continue.
        assert.deepEqual(
          up.requestsFor(model(name, 1)).map((r) => r.prefill),
          [undefined],
        );
        const log = await proxy.requestLog(id);
        assert.equal(log['outcome'], 'success');
        assert.equal(log['streamResume'], undefined, 'no committed stream broke');
        assert.deepEqual(
          attemptsOf(log).map((a) => [a.step, a.outcome]),
          [
            [0, 'connection'],
            [1, 'ok'],
          ],
        );
      });
    }
  }

  const held = chain('commit-tokens', {
    steps: [
      { format: 'openai', behaviour: 'cut-40' },
      { format: 'openai', behaviour: 'ok' },
    ],
    policy: { stream: { commit: 'tokens', tokens: 45 } },
  });
  test('commit after 45 tokens: a cut at 40 is an ordinary fallback, and the headers name the step that answered', async () => {
    const id = newId();
    const raw = await rawStream(held, id);
    const ids = new Set([...raw.text.matchAll(/"id":"([^"]+)"/g)].map((m) => m[1]));
    assert.equal(ids.size, 1, 'every chunk from one upstream answer');
    assert.ok(raw.text.endsWith('data: [DONE]\n\n'));
    assert.equal(raw.headers['x-llm-fallback-model'], model(held, 1));
    assert.equal(raw.headers['x-llm-fallback-attempts'], `openai-default/${model(held, 0)}=connection, openai-default/${model(held, 1)}=ok`);
  });

  const heartbeat = chain('heartbeat', {
    steps: [
      { format: 'openai', behaviour: 'stall-10', idleMs: 700 },
      { format: 'openai', behaviour: 'ok' },
    ],
    policy: { stream: { commit: 'complete', heartbeatMs: 100 } },
  });
  test("while an answer is held, SSE comments keep the caller's connection alive; then the answer follows", async () => {
    const id = newId();
    const raw = await rawStream(heartbeat, id);
    const firstData = raw.text.indexOf('data: ');
    const before = raw.text.slice(0, firstData);
    assert.match(before, /^(: keep-alive\n\n)+$/, 'only heartbeats before the first event');
    const content = [...raw.text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
    assert.equal(content, ANSWER);
    // Both SDKs read past the comments.
    for (const caller of CALLERS) assert.equal((await streamFrom(caller, heartbeat, newId())).text, ANSWER, `${caller} SDK`);
  });

  const heldThenLost = chain('held-then-lost', {
    steps: [{ format: 'openai', behaviour: 'stall-10', idleMs: 500 }],
    policy: { stream: { commit: 'complete', heartbeatMs: 100 } },
  });
  test('when every step fails after heartbeats began the response, it ends with an error event, not a truncated answer', async () => {
    const id = newId();
    const raw = await rawStream(heldThenLost, id);
    assert.equal(raw.status, 200, 'the first heartbeat began the response');
    assert.match(raw.text, /^: keep-alive\n\n/);
    assert.ok(!raw.text.includes('"content"'), 'nothing of the held answer was sent');
    assert.ok(!raw.text.includes('[DONE]'));
    const last = raw.text.trim().split('\n\n').at(-1) ?? '';
    const error = (JSON.parse(last.slice('data: '.length)) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'upstream_timeout');
    assert.match(error.message, /upstream_stalled/);
    const got = await streamFrom('openai', heldThenLost, newId());
    assert.equal(got.error?.code, 'upstream_timeout', 'the SDK raises');
    assert.equal(got.text, '');
    assert.equal((await proxy.requestLog(id))['outcome'], 'stream_failed');
  });
});

describe('refusals', { timeout: 30_000 }, () => {
  const WITH_REFUSALS = ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered', 'authFailed', 'contextLength'];
  for (const format of FORMATS) {
    const byDefault = chain(`refuse-default-${format}`, {
      steps: [
        { format, behaviour: 'refuse-0' },
        { format, behaviour: 'ok' },
      ],
    });
    test(`${format} upstream: by default a refusal in the first event is the provider's answer, delivered with its reason, not routed around`, async () => {
      const id = newId();
      const raw = await rawStream(byDefault, id);
      assert.match(raw.text, /"finish_reason":"content_filter"/);
      assert.equal(up.requestsFor(model(byDefault, 1)).length, 0, 'the refused prompt went to no other provider');
      assert.equal((await proxy.requestLog(id))['outcome'], 'success');
    });
    const optedIn = chain(`refuse-opt-in-${format}`, {
      steps: [
        { format, behaviour: 'refuse-30' },
        { format, behaviour: 'ok' },
      ],
      policy: { stream: { commit: 'complete' }, fallbackOn: WITH_REFUSALS },
    });
    test(`${format} upstream: with contentFiltered in fallbackOn, a refusal in a held answer falls back with nothing sent`, async () => {
      const id = newId();
      const got = await streamFrom('openai', optedIn, id);
      assert.equal(got.text, ANSWER);
      assert.equal(got.starts, 1);
      const log = await proxy.requestLog(id);
      assert.deepEqual(
        attemptsOf(log).map((a) => [a.step, a.outcome]),
        [
          [0, 'contentFiltered'],
          [1, 'ok'],
        ],
      );
    });
  }
});

describe('mid-stream failures count', { timeout: 60_000 }, () => {
  const flaky = chain('seven-cuts', {
    steps: [
      { format: 'openai', behaviour: 'cut-40' },
      { format: 'openai', behaviour: 'ok', prefill: 'supported' },
    ],
    circuitBreaker: { failureThreshold: 7, windowSeconds: 60, cooldownSeconds: 60 },
  });
  test('seven mid-stream cuts open the circuit, the metrics and headers say so, and traffic moves on', async () => {
    const labels = `chain="${flaky}",provider="openai-default",model="${model(flaky, 0)}"`;
    for (let i = 0; i < 7; i++) {
      const id = newId();
      const raw = await rawStream(flaky, id);
      assert.equal(raw.trailers['x-llm-fallback-attempts'], `openai-default/${model(flaky, 0)}=connection, openai-supported/${model(flaky, 1)}=ok`);
      assert.ok(raw.text.endsWith('data: [DONE]\n\n'));
    }
    assert.equal(await metric(new RegExp(`^llm_fallback_attempts_total\\{${escape(labels)},class="ok"\\}`)), 0);
    assert.equal(await metric(new RegExp(`^llm_fallback_attempts_total\\{${escape(labels)},class="connection"\\}`)), 7);
    assert.equal(await metric(new RegExp(`^llm_fallback_circuit_state\\{provider="openai-default",model="${escape(model(flaky, 0))}"\\}`)), 2, 'circuit open');
    assert.equal(await metric(new RegExp(`^llm_fallback_stream_resumes_total\\{chain="${flaky}",outcome="continued"\\}`)), 7);
    // The eighth request skips the broken step without calling it.
    const id = newId();
    const raw = await rawStream(flaky, id);
    assert.equal(raw.headers['x-llm-fallback-attempts'], `openai-default/${model(flaky, 0)}=skipped, openai-supported/${model(flaky, 1)}=ok`);
    assert.equal(up.requestsFor(model(flaky, 0)).length, 7);
    assert.match(String(attemptsOf(await proxy.requestLog(id))[0]?.reason), /circuit open/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

before(async () => {
  up = await startLongAnswerUpstream();
  const config = [...chains].map(([name, spec]) => chainDocument(name, spec)).join('\n---\n');
  proxy = await startProxy({ config, env: { LONG_KEY: 'sk-long-provider-key' } });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0, timeout: 20_000 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0, timeout: 20_000 });
});

after(async () => {
  await proxy.close();
  await up.close();
});
