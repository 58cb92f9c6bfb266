// The wire formats callers speak: how an answer, an error and a stream are written for an
// OpenAI caller (/v1/chat/completions, /v1/completions, /v1/embeddings) and for an
// Anthropic caller (/v1/messages). Answers arrive in the canonical format (or, from an
// upstream of the caller's own format, as they came) and leave in the caller's.
import { anthropicStreamError, chatResponseToAnthropic, ChatStreamToAnthropic, openAIErrorToAnthropic, type AnthropicSseEvent } from '../wire/anthropic/translate.ts';
import type { ChatChunk, ChatResponse, JsonObject, OpenAIErrorBody } from '../wire/openai-chat/types.ts';
import { codecRequest, parseEventData, type CallerRequest, type CallerSide, type StreamPiece } from '../upstream/wire.ts';
import { responsesCaller, ResponsesEncoder } from '../wire/openai-responses/caller.ts';
import type { ErrorReply } from './openai-errors.ts';
import { isJsonObject } from '../wire/openai-chat/upstream.ts';
import { streamErrorEvent } from './openai-errors.ts';
import { chunkForCaller, type FailedEnd, type StreamEncoder } from './stream-pump.ts';

export interface EncoderOptions {
  /** The step's model, for chunks that name none. */
  model: string;
  /** The upstream speaks the caller's format. */
  passthrough: boolean;
  /** OpenAI callers: whether they asked for stream_options.include_usage. */
  callerWantsUsage: boolean;
}

export interface CallerFormatting extends CallerSide {
  /** An error of the proxy's own (made in OpenAI's shape) in the caller's shape. */
  ownError(status: number, body: OpenAIErrorBody): JsonObject;
  streamEncoder(options: EncoderOptions): StreamEncoder;
  /** Refuses a request the caller's API would refuse, before it is decoded. */
  check?(body: JsonObject): ErrorReply | undefined;
  /** This formatting for one request, when answers depend on what was asked (the Responses API repeats the request's fields). */
  forRequest?(request: CallerRequest): CallerFormatting;
}

export const openAICaller: CallerFormatting = {
  format: 'openai',
  answerFromCanonical: (canonical) => canonical,
  errorFromCanonical: (_status, body) => ({ error: body.error }),
  ownError: (_status, body) => ({ error: body.error }),
  streamEncoder: (options) => new OpenAIEncoder(options),
};

export const anthropicCaller: CallerFormatting = {
  format: 'anthropic',
  // The canonical answer is an OpenAI Chat response (the translators made it, or an OpenAI-format upstream sent it).
  answerFromCanonical: (canonical) => chatResponseToAnthropic(canonical as ChatResponse),
  errorFromCanonical: anthropicError,
  ownError: anthropicError,
  streamEncoder: (options) => new AnthropicEncoder(options),
};

/** Responses API callers (POST /v1/responses): the unit in src/wire/openai-responses, seen through this interface. */
export const responsesCallerFormatting: CallerFormatting = responsesFormatting({ format: 'openai-responses', endpoint: 'chat', body: {}, stream: false, chat: { value: { model: '', messages: [] }, dropped: [] }, passHeaders: {} });

/** Bound to its request: the response object repeats the request's fields. */
function responsesFormatting(request: CallerRequest): CallerFormatting {
  const codec = responsesCaller;
  return {
    format: 'openai-responses',
    answerFromCanonical: (canonical) => codec.answer(canonical as ChatResponse, codecRequest(request)),
    errorFromCanonical: (status, body) => codec.upstreamError(status, body),
    ownError: (status, body) => codec.ownError(status, body),
    streamEncoder: (options) => new ResponsesEncoder({ model: options.model, passthrough: options.passthrough, request: codecRequest(request) }),
    check: (body) => {
      const refused = codec.check('responses', body);
      return refused ? { status: refused.status, body: refused.error } : undefined;
    },
    forRequest: (bound) => responsesFormatting(bound),
  };
}

function anthropicError(status: number, body: unknown): JsonObject {
  const { type, error } = openAIErrorToAnthropic(status, body);
  return { type, error };
}

