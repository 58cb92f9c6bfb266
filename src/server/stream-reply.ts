// A streamed answer, from the attempt that won to the caller's last byte. The answer is
// held until the chain's commit point (policy.stream.commit): before it, any failure is an
// ordinary fallback and nothing was sent. After it, a failure (cut, stall, time out, error
// event, close before a finish) still counts against that target, and the engine goes on
// down the chain inside the same caller stream: the next attempt continues from the text
// already delivered (prefill) or restarts and is verified against it (continuation.ts,
// stream-splice.ts). When nothing can rescue it, the stream ends with an error event in the
// caller's format carrying the original failure, never a truncated answer that looks whole.
import type { Redactor } from '../core/redact.ts';
import type { ServerResponse } from 'node:http';
import { addUsage, costOf, NO_USAGE } from '../core/cost.ts';
import { isContentFilterFinish } from '../core/failure.ts';
import { DEFAULT_STREAM_POLICY, type Chain, type Target, type StreamCommit, type Usage } from '../core/types.ts';
import type { UpstreamFailure } from '../engine/outcome.ts';
import type { ChainResult } from '../engine/run-chain.ts';
import type { RoutingState } from '../engine/routing-state.ts';
import { canPrefill } from '../wire/prefill.ts';
import { contentEvents, Splice, Transcript } from '../wire/stream-splice.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AttemptRequest, UpstreamAnswer } from '../upstream/attempt.ts';
import { continuationAttempt, type ContinuationHooks } from '../upstream/continuation.ts';
import type { CallerCodec, StreamEncoder, StreamPiece } from '../wire/codec.ts';
import { finishReasons, usageFromOpenAI } from '../wire/openai-chat/upstream.ts';
import { attemptsHeader, costHeader, fallbackHeaders, headerSafe } from './headers.ts';
import { report, totalCost, type RequestReport, type StreamResumeOutcome } from './request-report.ts';
import { CallerStream, readStream, type FailedEnd, type StreamEnd } from './stream-pump.ts';

type Won = Extract<ChainResult<UpstreamAnswer>, { kind: 'success' }>;
type Lost = Extract<ChainResult<UpstreamAnswer>, { kind: 'failure' }>;

export interface StreamCall {
  chain: Chain;
  caller: CallerCodec;
  requestId: string;
  startedAt: number;
  res: ServerResponse;
  /** The attempt's request, for continuations of it. */
  attemptRequest: AttemptRequest;
}

export interface StreamReplyDeps {
  clock: { now(): number };
  logger: Logger;
  metrics: Metrics;
  routing: RoutingState;
  hooks: ContinuationHooks;
  onMalformed: (step: Target, data: string) => void;
  /** The chain failed before anything was sent: the ordinary error reply. */
  replyFailure: (result: Lost) => void;
  /** The credentials known now: nothing the caller reads may carry one. */
  redactor: () => Redactor;
}

export function replyStream(call: StreamCall, won: Won, base: Omit<RequestReport, 'outcome' | 'status'>, deps: StreamReplyDeps): Promise<void> {
  return new StreamReply(call, won, base, deps).run();
}

class StreamReply {
  readonly #call: StreamCall;
  readonly #base: Omit<RequestReport, 'outcome' | 'status'>;
  readonly #deps: StreamReplyDeps;
  readonly #commit: StreamCommit;
  readonly #out: CallerStream;
  readonly #transcript = new Transcript();
  #result: ChainResult<UpstreamAnswer>;
  /** The step whose answer the caller is reading now (headers, trailers, winner). */
  #answering: Target;
  /** Set at the commit point: the caller's encoder, for the rest of the stream whoever sends it. */
  #encoder: StreamEncoder | undefined;
  #ttfbMs: number | undefined;
  /** The first failure after the commit point: what the caller is told if nothing rescues the stream. */
  #broken: FailedEnd | undefined;
  /** How the attempt that finished a broken stream carried it on. */
  #resumedBy: StreamResumeOutcome | undefined;
  /** Usage reported by attempts whose text reached the caller before the stream broke. */
  #deliveredUsage: Usage | undefined;

  constructor(call: StreamCall, won: Won, base: Omit<RequestReport, 'outcome' | 'status'>, deps: StreamReplyDeps) {
    this.#call = call;
    this.#base = base;
    this.#deps = deps;
    this.#result = won;
    this.#answering = won.step;
    const policy = call.chain.policy.stream ?? DEFAULT_STREAM_POLICY;
    this.#commit = policy.commit;
    const headers = () =>
      fallbackHeaders({
        requestId: call.requestId,
        chain: call.chain.name,
        provider: this.#answering.provider.name,
        model: this.#answering.model,
        attempts: base.attempts,
      });
    this.#out = new CallerStream(call.res, headers, policy.heartbeatMs, deps.redactor);
  }

