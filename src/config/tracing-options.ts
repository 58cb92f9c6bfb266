// Tracing is configured by the OpenTelemetry SDK's standard environment variables, read here
// from the environment options.ts hands over (this module never reads process.env itself).
//
// Off by default. On when OTEL_TRACES_EXPORTER=otlp, or when it is unset and an OTLP endpoint
// is given (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT). Off whatever
// else is set when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The spec's default
// exporter is otlp, but a sidecar that starts exporting to localhost:4318 because nobody said
// otherwise would be a surprise: an endpoint or an explicit exporter is asked for.
import { UsageError } from './options.ts';

export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';
const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

export interface TracingOptions {
  enabled: boolean;
  /** Full URL spans are POSTed to (OTLP/HTTP protobuf). */
  endpoint: string;
  headers: Record<string, string>;
  /** One export request's limit (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT). */
  timeoutMs: number;
  sampler: SamplerName;
  /** The ratio of the traceidratio samplers, 0..1. */
  samplerRatio: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  /** Spans waiting for export beyond this are dropped, and counted (OTEL_BSP_MAX_QUEUE_SIZE). */
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduleDelayMs: number;
  exportTimeoutMs: number;
}

type Env = Readonly<Record<string, string | undefined>>;

export const TRACING_DEFAULTS = {
  endpoint: 'http://localhost:4318/v1/traces',
  timeoutMs: 10_000,
  sampler: 'parentbased_always_on',
  serviceName: 'llm-fallback',
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduleDelayMs: 5000,
  exportTimeoutMs: 30_000,
} as const;

export function parseTracingOptions(env: Env): TracingOptions {
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const exporter = get('OTEL_TRACES_EXPORTER')?.toLowerCase();
  if (exporter !== undefined && exporter !== 'otlp' && exporter !== 'none') {
    throw new UsageError(`OTEL_TRACES_EXPORTER: "${exporter}" is not supported; use otlp (OTLP over HTTP/protobuf) or none`);
  }
  const tracesEndpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const baseEndpoint = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const disabled = get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true';
  const enabled = !disabled && (exporter === 'otlp' || (exporter === undefined && (tracesEndpoint !== undefined || baseEndpoint !== undefined)));
  const protocol = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? get('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (enabled && protocol !== undefined && protocol !== 'http/protobuf') {
    throw new UsageError(`OTEL_EXPORTER_OTLP_PROTOCOL: "${protocol}" is not supported; spans are exported as OTLP over HTTP/protobuf (http/protobuf)`);
  }
  // Per the spec: the signal-specific endpoint is used as given, the base one gets /v1/traces appended.
  const endpoint = tracesEndpoint ?? (baseEndpoint ? `${baseEndpoint.replace(/\/+$/, '')}/v1/traces` : TRACING_DEFAULTS.endpoint);
  if (enabled) checkUrl(endpoint);
  const sampler = (get('OTEL_TRACES_SAMPLER')?.toLowerCase() ?? TRACING_DEFAULTS.sampler) as SamplerName;
  if (!SAMPLERS.includes(sampler)) throw new UsageError(`OTEL_TRACES_SAMPLER: "${sampler}" is not one of ${SAMPLERS.join(', ')}`);
  const ratioText = get('OTEL_TRACES_SAMPLER_ARG');
  const samplerRatio = ratioText === undefined ? 1 : Number(ratioText);
  if (!(samplerRatio >= 0 && samplerRatio <= 1)) throw new UsageError(`OTEL_TRACES_SAMPLER_ARG: "${ratioText}" is not a ratio between 0 and 1`);
  const resourceAttributes = parsePairs(get('OTEL_RESOURCE_ATTRIBUTES'), 'OTEL_RESOURCE_ATTRIBUTES');
  return {
    enabled,
    endpoint,
    headers: {
      ...parsePairs(get('OTEL_EXPORTER_OTLP_HEADERS'), 'OTEL_EXPORTER_OTLP_HEADERS'),
      ...parsePairs(get('OTEL_EXPORTER_OTLP_TRACES_HEADERS'), 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
    },
    timeoutMs: positive(
      get('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? get('OTEL_EXPORTER_OTLP_TIMEOUT'),
      TRACING_DEFAULTS.timeoutMs,
      'OTEL_EXPORTER_OTLP_TIMEOUT',
    ),
    sampler,
    samplerRatio,
    serviceName: get('OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? TRACING_DEFAULTS.serviceName,
    resourceAttributes,
    maxQueueSize: positive(get('OTEL_BSP_MAX_QUEUE_SIZE'), TRACING_DEFAULTS.maxQueueSize, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: positive(get('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'), TRACING_DEFAULTS.maxExportBatchSize, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    scheduleDelayMs: positive(get('OTEL_BSP_SCHEDULE_DELAY'), TRACING_DEFAULTS.scheduleDelayMs, 'OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMs: positive(get('OTEL_BSP_EXPORT_TIMEOUT'), TRACING_DEFAULTS.exportTimeoutMs, 'OTEL_BSP_EXPORT_TIMEOUT'),
  };
}

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`OTEL_EXPORTER_OTLP_ENDPOINT: "${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`OTEL_EXPORTER_OTLP_ENDPOINT: "${url}" is not an http(s) URL`);
}

/** key1=value1,key2=value2 with percent-encoded values (W3C Baggage format, as the spec says). */
function parsePairs(text: string | undefined, name: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  if (!text) return pairs;
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${name}: "${item.trim()}" is not key=value`);
    try {
      pairs[decodeURIComponent(item.slice(0, eq).trim())] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw new UsageError(`${name}: "${item.trim()}" is not percent-encoded correctly`);
    }
  }
  return pairs;
}

function positive(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`${name}: "${text}" is not a positive whole number`);
  return value;
}
