// Which OTEL_* settings turn tracing on, where spans go, and which settings are refused at
// startup with a clear message (a typo must not silently leave tracing off or mis-sample).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/config/options.ts';
import { parseTracingOptions, TRACING_DEFAULTS } from '../../src/config/tracing-options.ts';

test('off by default, and off whatever else is set when the SDK is disabled or the exporter is none', () => {
  assert.equal(parseTracingOptions({}).enabled, false);
  assert.equal(parseTracingOptions({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }).enabled, false);
  assert.equal(parseTracingOptions({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).enabled, false);
  assert.equal(parseTracingOptions({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).enabled, false);
});

test('on with an OTLP endpoint or OTEL_TRACES_EXPORTER=otlp; the base endpoint gets /v1/traces, the traces one is used as given', () => {
  assert.deepEqual(pick(parseTracingOptions({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })), {
    enabled: true,
    endpoint: 'http://collector:4318/v1/traces',
  });
  assert.deepEqual(
    pick(parseTracingOptions({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other:4318' })),
    { enabled: true, endpoint: 'http://c:4318/custom' },
  );
  assert.deepEqual(pick(parseTracingOptions({ OTEL_TRACES_EXPORTER: 'otlp' })), { enabled: true, endpoint: TRACING_DEFAULTS.endpoint });
});

test('sampler, headers, resource attributes and queue limits from their standard variables', () => {
  const o = parseTracingOptions({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=a',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
    OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,k8s.pod.name=p-1',
    OTEL_BSP_MAX_QUEUE_SIZE: '100',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
  });
  assert.equal(o.sampler, 'parentbased_traceidratio');
  assert.equal(o.samplerRatio, 0.25);
  assert.deepEqual(o.headers, { authorization: 'Bearer abc', 'x-tenant': 'b' });
  assert.equal(o.serviceName, 'from-resource');
  assert.equal(o.resourceAttributes['k8s.pod.name'], 'p-1');
  assert.equal(o.maxQueueSize, 100);
  assert.equal(o.timeoutMs, 2000);
  assert.equal(parseTracingOptions({ OTEL_SERVICE_NAME: 'named', OTEL_RESOURCE_ATTRIBUTES: 'service.name=r' }).serviceName, 'named');
  assert.equal(parseTracingOptions({}).sampler, 'parentbased_always_on');
});

test('settings it cannot honour are refused at startup', () => {
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ OTEL_TRACES_EXPORTER: 'jaeger' }, /OTEL_TRACES_EXPORTER: "jaeger" is not supported/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /http\/protobuf/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /not an http\(s\) URL/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER: "sometimes"/],
    [{ OTEL_TRACES_SAMPLER_ARG: '1.5' }, /between 0 and 1/],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '0' }, /OTEL_BSP_MAX_QUEUE_SIZE/],
    [{ OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, /not key=value/],
  ];
  for (const [env, message] of refused)
    assert.throws(
      () => parseTracingOptions(env),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      JSON.stringify(env),
    );
});

function pick(o: { enabled: boolean; endpoint: string }): { enabled: boolean; endpoint: string } {
  return { enabled: o.enabled, endpoint: o.endpoint };
}
