// Tracing with the OpenTelemetry SDK: loaded by tracing.ts only when OTEL_* turns it on.
// One SERVER span per request, named `{operation} {chain}` after the GenAI conventions
// (the chain is the model the caller asked for); under it one CLIENT span per attempt
// (`{operation} {model}`), one span per wait (`wait backoff`, `wait retry_after`,
// `wait hedge_delay`) and a zero-length span per skipped step (`skip {provider}/{model}`),
// all built from what the engine reports (engine/observer.ts). The caller's W3C traceparent
// is continued; each attempt's is sent upstream. The provider is not registered globally: a
// library embedding the proxy keeps its own.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TracingOptions } from '../config/tracing-options.ts';
import { addUsage, NO_USAGE, roundUSD } from '../core/cost.ts';
import { redactURL } from '../core/credentials.ts';
import type { Step } from '../core/types.ts';
import type { AttemptStart, ObservedAttempt, WaitKind } from '../engine/observer.ts';
import type { AttemptRecord, UpstreamFailure } from '../engine/outcome.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { boundedBatchProcessor } from './otel-export.ts';
import { withTraceHeaders } from './outgoing-trace.ts';
import {
  ATTR,
  circuitValue,
  isFailure,
  operationOf,
  recordAttributes,
  redactedAttributes,
  targetAttributes,
  waitAttributes,
  waitName,
  type AttributeMap,
} from './span-attributes.ts';
import type { FinishedRequest, RequestStart, RequestTrace, Tracing } from './tracing.ts';

const ROUTES: Readonly<Record<string, string>> = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  embeddings: '/v1/embeddings',
  messages: '/v1/messages',
};

export function otelTracing(options: TracingOptions, deps: { metrics: Metrics; logger: Logger }): Tracing {
  const exporter = new OTLPTraceExporter({ url: options.endpoint, headers: options.headers, timeoutMillis: options.timeoutMs });
  const processor = boundedBatchProcessor(exporter, options, (reason, spans) => deps.metrics.spansDropped.inc({ reason }, spans), deps.logger);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ ...options.resourceAttributes, [ATTR_SERVICE_NAME]: options.serviceName, [ATTR_SERVICE_VERSION]: VERSION }),
    sampler: samplerOf(options),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('llm-fallback', VERSION);
  const propagator = new W3CTraceContextPropagator();
  // A collector URL may carry credentials (user:pass@, ?token=): logged without them.
  deps.logger.info({ endpoint: redactURL(options.endpoint), sampler: options.sampler, ratio: options.samplerRatio }, 'exporting traces (OTLP/HTTP protobuf)');
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    request: (start) => new OtelRequestTrace(tracer, propagator, start),
    shutdown: () =>
      (stopped ??= provider.shutdown().catch((error: unknown) => {
        deps.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'span export at shutdown failed');
      })),
  };
}

const VERSION = '0.1.0';

function samplerOf(options: TracingOptions): Sampler {
  const ratio = new TraceIdRatioBasedSampler(options.samplerRatio);
  switch (options.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
  }
}

class OtelAttempt implements ObservedAttempt {
  readonly span: Span;
  readonly step: Step;
  readonly #headers: Record<string, string>;

  constructor(span: Span, step: Step, headers: Record<string, string>) {
    this.span = span;
    this.step = step;
    this.#headers = headers;
  }

  within<R>(run: () => R): R {
    return withTraceHeaders(this.#headers, run);
  }
}

class OtelRequestTrace implements RequestTrace {
  readonly traceId: string;
  readonly responseHeaders: Readonly<Record<string, string>>;
  readonly #tracer: Tracer;
  readonly #propagator: W3CTraceContextPropagator;
  readonly #start: RequestStart;
  readonly #operation: string;
  readonly #root: Span;
  readonly #context: Context;
  /** Attempts that answered: their spans end with the request (a stream's usage and a later failure come then). */
  #answered: Array<{ attempt: OtelAttempt; record: AttemptRecord }> = [];
  #finished = false;

