// Traces, checked where an operator sees them: the proxy exports OTLP/HTTP protobuf to a real
// OpenTelemetry Collector (test/support/otel-collector.ts), and the spans asserted on are the
// ones the collector decoded and passed on. Chains go through 429s with Retry-After, backoff,
// a skipped step, a hedge and total failure; the tree, the GenAI attributes, the statuses,
// the caller's traceparent and the upstreams' are checked, and no prompt, completion or key
// may appear anywhere in what was exported.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startCollector, type Collector, type ExportedSpan } from '../support/otel-collector.ts';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const KEY = 'sk-trace-test-Zq8Wm2Xv5Rt9Lp4Nb7';
const PROMPT = 'PROMPT-MARKER-7f3a the secret recipe is 42 cups of flour';
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const ERROR = 2;

let up: FaultUpstream;
let collector: Collector;
let proxy: ProxyHarness;
let client: OpenAI;

function chains(upstream: string): string {
  const doc = (name: string, spec: Record<string, unknown>) =>
    JSON.stringify({ apiVersion: 'llmfallback.io/v1alpha1', kind: 'FallbackChain', metadata: { name }, spec });
  const providers = [
    { name: 'primary', api: 'openai', baseURL: upstream, apiKey: { env: 'TRACE_KEY' } },
    { name: 'keyless', api: 'openai', baseURL: upstream, apiKey: { env: 'TRACE_KEY_NOT_SET' } },
    { name: 'backup', api: 'openai', baseURL: upstream, apiKey: { env: 'TRACE_KEY' } },
  ];
  return [
    // 429 with Retry-After twice, a step without its key, a 500 with backoff, then an answer.
    doc('traced', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:429-retry-after-ms-30#traced', retries: 1 },
        { provider: 'keyless', model: 'gpt-never' },
        { provider: 'backup', model: 'fault:500-then-ok#traced', retries: 1, price: { inputPerMTok: 1, outputPerMTok: 2 } },
      ],
      policy: { backoff: { baseMs: 20, maxMs: 40 }, deadlineMs: 10000 },
    }),
    // Every step fails.
    doc('doomed', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:503#doomed', retries: 0 },
        { provider: 'backup', model: 'fault:502#doomed', retries: 0 },
      ],
      policy: { backoff: { baseMs: 1, maxMs: 2 }, deadlineMs: 10000 },
    }),
    // The first target is silent past the hedge delay; the hedge answers first.
    doc('hedged', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:slow-first-token-3000#hedged', retries: 0 },
        { provider: 'backup', model: 'fault:ok#hedged', retries: 0 },
      ],
      policy: { hedge: { afterMs: 50 }, deadlineMs: 10000 },
    }),
    // A stream whose first step fails before its first event.
    doc('streamed', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:503#streamed', retries: 0 },
        { provider: 'backup', model: 'fault:ok#streamed', retries: 0 },
      ],
      policy: { deadlineMs: 10000 },
    }),
    // A stream cut after its first events: the engine goes on with the next step.
    doc('resumed', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:cut-after-2#resumed', retries: 0 },
        { provider: 'backup', model: 'fault:ok#resumed', retries: 0 },
      ],
      policy: { deadlineMs: 10000 },
    }),
    // Names that are not constants carry a key (a config written carelessly), to an echoing upstream.
    doc('key-in-names', {
      providers,
      steps: [
        { provider: 'primary', model: `fault:401-echo-key#${KEY}`, retries: 0 },
        { provider: 'keyless', model: `gpt-${KEY}` },
        { provider: 'backup', model: `fault:echo-key#${KEY}`, retries: 0 },
      ],
      policy: { deadlineMs: 10000 },
    }),
    // An upstream that answers with the key it was sent.
    doc('echo', {
      providers,
      steps: [
        { provider: 'primary', model: 'fault:401-echo-key#echo', retries: 0 },
        { provider: 'backup', model: 'fault:echo-key#echo', retries: 0 },
      ],
      policy: { deadlineMs: 10000 },
    }),
  ].join('\n---\n');
}

before(async () => {
  [up, collector] = await Promise.all([startFaultUpstream(), startCollector()]);
  proxy = await startProxy({
    config: chains(up.url),
    env: { TRACE_KEY: KEY, OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_SERVICE_NAME: 'llm-fallback-test' },
  });
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key-unused', maxRetries: 0 });
});

after(async () => {
  await proxy?.close();
  await collector?.close();
  await up?.close();
});

