// OpenAI callers (/v1/chat/completions, /v1/completions, /v1/embeddings): their requests are
// the canonical format (chat) or only servable by OpenAI-format upstreams (the other two),
// and everything they get back is written here: answers, errors, stream events, a stream's
// failure.
import { isJsonObject, type JsonObject } from '../../core/json.ts';
import type { CallerCodec, CallerRequest, EncoderOptions, StreamEncoder, StreamFailure, StreamPiece } from '../codec.ts';
import { UnservableRequest } from '../errors.ts';
import { openAIFacts } from './facts.ts';
import type { ChatRequest } from './types.ts';

export const openAIChatCaller: CallerCodec = {
  routes: [
    { path: '/v1/chat/completions', operation: 'chat' },
    { path: '/v1/completions', operation: 'completions' },
    { path: '/v1/embeddings', operation: 'embeddings' },
  ],
  // The default format of errors: every path no other caller codec claims.
  errorPathPrefixes: ['/'],
  check(operation, body) {
    if (operation === 'embeddings' && body['stream'] === true) {
      return {
        status: 400,
        error: { error: { message: 'embeddings cannot be streamed', type: 'invalid_request_error', param: 'stream', code: 'invalid_stream' } },
      };
    }
    return undefined;
  },
  decode(operation, body): CallerRequest {
    return {
      format: 'openai',
      operation,
      body,
      stream: body['stream'] === true,
      canonical:
        operation === 'chat'
          ? { value: body as ChatRequest, dropped: [] }
          : new UnservableRequest(`OpenAI's /v1/${operation} endpoint is served by OpenAI-format upstreams only`),
      passHeaders: {},
      facts: openAIFacts(body, operation),
    };
  },
  answer: (canonical) => canonical,
  upstreamError: (_status, error) => ({ error: error.error }),
  ownError: (_status, error) => ({ error: error.error }),
  streamEncoder: (options) => new OpenAIEncoder(options),
  translationCopies: 0,
};

/** Whether an OpenAI caller asked for the usage chunk (stream_options.include_usage). */
export function wantsUsage(request: CallerRequest): boolean {
  const options = request.body['stream_options'];
  return isJsonObject(options) && options['include_usage'] === true;
}

/** Adapts one canonical chunk for an OpenAI caller; undefined when it must not be forwarded. */
export function chunkForCaller(chunk: JsonObject, answeredBy: string, callerWantsUsage: boolean): JsonObject | undefined {
  const usageOnly = Array.isArray(chunk['choices']) && chunk['choices'].length === 0 && isJsonObject(chunk['usage']);
  if (usageOnly && !callerWantsUsage) return undefined;
  const out: JsonObject = { ...chunk };
  if (typeof out['model'] !== 'string' || out['model'] === '') out['model'] = answeredBy;
  if (!callerWantsUsage) delete out['usage'];
  return out;
}

/** An SSE event that ends a broken stream: the SDKs raise on `data: {"error": …}`. */
export function streamErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}

const NULL_USAGE_LAST = ',"usage":null}';

class OpenAIEncoder implements StreamEncoder {
  readonly #model: string;
  readonly #callerWantsUsage: boolean;
  /** Cleared when another upstream carries the answer on: its events are in whatever format it speaks. */
  #passthrough: boolean;

  constructor(options: EncoderOptions) {
    this.#model = options.model;
    this.#callerWantsUsage = wantsUsage(options.request);
    this.#passthrough = options.passthrough;
  }

  /**
   * The upstream's own bytes when chunkForCaller would change nothing in the chunk (it names
   * its model; usage goes out only when asked for): no copy, no JSON.stringify per event.
   * Data of several lines (JSON may hold line breaks between its tokens) is written anew.
   */
  asItCame(piece: StreamPiece): string | undefined {
    if (!this.#passthrough || piece.chunks.length !== 1) return undefined;
    const chunk = piece.chunks[0] as JsonObject;
    const model = chunk['model'];
    if (typeof model !== 'string' || model === '') return undefined;
    const data = piece.raw.data;
    if (data.includes('\n') || data.includes('\r')) return undefined;
    if (this.#callerWantsUsage || !('usage' in chunk)) return `data: ${data}\n\n`;
    // The proxy asks every OpenAI upstream for usage (it prices the answer), so with
    // include_usage every chunk but the last carries "usage":null; a caller that did not ask
    // gets the chunk without it, as OpenAI would have sent it. Cut from the upstream's text when
    // it is the object's last member, written compactly, and the only "usage" in the text:
    // a valid JSON object that ends with `,"usage":null}` has it as its own last member (a
    // nested one would be followed by another `}`, a string's quotes would be escaped).
    if (chunk['usage'] !== null || !data.endsWith(NULL_USAGE_LAST) || data.indexOf('"usage"') !== data.length - NULL_USAGE_LAST.length + 1) return undefined;
    return `data: ${data.slice(0, -NULL_USAGE_LAST.length)}}\n\n`;
  }

  encode(piece: StreamPiece): string {
    let text = '';
    for (const chunk of piece.chunks) {
      const out = chunkForCaller(chunk, this.#model, this.#callerWantsUsage);
      if (out) text += `data: ${JSON.stringify(out)}\n\n`;
    }
    return text;
  }

  complete(): string {
    return 'data: [DONE]\n\n';
  }

  /** Every chunk is written from its canonical form, whoever sends it next. */
  continueAnswer(): boolean {
    this.#passthrough = false;
    return true;
  }

  fail(failure: StreamFailure): string {
    return streamErrorEvent(failure.message, failure.code);
  }
}
