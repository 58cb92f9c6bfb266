// Everything after the first byte of a stream has gone to the caller. No fallback is
// possible any more, so every way the upstream can fail here ends the stream with an
// error event in the caller's format and no terminator ([DONE], message_stop): SDKs raise
// instead of returning a truncated answer. The pump reads canonical chunks (the upstream
// adapter's decoder translates) and writes through the caller's encoder.
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Usage } from '../core/types.ts';
import type { StreamAnswer } from '../upstream/attempt.ts';
import { isJsonObject, usageFromOpenAI, type JsonObject } from '../upstream/openai.ts';
import type { StreamPiece } from '../upstream/wire.ts';

export type FailedEnd = {
  kind: 'failed';
  code: string;
  message: string;
  /** The upstream's own error type and code, for an `upstream_error` (e.g. "overloaded_error"). */
  upstreamType?: string;
};

export type StreamEnd =
  | { kind: 'complete' }
  | FailedEnd
  | { kind: 'aborted' };

export interface PumpResult {
  end: StreamEnd;
  usage?: Usage;
  /** Writes of upstream events to the caller. */
  chunks: number;
}

/** Writes the caller's wire format: OpenAI's `data: …`, Anthropic's `event: …\ndata: …`. */
export interface StreamEncoder {
  /** The SSE text for one upstream event; '' when nothing of it goes to the caller. */
  encode(piece: StreamPiece): string;
  /** What ends a complete stream (`data: [DONE]`, or the message_delta/message_stop still owed). */
  complete(): string;
  /** What ends a failed stream: an error event in the caller's format, and no terminator. */
  fail(end: FailedEnd): string;
}

export interface PumpOptions {
  encoder: StreamEncoder;
  /** Applied to every event written to the caller: upstreams echo keys mid-stream too. */
  redact: (text: string) => string;
  /** Applied to the closing text (an error event quoting the upstream's error) and the trailers. */
  redactEnd: (text: string) => string;
  onMalformed: (data: string) => void;
  /** HTTP trailers computed once the stream is over (cost is only known then). */
  trailers: (result: PumpResult) => Record<string, string>;
}

/** Adapts one OpenAI chunk for an OpenAI caller; undefined when it must not be forwarded. */
export function chunkForCaller(chunk: JsonObject, answeredBy: string, callerWantsUsage: boolean): JsonObject | undefined {
  const usageOnly = Array.isArray(chunk['choices']) && chunk['choices'].length === 0 && isJsonObject(chunk['usage']);
  if (usageOnly && !callerWantsUsage) return undefined;
  const out: JsonObject = { ...chunk };
  if (typeof out['model'] !== 'string' || out['model'] === '') out['model'] = answeredBy;
  if (!callerWantsUsage) delete out['usage'];
  return out;
}

export async function pumpStream(answer: StreamAnswer, res: ServerResponse, options: PumpOptions): Promise<PumpResult> {
  const { reader, scope } = answer;
  const result: PumpResult = { end: { kind: 'complete' }, chunks: 0 };
  const send = async (piece: StreamPiece): Promise<void> => {
    // Usage is read from the canonical chunks, so it is right whatever format the upstream spoke.
    for (const chunk of piece.chunks) result.usage = usageFromOpenAI(chunk) ?? result.usage;
    const text = options.redact(options.encoder.encode(piece));
    if (text === '') return;
    result.chunks++;
    if (!res.write(text)) await drained(res);
  };
  try {
    for (const piece of answer.first) await send(piece);
    result.end = await pumpRest(answer, options, send);
  } finally {
    if (result.end.kind !== 'complete') scope.controller.abort();
    scope.dispose();
    reader.close();
  }
  finishResponse(res, result.end, options, () => options.trailers(result));
  return result;
}

async function pumpRest(answer: StreamAnswer, options: PumpOptions, send: (piece: StreamPiece) => Promise<void>): Promise<StreamEnd> {
  const { reader, scope, step, decoder } = answer;
  for (;;) {
    const read = await reader.next(Math.min(step.timeouts.idleMs, scope.remainingMs()));
    if (scope.cause === 'client') return { kind: 'aborted' };
    if (read.kind === 'timeout') {
      const total = scope.remainingMs() <= 0;
      return { kind: 'failed', code: total ? 'upstream_timeout' : 'upstream_stalled', message: total ? 'the upstream stream ran out of time (timeouts.totalMs or the chain deadline)' : `the upstream stream stalled for ${step.timeouts.idleMs}ms (timeouts.idleMs)` };
    }
    if (read.kind === 'error') {
      if (scope.cause === 'timeout') return { kind: 'failed', code: 'upstream_timeout', message: 'the upstream stream ran out of time' };
      return { kind: 'failed', code: 'upstream_stream_cut', message: 'the upstream connection broke in the middle of the stream' };
    }
    if (read.kind === 'end') {
      // Anthropic and Gemini send no [DONE]: a stream that ends after its finish is whole.
      return decoder.finished ? { kind: 'complete' } : { kind: 'failed', code: 'upstream_stream_truncated', message: 'the upstream ended the stream before the answer was finished' };
    }
    const decoded = decoder.decode(read.message);
    if (decoded.kind === 'done') return { kind: 'complete' };
    if (decoded.kind === 'malformed') {
      options.onMalformed(read.message.data);
      continue;
    }
    const error = decoded.piece.chunks.map((chunk) => chunk['error']).find(isJsonObject);
    if (error) {
      const message = typeof error['message'] === 'string' ? error['message'] : 'upstream error';
      const upstreamType = [error['type'], error['code']].filter((v) => typeof v === 'string').join(' ');
      return { kind: 'failed', code: 'upstream_error', message: `the upstream failed mid-stream: ${message}`, ...(upstreamType ? { upstreamType } : {}) };
    }
    await send(decoded.piece);
  }
}

function finishResponse(res: ServerResponse, end: StreamEnd, options: PumpOptions, trailers: () => Record<string, string>): void {
  if (res.destroyed || res.writableEnded) return;
  const { encoder, redactEnd } = options;
  // A failed end quotes the upstream's error event, which may quote the key.
  const text = redactEnd(end.kind === 'complete' ? encoder.complete() : end.kind === 'failed' ? encoder.fail(end) : '');
  if (text !== '') res.write(text);
  const computed = trailers();
  for (const name of Object.keys(computed)) computed[name] = redactEnd(computed[name] ?? '');
  res.addTrailers(computed);
  res.end();
}

async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
