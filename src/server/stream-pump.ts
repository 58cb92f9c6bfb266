// Streams, at the two ends of the proxy. readStream reads one upstream attempt's stream to
// its end, event by event, and says how it ended: complete, or a classified failure (cut,
// stall, time out, error event, close before any finish) that the engine can still act on,
// since a failure after the first byte is a failure of that target too. CallerStream is the
// caller's side: every byte bound for the caller is written by its one write() (response
// headers when the first byte goes, heartbeats while an answer is held, the trailers at the
// end). What goes between them (holding, splicing a continuation) is stream-reply.ts's work.
import { rewrittenSseData } from '../wire/sse-out.ts';
import type { Redactor } from '../core/redact.ts';
import { redactHeaders } from './http-io.ts';
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import { classifyErrorEvent } from '../core/failure.ts';
import type { FailureClass } from '../core/types.ts';
import { isJsonObject } from '../core/json.ts';
import type { StreamAnswer } from '../upstream/attempt.ts';
import type { StreamPiece } from '../wire/codec.ts';

/** Codes of the error event that ends a broken stream (stable: callers and dashboards read them). */
export const STREAM_FAILURE_CODES = ['upstream_stream_cut', 'upstream_stalled', 'upstream_timeout', 'upstream_error', 'upstream_stream_truncated'] as const;
export type StreamFailureCode = (typeof STREAM_FAILURE_CODES)[number] | `upstream_${FailureClass}`;

export type FailedEnd = {
  kind: 'failed';
  code: StreamFailureCode;
  message: string;
  /** The failure as the engine counts it for the target (breaker, health, metrics). */
  failure: FailureClass;
  /** The upstream's own error type and code, for an `upstream_error` (e.g. "overloaded_error"). */
  upstreamType?: string;
};

export type StreamEnd =
  | { kind: 'complete' }
  | FailedEnd
  /** The piece handler refused the stream (a restart whose text diverged from what was delivered). */
  | { kind: 'refused'; reason: string }
  | { kind: 'aborted' };

/**
 * What readStream hands each event to. `{refuse}` stops reading: the stream is not used
 * further (a restart that diverged); `{fail}` ends it as that failure (a refusal in a held answer).
 */
export type PieceHandled = void | { refuse: string } | { fail: FailedEnd };
/** A promise only when the handler must wait (a full buffer, the first bytes leaving): most events take no turn of the microtask queue. */
export type PieceHandler = (piece: StreamPiece) => PieceHandled | Promise<PieceHandled>;

/** Reads one attempt's stream (the events read before it won first) to its end; the connection is closed after. */
export async function readStream(answer: StreamAnswer, onPiece: PieceHandler, onMalformed: (data: string) => void): Promise<StreamEnd> {
  const { reader, scope } = answer;
  let end: StreamEnd = { kind: 'aborted' };
  try {
    end = await readPieces(answer, onPiece, onMalformed);
  } finally {
    if (end.kind !== 'complete') scope.controller.abort();
    scope.dispose();
    reader.close();
  }
  return end;
}