  async run(): Promise<void> {
    this.#out.keepAlive();
    for (;;) {
      const result = this.#result;
      if (result.kind === 'failure') return this.#chainFailed(result);
      const end = await this.#read(result);
      if (end.kind === 'complete') return this.#complete();
      if (end.kind === 'aborted') return this.#finish('aborted', undefined);
      if (end.kind === 'refused') {
        const record = result.attempts[result.attempts.length - 1];
        if (record) {
          record.outcome = 'cancelled';
          record.reason = `answered, but ${end.reason}; discarded`;
        }
        return this.#finish('stream_failed', 'failed');
      }
      const failure: UpstreamFailure = { class: end.failure, status: 200, message: `${end.code}: ${end.message}` };
      if (!this.#encoder) {
        // Nothing reached the caller: an ordinary fallback.
        this.#result = await result.resume(failure);
        continue;
      }
      this.#broken ??= end;
      const why = this.#unresumable();
      if (why) {
        result.failLater(failure, why);
        return this.#finish('stream_failed', 'failed');
      }
      this.#result = await result.resume(failure, continuationAttempt(this.#call.attemptRequest, this.#transcript, this.#deps.routing, this.#deps.hooks));
    }
  }

  /** Reads one attempt: holds it until the commit point, splices it onto what was delivered when it carries on a broken stream. */
  async #read(won: Won): Promise<StreamEnd> {
    const answer = won.value;
    if (answer.kind !== 'stream') throw new Error('stream reply: a streamed request was answered with JSON');
    const step = won.step;
    // A continuation: the rest of the answer comes from this step (trailers, log).
    if (this.#encoder) this.#answering = step;
    const record = won.attempts[won.attempts.length - 1];
    const splice = answer.splice ? new Splice(answer.splice, this.#transcript, this.#deliveredUsage) : undefined;
    let usage: Usage | undefined;
    const held: StreamPiece[] = [];
    let heldEvents = 0;
    const end = await readStream(
      answer,
      (piece) => {
        // Usage is read from the canonical chunks, so it is right whatever format the upstream spoke.
        for (const chunk of piece.chunks) usage = usageFromOpenAI(chunk) ?? usage;
        let next = piece;
        if (splice) {
          const spliced = splice.accept(piece.chunks);
          if (spliced.kind === 'diverged') return { refuse: spliced.reason };
          next = { chunks: spliced.chunks, raw: piece.raw };
        }
        if (this.#encoder) return this.#deliver(next, next === piece);
        // A refusal in a held answer, where the chain opted in to route refusals around: nothing was sent, so it falls back.
        if (this.#call.attemptRequest.refusalsFallBack && next.chunks.some((chunk) => finishReasons(chunk).some(isContentFilterFinish))) {
          return {
            fail: {
              kind: 'failed',
              failure: 'contentFiltered',
              code: 'upstream_contentFiltered',
              message: 'finish_reason content_filter before the commit point',
            },
          };
        }
        held.push(next);
        heldEvents += contentEvents(next.chunks);
        if (committed(this.#commit, heldEvents)) return this.#commitTo(step, answer.passthrough, held);
        return undefined;
      },
      (data) => this.#deps.onMalformed(step, data),
    );
    if (usage && record) {
      record.usage = usage;
      record.costUSD = costOf(usage, step.price);
    }
    // Text of this attempt reached the caller: a continuation's usage adds to what it reported.
    if (usage && this.#encoder && end.kind !== 'complete') this.#deliveredUsage = addUsage(this.#deliveredUsage ?? NO_USAGE, usage);
    if (end.kind === 'complete' && !this.#encoder) await this.#commitTo(step, answer.passthrough, held);
    if (end.kind === 'complete' && splice) this.#resumedBy = splice.mode === 'continue' ? 'continued' : 'restarted';
    return end;
  }

  /** The commit point: the caller's stream begins with everything held. */
  async #commitTo(step: Target, passthrough: boolean, held: StreamPiece[]): Promise<void> {
    this.#answering = step;
    this.#encoder = this.#call.caller.streamEncoder({ model: step.model, passthrough, request: this.#call.attemptRequest.plan.call });
    this.#ttfbMs = this.#deps.clock.now() - this.#call.startedAt;
    // Held pieces are never spliced: a splice carries on a stream already committed.
    for (const piece of held.splice(0)) await this.#deliver(piece, true);
  }

  /** `asDecoded`: the piece is as its decoder made it, so its own bytes may go out when nothing in them needs changing. */
  #deliver(piece: StreamPiece, asDecoded: boolean): Promise<void> | undefined {
    this.#transcript.record(piece.chunks);
    const encoder = this.#encoder as StreamEncoder;
    const raw = asDecoded ? encoder.asItCame?.(piece) : undefined;
    return raw === undefined ? this.#out.write(encoder.encode(piece)) : this.#out.writeAsItCame(raw, () => encoder.encode(piece));
  }

  /** Why a stream broken after the commit point cannot be carried on by another attempt. */
  #unresumable(): string | undefined {
    if (!canPrefill(this.#call.attemptRequest.plan.call)) return 'the stream cannot be resumed (only chat with one choice, or a completion of one prompt, can)';
    if (this.#transcript.toolCalls) return 'the stream cannot be resumed: tool-call deltas were already delivered';
    if (!(this.#encoder as StreamEncoder).continueAnswer()) return 'the stream cannot be resumed: content blocks other than text were already delivered';
    return undefined;
  }

  #complete(): void {
    this.#out.finish((this.#encoder as StreamEncoder).complete(), this.#trailers());
    this.#report('success', this.#broken ? this.#resumedBy : undefined);
  }

  #chainFailed(result: Lost): void {
    if (!this.#out.started) {
      // Nothing was sent, not even a heartbeat: the ordinary error reply, status and all.
      this.#out.abandon();
      this.#deps.replyFailure(result);
      return;
    }
    if (result.end === 'aborted') return this.#finish('aborted', undefined);
    this.#finish('stream_failed', this.#broken ? 'failed' : undefined, this.#broken ?? this.#chainEnd(result));
  }

  /** The chain failed after heartbeats began the response, before any content: its last failure as the error event. */
  #chainEnd(result: Lost): FailedEnd {
    const last = result.last;
    // Redacted where it is written: CallerStream.finish and the log line.
    const message = last
      ? `every step of chain "${this.#call.chain.name}" failed; last: ${last.message}`
      : `chain "${this.#call.chain.name}" has no step that can answer now`;
    return { kind: 'failed', failure: last?.class ?? 'serverError', code: last ? `upstream_${last.class}` : 'upstream_error', message };
  }

  #finish(outcome: 'aborted' | 'stream_failed', resume: StreamResumeOutcome | undefined, end: FailedEnd | undefined = this.#broken): void {
    if (outcome === 'aborted') {
      this.#out.finish('', this.#trailers());
    } else {
      const encoder =
        this.#encoder ?? this.#call.caller.streamEncoder({ model: this.#answering.model, passthrough: false, request: this.#call.attemptRequest.plan.call });
      this.#out.finish(end ? encoder.fail(end) : '', this.#trailers());
    }
    this.#report(outcome, resume, end);
  }

  #trailers(): Record<string, string> {
    const attempts = this.#base.attempts;
    return {
      'x-llm-fallback-cost-usd': costHeader(totalCost(attempts)),
      'x-llm-fallback-attempts': attemptsHeader(attempts),
      'x-llm-fallback-provider': headerSafe(this.#answering.provider.name),
      'x-llm-fallback-model': headerSafe(this.#answering.model),
    };
  }

  #report(outcome: RequestReport['outcome'], streamResume: StreamResumeOutcome | undefined, end?: FailedEnd): void {
    const step = this.#answering;
    report(
      {
        ...this.#base,
        winner: { provider: step.provider.name, model: step.model, step: step.index },
        outcome,
        // A caller that went away before anything was sent never got a status: logged as 499, like other requests.
        status: this.#out.started ? 200 : 499,
        totalMs: this.#deps.clock.now() - this.#call.startedAt,
        ...(this.#ttfbMs === undefined ? {} : { ttfbMs: this.#ttfbMs }),
        ...(end ? { streamEnd: `${end.code}: ${end.message}` } : {}),
        ...(streamResume ? { streamResume } : {}),
      },
      this.#deps.logger,
      this.#deps.metrics,
    );
  }
}

/** Whether `events` held content events reach the commit point (complete: only the whole answer does). */
function committed(commit: StreamCommit, events: number): boolean {
  if (commit.kind === 'firstEvent') return true;
  if (commit.kind === 'tokens') return events >= commit.tokens;
  return false;
}
