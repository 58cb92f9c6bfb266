// The contract every wire format implements, in one place. A wire format is one folder,
// src/wire/<format>/, exporting one WireFormat: a caller codec (when callers may speak it),
// an upstream codec (when a chain may call it), or both. src/wire/registry.ts lists them;
// that list is the only place a format is named: the schema's `api` enum (npm run gen:crd),
// the API routes, redaction and routing all read it.
//
// The canonical format in between is OpenAI Chat Completions (request, answer, stream chunk,
// error body): every caller codec decodes into it and encodes out of it, every upstream
// codec translates to and from it. A caller and an upstream of the same format skip it
// (passthrough: the upstream's bytes go back as they came).
//
// Types only: no code runs from this file.
import type { IncomingHttpHeaders } from 'node:http';
import type { FailureClass, Target } from '../core/types.ts';
import type { JsonObject } from '../core/json.ts';
import type { RequestFacts as RoutingFacts } from '../routing/estimate.ts';
import type { Translated, UnservableRequest } from './errors.ts';
import type { ChatChunk, ChatRequest, ChatResponse, OpenAIErrorBody } from './openai-chat/types.ts';

export type { JsonObject, Translated, UnservableRequest };
// The error classes a codec throws (values, from ./errors.ts):
//   UnservableRequest: this format cannot carry the request faithfully (the step is skipped, with the message);
//   InvalidRequest: the request is not valid (a 400 in the caller's shape, no upstream called);
//   MalformedUpstream: a 2xx body that is not an answer (a serverError failure: the next attempt).

// ---------------------------------------------------------------------------------------
// The canonical types (OpenAI Chat Completions)

/** The request every caller codec decodes into and every non-passthrough upstream codec is built from. */
export type CanonicalRequest = ChatRequest;
/** A complete (non-streamed) answer. */
export type CanonicalAnswer = ChatResponse;
/** One stream chunk (`chat.completion.chunk`); a chunk with an `error` member is a mid-stream failure. */
export type CanonicalChunk = ChatChunk;
/** An error body: `{error: {message, type, param, code}}`. The proxy's own errors are made in it too. */
export type CanonicalError = OpenAIErrorBody;

// ---------------------------------------------------------------------------------------
// What routing sees

/**
 * The facts of a request that routing, budgets, rate limits and the engine read. They never
 * read a wire field: the caller codec computes these once, when it decodes the request.
 */
export interface RequestFacts extends RoutingFacts {
  // From RoutingFacts (routing/estimate.ts), what budgets, limits and the order read:
  //   inputTokens: estimated input tokens (lazy: see wire/facts.ts);
  //   requestedMaxOutput?: the caller's own output limit (max_tokens, max_output_tokens…);
  //   choices: answers asked for (OpenAI's `n`); producesOutput: false for embeddings.
  /** The caller asked for a stream. */
  stream: boolean;
  /** The request declares tools (function definitions). */
  tools: boolean;
}

// ---------------------------------------------------------------------------------------
// The caller side

/** One POST route a caller codec serves. */
export interface CallerRoute {
  /** The exact path, e.g. '/v1/chat/completions'. */
  path: string;
  /**
   * The operation, as the request log and metrics name it ('chat', 'completions',
   * 'embeddings', 'messages', 'responses'…). Unique across the registry. An upstream of the
   * caller's own format reads it to pick its endpoint when passing the body through.
   */
  operation: string;
}

/** A caller's request, decoded once; handed to every step's upstream codec. */
export interface CallerRequest {
  /** The caller codec's format (its WireFormat's api). */
  format: string;
  /** The route's operation (CallerRoute.operation). */
  operation: string;
  /** The body as the caller sent it (an upstream of the caller's format replays it). */
  body: JsonObject;
  stream: boolean;
  /**
   * The request in the canonical format with the caller's fields it had to drop; or why only
   * an upstream of the caller's own format can serve it (e.g. Anthropic document blocks).
   */
  canonical: Translated<CanonicalRequest> | UnservableRequest;
  /** Caller headers passed on to upstreams of the caller's own format (e.g. anthropic-beta). */
  passHeaders: Record<string, string>;
  /** What routing needs to know (see RequestFacts). */
  facts: RequestFacts;
}

/** A request refused by the caller codec: the status and the error, in the canonical shape (ownError writes it). */
export interface CallerRefusal {
  status: number;
  error: CanonicalError;
}

