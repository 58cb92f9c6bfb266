// The caller codec: applications that call POST /v1/responses (the official SDKs'
// `client.responses.create` / `.stream()`, agent frameworks). Errors are OpenAI's shape
// (`{error: {message, type, param, code}}`, which is the Responses API's own); a stream that
// breaks ends with response.failed.
import { sseEvent } from '../sse-out.ts';
import type { IncomingHttpHeaders } from 'node:http';
import type {
  CallerCodec,
  CallerRefusal,
  CallerRequest,
  CanonicalAnswer,
  EncoderOptions,
  RequestFacts,
  StreamEncoder,
  StreamFailure,
  StreamPiece,
} from '../codec.ts';
import type { ChatChunk, JsonObject } from '../openai-chat/types.ts';
import { UnservableRequest, type Translated } from '../errors.ts';
import type { ChatRequest } from '../openai-chat/types.ts';
import { isRecord } from '../translation-helpers.ts';
import { positiveInt, withInputEstimate } from '../facts.ts';
import { chatResponseToResponses } from './answer.ts';
import { responsesRequestToChat, STATEFUL_REQUEST_CODE, statefulUse } from './request.ts';
import { ChatStreamToResponses, sseOf } from './stream-out.ts';

export const RESPONSES_PATH = '/v1/responses';
export const RESPONSES_OPERATION = 'responses';

export const responsesCaller: CallerCodec = {
  routes: [{ path: RESPONSES_PATH, operation: RESPONSES_OPERATION }],
  errorPathPrefixes: [RESPONSES_PATH],
  check: (_operation, body) => statefulRefusal(body),
  decode: (operation, body, _headers: IncomingHttpHeaders) => decodeRequest(operation, body),
  answer: (canonical: CanonicalAnswer, request: CallerRequest) => chatResponseToResponses(canonical, request.body),
  upstreamError: (_status, error) => ({ error: error.error }),
  ownError: (_status, error) => ({ error: error.error }),
  streamEncoder: (options) => new ResponsesEncoder(options),
  translationCopies: 1,
};

/** previous_response_id, conversation, background, item_reference: state a sidecar does not keep. */
export function statefulRefusal(body: JsonObject): CallerRefusal | undefined {
  const use = statefulUse(body);
  if (!use) return undefined;
  return { status: 400, error: { error: { message: use.message, type: 'invalid_request_error', param: use.param, code: STATEFUL_REQUEST_CODE } } };
}

export function decodeRequest(operation: string, body: JsonObject): CallerRequest {
  let canonical: Translated<ChatRequest> | UnservableRequest;
  try {
    canonical = responsesRequestToChat(body);
  } catch (error) {
    // Only a Responses-API upstream can serve it (built-in tools, file ids…): the other steps are skipped.
    if (!(error instanceof UnservableRequest)) throw error;
    canonical = error;
  }
  const stream = body['stream'] === true;
  return { format: 'openai-responses', operation, body, stream, canonical, passHeaders: {}, facts: factsOf(body, stream) };
}

function factsOf(body: JsonObject, stream: boolean): RequestFacts {
  const requested = positiveInt(body['max_output_tokens']);
  const tools = Array.isArray(body['tools']) && body['tools'].length > 0;
  return withInputEstimate(body, { ...(requested === undefined ? {} : { requestedMaxOutput: requested }), choices: 1, producesOutput: true, stream, tools });
}

/**
 * Responses SSE. From a Responses-API upstream the events go out as they came; from any
 * other, the canonical chunks are turned into the typed events (ChatStreamToResponses).
 */
export class ResponsesEncoder implements StreamEncoder {
  readonly #translator: ChatStreamToResponses | undefined;
  /** A passed-through stream: the last sequence number and the response id the caller has. */
  #lastSequence = -1;
  #responseId = '';

  constructor(options: EncoderOptions) {
    this.#translator = options.passthrough ? undefined : new ChatStreamToResponses(options.request.body, options.model);
  }

  encode(piece: StreamPiece): string {
    const translator = this.#translator;
    if (!translator) {
      this.#track(piece.raw.data);
      return sseEvent(piece.raw.data, piece.raw.event ?? 'message');
    }
    return piece.chunks
      .flatMap((chunk) => translator.push(chunk as ChatChunk))
      .map(sseOf)
      .join('');
  }

  /** A passed-through stream carried its own response.completed; a translated one owes it. */
  complete(): string {
    return this.#translator ? this.#translator.finish().map(sseOf).join('') : '';
  }

  fail(failure: StreamFailure): string {
    if (this.#translator) return this.#translator.fail(failure.code, failure.message).map(sseOf).join('');
    const response = { id: this.#responseId, object: 'response', status: 'failed', error: { code: failure.code, message: failure.message } };
    return sseOf({ type: 'response.failed', sequence_number: this.#lastSequence + 1, response });
  }

  /** A translated stream carries on with canonical chunks from any upstream; a passed-through one cannot be renumbered faithfully. */
  continueAnswer(): boolean {
    return this.#translator !== undefined;
  }

  #track(data: string): void {
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!isRecord(event)) return;
    if (typeof event['sequence_number'] === 'number') this.#lastSequence = event['sequence_number'];
    if (isRecord(event['response']) && typeof event['response']['id'] === 'string') this.#responseId = event['response']['id'];
  }
}
