// Tracing off (the default): no OpenTelemetry SDK module is even loaded, responses carry no
// trace headers, and upstreams get no traceparent (a caller's is not forwarded either).
// Its own file: node --test runs each file in its own process, so the module record is clean.
import { registerHooks } from 'node:module';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    resolved.push(specifier);
    return nextResolve(specifier, context);
  },
});

const { startFaultUpstream } = await import('../support/fault-upstream.ts');
const { chainYaml, startProxy } = await import('../support/proxy-harness.ts');

let up: Awaited<ReturnType<typeof startFaultUpstream>>;
let proxy: Awaited<ReturnType<typeof startProxy>>;

before(async () => {
  up = await startFaultUpstream();
  proxy = await startProxy({ config: chainYaml({ name: 'plain', baseURL: up.url, steps: [{ model: 'fault:503#off' }, { model: 'fault:ok#off' }] }) });
});

after(async () => {
  await proxy?.close();
  await up?.close();
});

test('no SDK loaded, no trace headers, no traceparent upstream', async () => {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    body: JSON.stringify({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  await res.text();
  assert.equal(res.headers.get('x-llm-fallback-trace-id'), null);
  assert.equal(res.headers.get('traceresponse'), null);
  for (const r of [...up.requestsFor('fault:503#off'), ...up.requestsFor('fault:ok#off')]) assert.equal(r.headers['traceparent'], undefined);
  const line = await proxy.requestLog(res.headers.get('x-request-id') ?? '');
  assert.equal(line['traceId'], undefined);
  const sdk = resolved.filter((s) => /@opentelemetry\/(sdk-trace|exporter-trace-otlp-proto|resources|core)|otel-tracing|otel-export/.test(s));
  assert.deepEqual(sdk, [], 'no tracing SDK module was resolved');
});