const byName = (spans: ExportedSpan[], name: string) => spans.filter((s) => s.name === name).sort((a, b) => a.startMs - b.startMs);
function only(spans: ExportedSpan[], name: string): ExportedSpan {
  const found = byName(spans, name);
  assert.equal(found.length, 1, `one span named ${name}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0] as ExportedSpan;
}
const rootOf = (spans: ExportedSpan[]) => spans.find((s) => s.kind === SERVER);
const settled = (count: number) => (spans: ExportedSpan[]) => spans.length >= count && rootOf(spans) !== undefined;

describe('traces exported to a real collector', { timeout: 60_000 }, () => {
  test("a request that waited on Retry-After, skipped a step and backed off: one span each, under the request, continuing the caller's trace", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'traced', messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` } })
      .withResponse();
    assert.match(data.choices[0]?.message.content ?? '', /Hello from/);
    // The response names the trace: the caller's, continued.
    assert.equal(response.headers.get('x-llm-fallback-trace-id'), CALLER_TRACE);
    const traceresponse = response.headers.get('traceresponse') ?? '';
    assert.match(traceresponse, new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));

    // root + 2 attempts on primary + retry_after wait + skip + 2 attempts on backup + backoff wait
    const spans = await collector.trace(CALLER_TRACE, settled(8));
    assert.equal(spans.length, 8, spans.map((s) => s.name).join(', '));
    const root = rootOf(spans) as ExportedSpan;
    assert.equal(root.name, 'chat traced');
    assert.equal(root.parentSpanId, CALLER_SPAN, "the request span is a child of the caller's span");
    assert.equal(traceresponse.split('-')[2], root.spanId);
    assert.equal(root.resource['service.name'], 'llm-fallback-test');
    for (const span of spans.filter((s) => s !== root)) assert.equal(span.parentSpanId, root.spanId, `${span.name} is a child of the request span`);

    assert.deepEqual(
      { ...root.attributes, 'llm_fallback.request_id': 'x' },
      {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'traced',
        'gen_ai.response.model': 'fault:500-then-ok#traced',
        'gen_ai.provider.name': 'backup',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.usage.output_tokens': 5,
        'http.request.method': 'POST',
        'http.route': '/v1/chat/completions',
        'http.response.status_code': 200,
        'llm_fallback.chain': 'traced',
        'llm_fallback.request_id': 'x',
        'llm_fallback.stream': false,
        'llm_fallback.outcome': 'success',
        'llm_fallback.attempts': 4,
        'llm_fallback.skipped': 1,
        'llm_fallback.cost_usd': 0.00002,
        'llm_fallback.winner.step': 2,
      },
    );
    assert.equal(root.attributes['llm_fallback.request_id'], response.headers.get('x-request-id'));
    assert.notEqual(root.status.code, ERROR);

    const limited = byName(spans, 'chat fault:429-retry-after-ms-30#traced');
    assert.equal(limited.length, 2);
    limited.forEach((span, i) => {
      assert.equal(span.kind, CLIENT);
      assert.equal(span.status.code, ERROR);
      assert.equal(span.status.message, 'rateLimited');
      assert.equal(span.attributes['error.type'], 'rateLimited');
      assert.equal(span.attributes['http.response.status_code'], 429);
      assert.equal(span.attributes['llm_fallback.attempt'], i + 1);
      assert.equal(span.attributes['llm_fallback.step'], 0);
      assert.equal(span.attributes['llm_fallback.outcome'], 'rateLimited');
      assert.equal(span.attributes['llm_fallback.circuit_state'], 'closed');
      assert.equal(span.attributes['gen_ai.provider.name'], 'primary');
      assert.equal(span.attributes['gen_ai.operation.name'], 'chat');
      assert.equal(span.attributes['server.address'], '127.0.0.1');
      assert.equal(span.attributes['server.port'], up.port);
    });
    const retryAfter = only(spans, 'wait retry_after');
    assert.equal(retryAfter.kind, INTERNAL);
    assert.equal(retryAfter.attributes['llm_fallback.wait.ms'], 30);
    assert.equal(retryAfter.attributes['llm_fallback.step'], 0);
    // The wait sits between the two attempts it separated.
    assert.ok(retryAfter.startMs >= (limited[0] as ExportedSpan).endMs - 1 && retryAfter.endMs <= (limited[1] as ExportedSpan).startMs + 1);
    assert.ok(retryAfter.endMs - retryAfter.startMs >= 25, `waited ${retryAfter.endMs - retryAfter.startMs}ms`);

    const skip = only(spans, 'skip keyless/gpt-never');
    assert.equal(skip.attributes['llm_fallback.outcome'], 'skipped');
    assert.match(String(skip.attributes['llm_fallback.skip_reason']), /no API key/);
    assert.equal(skip.attributes['llm_fallback.step'], 1);

    const backup = byName(spans, 'chat fault:500-then-ok#traced');
    assert.equal(backup.length, 2);
    assert.equal(backup[0]?.attributes['error.type'], 'serverError');
    assert.equal(backup[1]?.status.code, 0);
    assert.equal(backup[1]?.attributes['llm_fallback.outcome'], 'ok');
    assert.equal(backup[1]?.attributes['gen_ai.response.model'], 'fault:500-then-ok#traced');
    assert.equal(backup[1]?.attributes['gen_ai.usage.input_tokens'], 10);
    assert.equal(backup[1]?.attributes['gen_ai.usage.output_tokens'], 5);
    assert.equal(backup[1]?.attributes['llm_fallback.cost_usd'], 0.00002);
    const backoff = only(spans, 'wait backoff');
    assert.equal(backoff.attributes['llm_fallback.step'], 2);

    // Each upstream request carried its own attempt's span as parent, in the caller's trace.
    const attempts = [...limited, ...backup];
    const sent = [...up.requestsFor('fault:429-retry-after-ms-30#traced'), ...up.requestsFor('fault:500-then-ok#traced')];
    assert.equal(sent.length, 4);
    assert.deepEqual(sent.map((r) => r.headers['traceparent']).sort(), attempts.map((s) => `00-${CALLER_TRACE}-${s.spanId}-01`).sort());

    // The request's log line names the trace.
    const line = await proxy.requestLog(response.headers.get('x-request-id') ?? '');
    assert.equal(line['traceId'], CALLER_TRACE);
  });

  test('every step failed: the request span and each attempt are errors, with the error class', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'doomed', messages: [{ role: 'user', content: PROMPT }] })
      .withResponse()
      .catch((error: unknown) => {
        if (error instanceof OpenAI.APIError) return { response: { headers: error.headers ?? new Headers(), status: error.status } };
        throw error;
      });
    assert.equal(response.status, 502);
    const traceId = response.headers.get('x-llm-fallback-trace-id') ?? '';
    assert.match(traceId, /^[0-9a-f]{32}$/);
    const spans = await collector.trace(traceId, settled(3));
    const root = rootOf(spans) as ExportedSpan;
    assert.equal(root.parentSpanId, '', 'no caller trace: a new root');
    assert.equal(root.status.code, ERROR);
    assert.equal(root.attributes['llm_fallback.outcome'], 'failure');
    assert.equal(root.attributes['error.type'], 'serverError');
    assert.equal(root.attributes['http.response.status_code'], 502);
    assert.equal(root.attributes['gen_ai.response.model'], undefined);
    assert.deepEqual(
      spans
        .filter((s) => s.kind === CLIENT)
        .map((s) => [s.attributes['http.response.status_code'], s.status.code])
        .sort(),
      [
        [502, ERROR],
        [503, ERROR],
      ],
    );
  });

  test('a hedge: the silence before it is a wait span, the hedge wins and the first attempt is cancelled (not an error)', async () => {
    const { response } = await client.chat.completions.create({ model: 'hedged', messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    const traceId = response.headers.get('x-llm-fallback-trace-id') ?? '';
    const spans = await collector.trace(traceId, settled(4));
    const delay = only(spans, 'wait hedge_delay');
    // The hedge was due after 50 ms (a timer may fire a millisecond early against performance.now()).
    assert.ok(Number(delay.attributes['llm_fallback.wait.ms']) >= 48, String(delay.attributes['llm_fallback.wait.ms']));
    assert.ok(delay.endMs - delay.startMs >= 48);
    assert.equal(delay.attributes['gen_ai.request.model'], 'fault:slow-first-token-3000#hedged');
    const slow = only(spans, 'chat fault:slow-first-token-3000#hedged');
    assert.equal(slow.attributes['llm_fallback.outcome'], 'cancelled');
    assert.notEqual(slow.status.code, ERROR);
    const hedge = only(spans, 'chat fault:ok#hedged');
    assert.equal(hedge.attributes['llm_fallback.hedged'], true);
    assert.equal(hedge.attributes['llm_fallback.hedge'], 'won');
    assert.equal(rootOf(spans)?.attributes['llm_fallback.winner.step'], 1);
  });

  test("a stream: the winning attempt's span lasts the stream and carries its usage", async () => {
    const stream = await client.chat.completions
      .create({ model: 'streamed', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: PROMPT }] })
      .withResponse();
    const traceId = stream.response.headers.get('x-llm-fallback-trace-id') ?? '';
    let text = '';
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? '';
    assert.match(text, /Hello from/);
    const spans = await collector.trace(traceId, settled(3));
    assert.equal(spans.length, 3);
    const root = rootOf(spans) as ExportedSpan;
    assert.equal(root.attributes['llm_fallback.stream'], true);
    assert.equal(only(spans, 'chat fault:503#streamed').attributes['error.type'], 'serverError');
    const winner = spans.find((s) => s.attributes['llm_fallback.outcome'] === 'ok') as ExportedSpan;
    assert.equal(winner.attributes['gen_ai.usage.output_tokens'], 5);
    assert.ok(winner.endMs <= root.endMs);
  });

  test('a stream cut after the caller got its first events: the cut attempt ends as a connection error, the request span has the event, the next attempt follows', async () => {
    const stream = await client.chat.completions.create({ model: 'resumed', stream: true, messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    const traceId = stream.response.headers.get('x-llm-fallback-trace-id') ?? '';
    try {
      for await (const chunk of stream.data) void chunk;
    } catch {
      // A resume that cannot verify ends the stream with an error event: the trace is the same.
    }
    const spans = await collector.trace(traceId, settled(3));
    const cut = only(spans, 'chat fault:cut-after-2#resumed');
    assert.equal(cut.status.code, ERROR);
    assert.equal(cut.attributes['error.type'], 'connection');
    const root = rootOf(spans) as ExportedSpan;
    const event = root.events.find((e) => e.name === 'llm_fallback.answer_failed');
    assert.deepEqual(event?.attributes, {
      'error.type': 'connection',
      'llm_fallback.step': 0,
      'gen_ai.provider.name': 'primary',
      'gen_ai.request.model': 'fault:cut-after-2#resumed',
    });
    assert.equal(only(spans, 'chat fault:ok#resumed').parentSpanId, root.spanId);
  });

  test("a caller's trace that it did not sample is continued unsampled (parent-based sampling, the default): same trace id, flags 00 to the upstream and back", async () => {
    const unsampled = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const { response } = await client.chat.completions
      .create({ model: 'streamed', messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${unsampled}-${CALLER_SPAN}-00` } })
      .withResponse();
    assert.equal(response.headers.get('x-llm-fallback-trace-id'), unsampled);
    assert.match(response.headers.get('traceresponse') ?? '', new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`));
    const sent = up.requestsFor('fault:ok#streamed').map((r) => String(r.headers['traceparent']));
    assert.ok(
      sent.some((t) => new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`).test(t)),
      sent.join(', '),
    );
  });

  // The review: span attributes and names were not redacted ("no credential by construction"),
  // so a key in any name a config or caller supplies went to the collector as it was.
  test('every span name and string attribute passes the redactor: a key in a model name is not exported', async () => {
    const { response } = await client.chat.completions.create({ model: 'key-in-names', messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    const traceId = response.headers.get('x-llm-fallback-trace-id') ?? '';
    // root + the refused attempt + the skipped step + the answering attempt
    const spans = await collector.trace(traceId, settled(4));
    const exported = JSON.stringify(spans);
    for (const secret of [KEY, 'Zq8Wm2Xv5Rt9Lp4Nb7']) assert.ok(!exported.includes(secret), `"${secret}" is not in the exported spans: ${exported}`);
    const refused = only(spans, 'chat fault:401-echo-key#[REDACTED]');
    assert.equal(refused.attributes['gen_ai.request.model'], 'fault:401-echo-key#[REDACTED]');
    assert.equal(refused.attributes['error.type'], 'authFailed');
    const skipped = only(spans, 'skip keyless/gpt-[REDACTED]');
    assert.equal(skipped.attributes['gen_ai.request.model'], 'gpt-[REDACTED]');
    assert.equal(rootOf(spans)?.attributes['gen_ai.response.model'], 'fault:echo-key#[REDACTED]');
  });

  test('no prompt, no completion and no key anywhere in what was exported, even from an upstream that echoes its key', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    const traceId = response.headers.get('x-llm-fallback-trace-id') ?? '';
    await collector.trace(traceId, settled(3));
    const completion = data.choices[0]?.message.content ?? '';
    assert.ok(completion.length > 0);
    const exported = collector.raw.join('\n');
    assert.ok(exported.includes(traceId));
    for (const secret of [KEY, 'Zq8Wm2Xv5Rt9Lp4Nb7', 'PROMPT-MARKER-7f3a', 'secret recipe', 'caller-key-unused', 'Hello from']) {
      assert.ok(!exported.includes(secret), `"${secret}" is not in the exported spans`);
    }
  });
});