async function readPieces(answer: StreamAnswer, onPiece: PieceHandler, onMalformed: (data: string) => void): Promise<StreamEnd> {
  const { reader, scope, step, decoder } = answer;
  for (const piece of answer.first) {
    let handled = onPiece(piece);
    if (handled instanceof Promise) handled = await handled;
    if (handled) return endOf(handled);
  }
  for (;;) {
    const read = reader.poll() ?? (await reader.next(Math.min(step.timeouts.idleMs, scope.remainingMs())));
    if (scope.cause === 'client') return { kind: 'aborted' };
    if (read.kind === 'timeout') {
      const total = scope.remainingMs() <= 0;
      return {
        kind: 'failed',
        failure: 'timeout',
        code: total ? 'upstream_timeout' : 'upstream_stalled',
        message: total
          ? 'the upstream stream ran out of time (timeouts.totalMs or the chain deadline)'
          : `the upstream stream stalled for ${step.timeouts.idleMs}ms (timeouts.idleMs)`,
      };
    }
    if (read.kind === 'error') {
      if (scope.cause === 'timeout') return { kind: 'failed', failure: 'timeout', code: 'upstream_timeout', message: 'the upstream stream ran out of time' };
      return { kind: 'failed', failure: 'connection', code: 'upstream_stream_cut', message: 'the upstream connection broke in the middle of the stream' };
    }
    if (read.kind === 'end') {
      // Anthropic and Gemini send no [DONE]: a stream that ends after its finish is whole.
      return decoder.finished
        ? { kind: 'complete' }
        : {
            kind: 'failed',
            failure: 'serverError',
            code: 'upstream_stream_truncated',
            message: 'the upstream ended the stream before the answer was finished',
          };
    }
    const decoded = decoder.decode(read.message);
    if (decoded.kind === 'done') return { kind: 'complete' };
    if (decoded.kind === 'malformed') {
      onMalformed(read.message.data);
      continue;
    }
    const error = decoded.piece.chunks.find((chunk) => isJsonObject(chunk['error']));
    if (error && isJsonObject(error['error'])) {
      const inner = error['error'];
      const message = typeof inner['message'] === 'string' ? inner['message'] : 'upstream error';
      const upstreamType = [inner['type'], inner['code']].filter((v) => typeof v === 'string').join(' ');
      return {
        kind: 'failed',
        failure: classifyErrorEvent(error),
        code: 'upstream_error',
        message: `the upstream failed mid-stream: ${message}`,
        ...(upstreamType ? { upstreamType } : {}),
      };
    }
    let handled = onPiece(decoded.piece);
    if (handled instanceof Promise) handled = await handled;
    if (handled) return endOf(handled);
  }
}

function endOf(handled: { refuse: string } | { fail: FailedEnd }): StreamEnd {
  return 'fail' in handled ? handled.fail : { kind: 'refused', reason: handled.refuse };
}

/** SSE comment lines: ignored by every SSE client, but they keep idle connections alive. */
const HEARTBEAT = ': keep-alive\n\n';

/** The caller's response of a stream. */
export class CallerStream {
  readonly #res: ServerResponse;
  readonly #headers: () => Record<string, string>;
  readonly #redactor: () => Redactor;
  readonly #heartbeatMs: number;
  #timer: NodeJS.Timeout | undefined;
  #lastWriteAt = Date.now();
  /** Redacted text of this turn, not yet written. */
  #pending = '';
  #flushing = false;
  /** Set while the response's buffer is full: the next write waits for it. */
  #draining: Promise<void> | undefined;

  /**
   * `headers` are read when the response starts (the attempts so far are in them). `redactor`
   * is read at each write: the known credentials can grow while a stream runs (a reload).
   */
  constructor(res: ServerResponse, headers: () => Record<string, string>, heartbeatMs: number, redactor: () => Redactor) {
    this.#res = res;
    this.#headers = headers;
    this.#redactor = redactor;
    this.#heartbeatMs = heartbeatMs;
  }

  /** The response has begun: its status and headers are out. */
  get started(): boolean {
    return this.#res.headersSent;
  }