/** How a stream broke, as the caller's error event reports it. */
export interface StreamFailure {
  /** Stable code: upstream_stream_cut, upstream_stalled, upstream_timeout, upstream_error, upstream_stream_truncated, upstream_<class>. */
  code: string;
  message: string;
  /** The upstream's own error type/code for an upstream_error (e.g. "overloaded_error"). */
  upstreamType?: string;
}

/** One upstream stream event, decoded (what a StreamEncoder is handed). */
export interface StreamPiece {
  /** The event in the canonical format: none (ping, message_start…), one, or several. */
  chunks: JsonObject[];
  /** The event as it came, for a caller of the upstream's own format (passthrough). */
  raw: { event?: string; data: string };
}

export interface EncoderOptions {
  /** The answering step's model, for chunks that name none. */
  model: string;
  /** The upstream speaks the caller's format: raw events may go out as they came. */
  passthrough: boolean;
  /** The original request (e.g. OpenAI's stream_options.include_usage decides whether usage chunks go out). */
  request: CallerRequest;
}

/** Writes one stream in the caller's format. One per caller stream. */
export interface StreamEncoder {
  /** The text (SSE) for one upstream event; '' when nothing of it goes to the caller. */
  encode(piece: StreamPiece): string;
  /**
   * The event's own text (SSE), when the caller may have it exactly as it came: the upstream
   * speaks the caller's format and nothing in the event needs changing. Undefined otherwise
   * (then `encode` writes it). Only for a piece as its decoder made it (not spliced).
   */
  asItCame?(piece: StreamPiece): string | undefined;
  /** What ends a complete stream (`data: [DONE]`, the message_stop still owed, `response.completed`…). */
  complete(): string;
  /** What ends a broken stream: an error event in the caller's format, and no terminator. */
  fail(failure: StreamFailure): string;
  /** The rest of the answer will come from another upstream as canonical chunks; false when it cannot be joined on faithfully. */
  continueAnswer(): boolean;
}

/**
 * A caller codec: everything about one caller-facing API. The caller's response shape is
 * decided here and nowhere else: success, an upstream's error, the proxy's own error, and a
 * stream failure (StreamEncoder.fail).
 */
export interface CallerCodec {
  /** The POST routes it serves; the server mounts exactly these. */
  readonly routes: readonly CallerRoute[];
  /**
   * Paths (prefixes) whose errors are written in this format even when no route matched or
   * the request was refused before routing (e.g. '/v1/messages'). The OpenAI chat codec is
   * the default for everything else.
   */
  readonly errorPathPrefixes: readonly string[];
  /**
   * Refuses a body the caller's API would refuse (e.g. a streamed embeddings request), before
   * anything is copied or decoded. The body is a JSON object whose string `model` names a
   * known chain (checked before); `stream`, when present, is a boolean.
   */
  check(operation: string, body: JsonObject): CallerRefusal | undefined;
  /**
   * Decodes a checked body: the canonical request, the facts, the headers to pass on.
   * Throws InvalidRequest for a request that is not valid (a 400 in the caller's shape).
   */
  decode(operation: string, body: JsonObject, headers: IncomingHttpHeaders): CallerRequest;
  /** A canonical answer -> the caller's body (status 200). Throws MalformedUpstream when it cannot be. */
  answer(canonical: CanonicalAnswer, request: CallerRequest): JsonObject;
  /** An upstream's error (already in the canonical shape) -> the caller's body; the status is kept. */
  upstreamError(status: number, error: CanonicalError): JsonObject;
  /** An error of the proxy's own (made in the canonical shape) -> the caller's body. */
  ownError(status: number, error: CanonicalError): JsonObject;
  /** A writer for one streamed answer. */
  streamEncoder(options: EncoderOptions): StreamEncoder;
  /**
   * How many extra copies of the body serving it makes (translation to the canonical form);
   * for the body budget. 0 when the caller's format is the canonical one.
   */
  readonly translationCopies: number;
}

// ---------------------------------------------------------------------------------------
// The upstream side

/** One step's upstream request, built once per request and step. */
export interface PreparedRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The caller's fields this step cannot honour (logged once as a warning). */
  dropped: string[];
  /** The caller and the upstream speak the same format: answers go back as they came. */
  passthrough: boolean;
}

export type Decoded =
  | { kind: 'piece'; piece: StreamPiece }
  /** An explicit end of stream (OpenAI's `data: [DONE]`). */
  | { kind: 'done' }
  /** Not an event of this format (not JSON): dropped, counted and logged. */
  | { kind: 'malformed' };