  constructor(tracer: Tracer, propagator: W3CTraceContextPropagator, start: RequestStart) {
    this.#tracer = tracer;
    this.#propagator = propagator;
    this.#start = start;
    this.#operation = operationOf(start.route);
    const parent = propagator.extract(ROOT_CONTEXT, start.headers, defaultTextMapGetter);
    this.#root = tracer.startSpan(
      this.#text(`${this.#operation} ${start.chain}`),
      {
        kind: SpanKind.SERVER,
        startTime: Date.now() - start.startedAgoMs,
        attributes: this.#attributes({
          [ATTR.genAiOperation]: this.#operation,
          [ATTR.genAiRequestModel]: start.chain,
          [ATTR.httpMethod]: 'POST',
          [ATTR.httpRoute]: ROUTES[start.route] ?? start.route,
          'llm_fallback.chain': start.chain,
          'llm_fallback.request_id': start.requestId,
          'llm_fallback.stream': start.stream,
        }),
      },
      parent,
    );
    this.#context = trace.setSpan(parent, this.#root);
    const spanContext = this.#root.spanContext();
    this.traceId = spanContext.traceId;
    const flags = (spanContext.traceFlags & TraceFlags.SAMPLED) === 0 ? '00' : '01';
    // traceresponse: W3C Trace Context Level 2's response header (a draft, read by some tools).
    this.responseHeaders = { 'x-llm-fallback-trace-id': spanContext.traceId, traceresponse: `00-${spanContext.traceId}-${spanContext.spanId}-${flags}` };
  }

  /** Every span name and attribute string passes the redactor: names, models and hosts come from configs and callers. */
  #attributes(attributes: AttributeMap): AttributeMap {
    return redactedAttributes(attributes, this.#start.redact);
  }

  #text(text: string): string {
    return this.#start.redact(text);
  }

  attemptStarted(start: AttemptStart): ObservedAttempt {
    const { step } = start;
    const span = this.#tracer.startSpan(
      this.#text(`${this.#operation} ${step.model}`),
      {
        kind: SpanKind.CLIENT,
        attributes: this.#attributes({
          ...targetAttributes(this.#start.chain, this.#operation, step),
          'llm_fallback.attempt': start.attempt,
          'llm_fallback.circuit_state': circuitValue(start.circuit),
          ...(start.circuit === 'halfOpen' ? { 'llm_fallback.probe': true } : {}),
          ...(start.hedge ? { 'llm_fallback.hedged': true } : {}),
        }),
      },
      this.#context,
    );
    const headers: Record<string, string> = {};
    this.#propagator.inject(trace.setSpan(this.#context, span), headers, defaultTextMapSetter);
    return new OtelAttempt(span, step, headers);
  }

  recorded(record: AttemptRecord, attempt: ObservedAttempt | undefined, step: Step): void {
    if (attempt instanceof OtelAttempt) {
      if (record.outcome === 'ok') this.#answered.push({ attempt, record });
      else endAttempt(attempt.span, record, step, this.#start.redact);
      return;
    }
    // A step skipped before any attempt started: a zero-length span says which and why.
    const now = Date.now();
    const span = this.#tracer.startSpan(
      this.#text(`skip ${step.provider.name}/${step.model}`),
      {
        kind: SpanKind.INTERNAL,
        startTime: now,
        attributes: this.#attributes(targetAttributes(this.#start.chain, this.#operation, step)),
      },
      this.#context,
    );
    span.setAttributes(recordAttributes(record, step, this.#start.redact));
    span.end(now);
  }

  waitStarted(kind: WaitKind, step: Step, plannedMs: number): () => void {
    const span = this.#tracer.startSpan(
      `wait ${waitName(kind)}`,
      { kind: SpanKind.INTERNAL, attributes: this.#attributes(waitAttributes(kind, this.#start.chain, step, plannedMs)) },
      this.#context,
    );
    return () => span.end();
  }

  waited(kind: WaitKind, step: Step, ms: number): void {
    const now = Date.now();
    this.#tracer
      .startSpan(
        `wait ${waitName(kind)}`,
        { kind: SpanKind.INTERNAL, startTime: now - ms, attributes: this.#attributes(waitAttributes(kind, this.#start.chain, step, ms)) },
        this.#context,
      )
      .end(now);
  }

  failedLate(failure: UpstreamFailure, step: Step): void {
    this.#root.addEvent(
      'llm_fallback.answer_failed',
      this.#attributes({
        [ATTR.errorType]: failure.class,
        'llm_fallback.step': step.index,
        [ATTR.genAiProvider]: step.provider.name,
        [ATTR.genAiRequestModel]: step.model,
      }),
    );
    // Its record now says how it failed: end its span with that.
    this.#answered = this.#answered.filter(({ attempt, record }) => {
      if (record.outcome === 'ok') return true;
      endAttempt(attempt.span, record, attempt.step, this.#start.redact);
      return false;
    });
  }

  finish(request: FinishedRequest): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const { attempt, record } of this.#answered) endAttempt(attempt.span, record, attempt.step, this.#start.redact);
    this.#answered = [];
    const usage = request.attempts.reduce((sum, a) => (a.usage ? addUsage(sum, a.usage) : sum), NO_USAGE);
    const root = this.#root;
    root.setAttributes({
      [ATTR.httpStatus]: request.status,
      'llm_fallback.outcome': request.outcome,
      'llm_fallback.attempts': request.attempts.filter((a) => a.outcome !== 'skipped').length,
      'llm_fallback.skipped': request.attempts.filter((a) => a.outcome === 'skipped').length,
      'llm_fallback.cost_usd': roundUSD(request.attempts.reduce((sum, a) => sum + a.costUSD, 0)),
      [ATTR.genAiInputTokens]: usage.inputTokens,
      [ATTR.genAiOutputTokens]: usage.outputTokens,
    });
    if (request.winner) {
      root.setAttributes(
        this.#attributes({
          [ATTR.genAiProvider]: request.winner.provider,
          [ATTR.genAiResponseModel]: request.winner.model,
          'llm_fallback.winner.step': request.winner.step,
        }),
      );
    }
    if (request.streamEnd) root.setAttribute('llm_fallback.stream_end', this.#text(request.streamEnd));
    if (request.streamResume) root.setAttribute('llm_fallback.stream_resume', this.#text(request.streamResume));
    if (request.outcome === 'failure' || request.outcome === 'stream_failed') {
      const lastFailure = [...request.attempts].reverse().find((a) => isFailure(a.outcome));
      root.setAttribute(ATTR.errorType, lastFailure?.outcome ?? String(request.status));
      root.setStatus({ code: SpanStatusCode.ERROR, message: request.outcome });
    } else if (request.outcome === 'client_error') {
      root.setAttribute(ATTR.errorType, String(request.status));
    }
    root.end();
  }

  abandon(status: number): void {
    this.finish({ outcome: status >= 500 ? 'failure' : 'aborted', status, attempts: [] });
  }
}

function endAttempt(span: Span, record: AttemptRecord, step: Step, redact: (text: string) => string): void {
  span.setAttributes(recordAttributes(record, step, redact));
  if (isFailure(record.outcome)) span.setStatus({ code: SpanStatusCode.ERROR, message: record.outcome });
  span.end();
}
