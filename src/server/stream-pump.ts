// Everything after the first byte of a stream has gone to the caller. No fallback is
// possible any more, so every way the upstream can fail here ends the stream with an
// error event and no [DONE]: SDKs raise instead of returning a truncated answer.
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Usage } from '../core/types.ts';
import type { StreamAnswer } from '../upstream/attempt.ts';
import { finishReasons, isJsonObject, usageFromOpenAI, type JsonObject } from '../upstream/openai.ts';
import { streamErrorEvent } from './openai-errors.ts';

export type StreamEnd =
  | { kind: 'complete' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'aborted' };

export interface PumpResult {
  end: StreamEnd;
  usage?: Usage;
  chunks: number;
}

export interface PumpOptions {
  /** Whether the caller asked for stream_options.include_usage. */
  callerWantsUsage: boolean;
  onMalformed: (data: string) => void;
  /** HTTP trailers computed once the stream is over (cost is only known then). */
  trailers: (result: PumpResult) => Record<string, string>;
}

/** Adapts one upstream chunk for the caller; undefined when it must not be forwarded. */
export function chunkForCaller(chunk: JsonObject, answeredBy: string, callerWantsUsage: boolean): JsonObject | undefined {
  const usageOnly = Array.isArray(chunk['choices']) && chunk['choices'].length === 0 && isJsonObject(chunk['usage']);
  if (usageOnly && !callerWantsUsage) return undefined;
  const out: JsonObject = { ...chunk };
  if (typeof out['model'] !== 'string' || out['model'] === '') out['model'] = answeredBy;
  if (!callerWantsUsage) delete out['usage'];
  return out;
}

export async function pumpStream(answer: StreamAnswer, res: ServerResponse, options: PumpOptions): Promise<PumpResult> {
  const { reader, scope, step } = answer;
  const result: PumpResult = { end: { kind: 'complete' }, chunks: 0 };
  let finished = false; // a finish_reason was seen: the answer is whole even without [DONE]
  const send = async (chunk: JsonObject): Promise<void> => {
    result.usage = usageFromOpenAI(chunk) ?? result.usage;
    if (finishReasons(chunk).some((r) => typeof r === 'string')) finished = true;
    const out = chunkForCaller(chunk, step.model, options.callerWantsUsage);
    if (!out) return;
    result.chunks++;
    if (!res.write(`data: ${JSON.stringify(out)}\n\n`)) await drained(res);
  };
  try {
    await send(answer.first);
    result.end = await pumpRest(answer, options, send, () => finished);
  } finally {
    if (result.end.kind !== 'complete') scope.controller.abort();
    scope.dispose();
    reader.close();
  }
  finishResponse(res, result.end, () => options.trailers(result));
  return result;
}

async function pumpRest(answer: StreamAnswer, options: PumpOptions, send: (chunk: JsonObject) => Promise<void>, finished: () => boolean): Promise<StreamEnd> {
  const { reader, scope, step } = answer;
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
      return finished() ? { kind: 'complete' } : { kind: 'failed', code: 'upstream_stream_truncated', message: 'the upstream ended the stream before the answer was finished' };
    }
    const { data } = read.message;
    if (data === '[DONE]') return { kind: 'complete' };
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      chunk = undefined;
    }
    if (!isJsonObject(chunk)) {
      options.onMalformed(data);
      continue;
    }
    if (isJsonObject(chunk['error'])) {
      const message = typeof chunk['error']['message'] === 'string' ? chunk['error']['message'] : 'upstream error';
      return { kind: 'failed', code: 'upstream_error', message: `the upstream failed mid-stream: ${message}` };
    }
    await send(chunk);
  }
}

function finishResponse(res: ServerResponse, end: StreamEnd, trailers: () => Record<string, string>): void {
  if (res.destroyed || res.writableEnded) return;
  if (end.kind === 'complete') res.write('data: [DONE]\n\n');
  else if (end.kind === 'failed') res.write(streamErrorEvent(end.message, end.code));
  res.addTrailers(trailers());
  res.end();
}

async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