class OpenAIEncoder implements StreamEncoder {
  readonly #options: EncoderOptions;

  constructor(options: EncoderOptions) {
    this.#options = options;
  }

  encode(piece: StreamPiece): string {
    let text = '';
    for (const chunk of piece.chunks) {
      const out = chunkForCaller(chunk, this.#options.model, this.#options.callerWantsUsage);
      if (out) text += `data: ${JSON.stringify(out)}\n\n`;
    }
    return text;
  }

  complete(): string {
    return 'data: [DONE]\n\n';
  }

  /** Every chunk is written from its canonical form, whoever sends it next. */
  continueAnswer(): boolean {
    return true;
  }

  fail(end: FailedEnd): string {
    return streamErrorEvent(end.message, end.code);
  }
}

/**
 * Anthropic SSE. From an Anthropic upstream the events go out as they came (ping included);
 * from any other, the canonical chunks are translated event by event (ChatStreamToAnthropic).
 */
class AnthropicEncoder implements StreamEncoder {
  readonly #model: string;
  #translator: ChatStreamToAnthropic | undefined;
  /** Content blocks of a passed-through stream, as the caller has them (what a continuation must carry on). */
  readonly #blocks: Array<{ type: string; open: boolean }> = [];

  constructor(options: EncoderOptions) {
    this.#model = options.model;
    this.#translator = options.passthrough ? undefined : new ChatStreamToAnthropic(options.model);
  }

  encode(piece: StreamPiece): string {
    if (!this.#translator) {
      this.#track(piece.raw.data);
      return `event: ${piece.raw.event ?? eventNameOf(piece.raw.data)}\ndata: ${piece.raw.data}\n\n`;
    }
    const translator = this.#translator;
    return piece.chunks.flatMap((chunk) => translator.push(chunk as ChatChunk)).map(sse).join('');
  }

  /**
   * The rest of the answer comes from another upstream, as canonical chunks. A passed-through
   * message carries on in its open text block; one with other blocks (thinking, tool use)
   * cannot be continued faithfully.
   */
  continueAnswer(): boolean {
    if (this.#translator) return true;
    if (this.#blocks.some((b) => b.type !== 'text')) return false;
    const last = this.#blocks[this.#blocks.length - 1];
    const openTextBlock = last?.open ? this.#blocks.length - 1 : undefined;
    this.#translator = ChatStreamToAnthropic.continuing(this.#model, { nextBlock: this.#blocks.length, ...(openTextBlock === undefined ? {} : { openTextBlock }) });
    return true;
  }

  #track(data: string): void {
    const event = parseEventData(data);
    if (!isJsonObject(event)) return;
    if (event['type'] === 'content_block_start' && isJsonObject(event['content_block'])) {
      this.#blocks.push({ type: String(event['content_block']['type']), open: true });
    } else if (event['type'] === 'content_block_stop') {
      const block = this.#blocks[typeof event['index'] === 'number' ? event['index'] : this.#blocks.length - 1];
      if (block) block.open = false;
    }
  }

  /** A passed-through stream already carried its message_stop; a translated one may still owe it. */
  complete(): string {
    return this.#translator ? this.#translator.finish().map(sse).join('') : '';
  }

  fail(end: FailedEnd): string {
    return sse(anthropicStreamError(anthropicErrorTypeFor(end), `${end.message} (${end.code})`));
  }
}

function sse(event: AnthropicSseEvent): string {
  return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

function eventNameOf(data: string): string {
  const parsed = parseEventData(data);
  return isJsonObject(parsed) && typeof parsed['type'] === 'string' ? parsed['type'] : 'message';
}

/** The Anthropic error type that says best why a stream broke. */
function anthropicErrorTypeFor(end: FailedEnd): string {
  if (end.code === 'upstream_timeout') return 'timeout_error';
  const upstream = (end.upstreamType ?? '').toLowerCase();
  if (/overloaded/.test(upstream)) return 'overloaded_error';
  if (/rate_limit|resource_exhausted/.test(upstream)) return 'rate_limit_error';
  return 'api_error';
}
