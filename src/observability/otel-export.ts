// The export path of spans: a batch processor behind a bounded queue, so a slow or absent
// collector costs at most `maxQueueSize` spans of memory and never a request's time. Spans
// beyond the queue, and spans in an export that failed, are dropped and counted
// (llm_fallback_trace_spans_dropped_total{reason}); the first failure after a success is
// logged, and the recovery.
import { TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Logger } from './logger.ts';

export type DropReason = 'queue_full' | 'export_failed';

export interface ExportLimits {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduleDelayMs: number;
  exportTimeoutMs: number;
}

/**
 * The SDK's batch processor drops spans past its queue too, but only says so in a diagnostic
 * log; counting what is queued here (in on end, out when the exporter takes a batch) keeps
 * its queue from ever filling and makes every drop a number in /metrics.
 */
export function boundedBatchProcessor(
  exporter: SpanExporter,
  limits: ExportLimits,
  onDrop: (reason: DropReason, spans: number) => void,
  logger: Logger,
): SpanProcessor {
  let queued = 0;
  const counting = new CountingExporter(exporter, (taken) => (queued = Math.max(0, queued - taken)), onDrop, logger);
  const batch = new BatchSpanProcessor({
    exporter: counting,
    maxQueueSize: limits.maxQueueSize,
    maxExportBatchSize: Math.min(limits.maxExportBatchSize, limits.maxQueueSize),
    scheduledDelayMillis: limits.scheduleDelayMs,
    exportTimeoutMillis: limits.exportTimeoutMs,
  });
  return {
    onStart: (span, parent) => batch.onStart(span, parent),
    onEnd: (span) => {
      // Unsampled spans are not exported (the batch processor ignores them too).
      if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
      if (queued >= limits.maxQueueSize) {
        onDrop('queue_full', 1);
        return;
      }
      queued++;
      batch.onEnd(span);
    },
    forceFlush: () => batch.forceFlush(),
    shutdown: () => batch.shutdown(),
  };
}

class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #taken: (spans: number) => void;
  readonly #onDrop: (reason: DropReason, spans: number) => void;
  readonly #logger: Logger;
  #failing = false;

  constructor(inner: SpanExporter, taken: (spans: number) => void, onDrop: (reason: DropReason, spans: number) => void, logger: Logger) {
    this.#inner = inner;
    this.#taken = taken;
    this.#onDrop = onDrop;
    this.#logger = logger;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#taken(spans.length);
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        if (this.#failing) this.#logger.info({}, 'span export works again');
        this.#failing = false;
      } else {
        this.#onDrop('export_failed', spans.length);
        if (!this.#failing)
          this.#logger.warn(
            { err: result.error?.message ?? 'unknown error', spans: spans.length },
            'span export failed; spans are dropped (counted in llm_fallback_trace_spans_dropped_total) until it works again',
          );
        this.#failing = true;
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}