  get gone(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /** Heartbeats from now on whenever nothing was written for heartbeatMs (they start the response if need be). */
  keepAlive(): void {
    if (this.#timer) return;
    this.#lastWriteAt = Date.now();
    this.#timer = setInterval(
      () => {
        if (Date.now() - this.#lastWriteAt >= this.#heartbeatMs - 5) void this.write(HEARTBEAT);
      },
      Math.max(50, Math.floor(this.#heartbeatMs / 2)),
    );
    this.#timer.unref();
  }

  /**
   * Every caller-bound byte of a stream goes through here (or writeAsItCame). Events are answer
   * content: only the known credentials are taken out (upstreams echo keys mid-stream too),
   * never text that merely looks like a token. A promise when the caller of write must wait
   * (the response's buffer is full, or the first bytes are leaving); otherwise nothing to await.
   */
  write(text: string): Promise<void> | undefined {
    if (text === '' || this.gone) return undefined;
    const redactor = this.#redactor();
    // An event passed on as it came (Anthropic, Responses) may hide a key under two escapes:
    // its data written again (one escape undone), then redacted. Otherwise nothing to take out.
    return this.#send(redactor.redactAnswer(text, () => rewrittenSseData(text)));
  }

  /**
   * An upstream event's own text, when the redactor finds nothing in it (the event is whole:
   * the SSE reader joined whatever chunks it came in, so a key split across them is seen
   * whole here, as in write). Otherwise the event as `encode` writes it, redacted as write does.
   */
  writeAsItCame(raw: string, encode: () => string): Promise<void> | undefined {
    if (this.gone) return undefined;
    return this.#send(this.#redactor().redactAnswer(raw, encode));
  }

  /** Writes the last text, the trailers, and ends the response. The closing text (an error event quoting the upstream's error) and the trailers are redacted like error bodies. */
  finish(text: string, trailers: Record<string, string>): void {
    this.#stop();
    if (this.gone) return;
    this.#begin();
    const redactor = this.#redactor();
    const last = this.#pending + (text === '' ? '' : redactor.redact(text));
    this.#pending = '';
    if (last !== '') this.#res.write(last);
    this.#res.addTrailers(redactHeaders(trailers, redactor));
    this.#res.end();
  }

  /** Redacted text out: the first bytes at once, with the headers; the rest gathered into one write per turn. */
  #send(text: string): Promise<void> | undefined {
    if (text === '') return undefined;
    this.#lastWriteAt = Date.now();
    if (!this.#res.headersSent) {
      this.#begin();
      if (!this.#res.write(text)) return drained(this.#res);
      // Node holds a response's writes (corked) until the tick queue runs, and handling an
      // upstream stream that arrived in one piece never lets it run: the first bytes would wait
      // until every event already read was handled and the response ended. One turn of the
      // tick queue sends them now.
      return nextTick();
    }
    // Every event handled in this turn leaves in one res.write (one chunk of the chunked
    // encoding, one buffer to the socket), not one write per event: the tick queue runs
    // once the promise chain handling the events that were read has nothing left to do.
    this.#pending += text;
    if (!this.#flushing) {
      this.#flushing = true;
      process.nextTick(this.#flush);
    }
    return this.#draining;
  }

  readonly #flush = (): void => {
    this.#flushing = false;
    const text = this.#pending;
    this.#pending = '';
    if (text === '' || this.gone) return;
    // A full buffer holds the reader back at its next write, until the caller has read it.
    if (!this.#res.write(text) && !this.#draining) {
      this.#draining = drained(this.#res).then(() => {
        this.#draining = undefined;
      });
    }
  };

  /** Stops the heartbeats without ending the response (the caller gets an ordinary error reply instead). */
  abandon(): void {
    this.#stop();
  }

  #begin(): void {
    if (this.#res.headersSent) return;
    this.#res.writeHead(200, {
      ...redactHeaders(this.#headers(), this.#redactor()),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      // Cost is known only when usage arrives at the end, and a stream resumed on another
      // step has more attempts than the headers could list: both follow as trailers.
      trailer: STREAM_TRAILERS.join(', '),
    });
    // Not flushed on their own: the status and headers leave in the same write as the first
    // bytes of the body, which always follow at once (one write, and one wake-up of the caller,
    // fewer before its first event).
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

export const STREAM_TRAILERS = ['x-llm-fallback-cost-usd', 'x-llm-fallback-attempts', 'x-llm-fallback-provider', 'x-llm-fallback-model'] as const;

function nextTick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