/** Turns one upstream stream into canonical chunks, message by message. One per attempt. */
export interface StreamDecoder {
  decode(message: { event?: string | undefined; data: string }): Decoded;
  /** The answer is whole (a finish was seen): a stream ending now without a terminator is complete. */
  readonly finished: boolean;
}

/**
 * How an upstream's stream body is framed: server-sent events, or AWS's binary event stream
 * (application/vnd.amazon.eventstream, Bedrock), which upstream/aws-eventstream.ts turns into
 * the same messages (`event` = the event or exception type, `data` = its JSON payload).
 */
export type StreamFraming = 'sse' | 'aws-eventstream';

/**
 * An upstream codec: everything about calling one upstream API. Failure classification stays
 * generic (core/failure.ts reads every known error shape); a format adds hints only for what
 * the generic rules cannot see.
 */
export interface UpstreamCodec {
  /**
   * The HTTP request for a step (the step's maxOutputTokens already applied to the request).
   * Throws UnservableRequest when this format cannot serve the request faithfully (the step
   * is skipped) and InvalidRequest when the request is not valid.
   */
  prepare(request: CallerRequest, step: Target): PreparedRequest;
  /** A 2xx JSON answer -> the canonical answer. Throws MalformedUpstream for a body that is not an answer. */
  toCanonical(body: JsonObject, step: Target): JsonObject;
  /** How the stream body is framed (the reader the attempt uses). */
  readonly streamFraming: StreamFraming;
  /** A decoder for one streamed attempt. */
  streamDecoder(step: Target): StreamDecoder;
  /** An error body (parsed JSON, or the text when it is not JSON) -> the canonical error shape. */
  errorToCanonical(status: number, body: unknown): CanonicalError;
  /**
   * Lowers (or sets) the output limit of a request body of this format to `cap` tokens; a
   * smaller limit of the caller's is kept. Used on the caller's body when passing through.
   */
  capOutput(body: JsonObject, cap: number, context: { operation: string; baseURL: string }): JsonObject;
  /** Request headers that carry credentials (lower case): redacted in logs and /config. */
  readonly secretHeaders: readonly string[];
  /** Whether the API continues a trailing assistant message (prefill) by default. */
  readonly prefillByDefault: boolean;
  /**
   * Headers that authorise one attempt, computed just before it is sent: a signature over the
   * final request (SigV4) or a cached, refreshed token. Absent for formats whose key is a
   * static header (prepare adds it). Throws CredentialUnavailable (../errors.ts) when no credential can be had.
   */
  authorize?(request: PreparedRequest, step: Target, signal: AbortSignal): Promise<Record<string, string>>;
  /**
   * A failure class for an error status the generic rules (core/failure.ts) would misread,
   * e.g. Bedrock's 424 ModelErrorException (the model failed: the next step may not); undefined
   * leaves it to them.
   */
  classifyError?(status: number, body: unknown, headers: Readonly<Record<string, string | string[] | undefined>>): FailureClass | undefined;
  /** An error body with the response headers (some APIs put the error's type in a header, e.g. x-amzn-ErrorType). */
  errorWithHeaders?(status: number, body: unknown, headers: Readonly<Record<string, string | string[] | undefined>>): CanonicalError;
}

// ---------------------------------------------------------------------------------------
// The registry entry

/**
 * One wire format. `api` is its name everywhere: the schema's `api` enum value for upstream
 * codecs, CallerRequest.format for caller codecs. A unit exports one of these from its
 * folder's index.ts, and registry.ts lists it (one line).
 */
export interface WireFormat<Api extends string = string> {
  readonly api: Api;
  /** One line for docs and the schema's description. */
  readonly description: string;
  /** Present when callers may speak this format. */
  readonly caller?: CallerCodec;
  /** Present when a chain's provider may speak it (`api: <api>`). */
  readonly upstream?: UpstreamCodec;
}
// ---------------------------------------------------------------------------------------
// Registering a unit (src/wire/registry.ts)
//
//   import { openAIResponses } from './openai-responses/index.ts';
//   export const WIRE_FORMATS = [openAIChat, anthropic, gemini, openAIResponses] as const satisfies readonly WireFormat[];
//
// `ApiFormat` (a provider's `api:`) and `CallerFormat` are derived from that list; the server
// mounts CALLER_ROUTES, errors on unmatched paths use callerForPath(), redaction reads
// SECRET_HEADERS, the request plan reads upstreamCodec(api).
