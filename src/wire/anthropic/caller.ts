// Anthropic callers (POST /v1/messages): their request decoded into the canonical one (or
// kept for Anthropic upstreams only, when no translation is faithful), and everything they
// get back written in Anthropic's shape: answers, errors, SSE events, a stream's failure.
// From an Anthropic upstream the events go out as they came.
import { sseEvent } from '../sse-out.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { isJsonObject, parseJson, type JsonObject } from '../../core/json.ts';
import type { CallerCodec, CallerRequest, CanonicalError, EncoderOptions, StreamEncoder, StreamFailure, StreamPiece } from '../codec.ts';
import { UnservableRequest, type Translated } from '../errors.ts';
import { positiveInt, withInputEstimate } from '../facts.ts';
import type { ChatChunk, ChatRequest } from '../openai-chat/types.ts';
import {
  anthropicRequestToChat,
  anthropicStreamError,
  chatResponseToAnthropic,
  ChatStreamToAnthropic,
  openAIErrorToAnthropic,
  type AnthropicSseEvent,
} from './translate.ts';

// Caller headers an upstream of the caller's own format needs to serve the request as asked.
const PASSED_HEADERS = ['anthropic-beta'];

export const anthropicCaller: CallerCodec = {
  routes: [{ path: '/v1/messages', operation: 'messages' }],
  errorPathPrefixes: ['/v1/messages'],
  check: () => undefined,
  decode(operation, body, headers): CallerRequest {
    let canonical: Translated<ChatRequest> | UnservableRequest;
    try {
      canonical = anthropicRequestToChat(body);
    } catch (error) {
      // Only an Anthropic upstream can serve it (document blocks, server tools…): the other steps are skipped.
      if (!(error instanceof UnservableRequest)) throw error;
      canonical = error;
    }
    const stream = body['stream'] === true;
    const tools = Array.isArray(body['tools']) && body['tools'].length > 0;
    const requested = positiveInt(body['max_tokens']);
    return {
      format: 'anthropic',
      operation,
      body,
      stream,
      canonical,
      passHeaders: passedHeaders(headers),
      facts: withInputEstimate(body, {
        ...(requested === undefined ? {} : { requestedMaxOutput: requested }),
        choices: 1,
        producesOutput: true,
        stream,
        tools,
      }),
    };
  },
  // The canonical answer is an OpenAI Chat response (the translators made it, or an OpenAI-format upstream sent it).
  answer: (canonical) => chatResponseToAnthropic(canonical),
  upstreamError: anthropicError,
  ownError: anthropicError,
  streamEncoder: (options) => new AnthropicEncoder(options),
  // The canonical translation of the body is one more copy while the request is served.
  translationCopies: 1,
};

function passedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    if (text) out[name] = text;
  }
  return out;
}

function anthropicError(status: number, body: CanonicalError): JsonObject {
  const { type, error } = openAIErrorToAnthropic(status, body);
  return { type, error };
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
      return sseEvent(piece.raw.data, piece.raw.event ?? eventNameOf(piece.raw.data));
    }
    const translator = this.#translator;
    return piece.chunks
      .flatMap((chunk) => translator.push(chunk as ChatChunk))
      .map(sse)
      .join('');
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
    this.#translator = ChatStreamToAnthropic.continuing(this.#model, {
      nextBlock: this.#blocks.length,
      ...(openTextBlock === undefined ? {} : { openTextBlock }),
    });
    return true;
  }

  #track(data: string): void {
    const event = parseJson(data);
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

  fail(failure: StreamFailure): string {
    return sse(anthropicStreamError(anthropicErrorTypeFor(failure), `${failure.message} (${failure.code})`));
  }
}

function sse(event: AnthropicSseEvent): string {
  return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

function eventNameOf(data: string): string {
  const parsed = parseJson(data);
  return isJsonObject(parsed) && typeof parsed['type'] === 'string' ? parsed['type'] : 'message';
}

/** The Anthropic error type that says best why a stream broke. */
function anthropicErrorTypeFor(failure: StreamFailure): string {
  if (failure.code === 'upstream_timeout') return 'timeout_error';
  const upstream = (failure.upstreamType ?? '').toLowerCase();
  if (/overloaded/.test(upstream)) return 'overloaded_error';
  if (/rate_limit|resource_exhausted/.test(upstream)) return 'rate_limit_error';
  return 'api_error';
}
