// The one small interface every upstream wire format implements (openai.ts, anthropic.ts,
// gemini.ts), and what the caller side hands it. The canonical internal format is OpenAI
// Chat Completions: adapters translate requests out of it and answers, stream events and
// error bodies into it. A caller that speaks the upstream's own format is served by
// passthrough: its body goes out unchanged (model substituted) and the answer comes back as
// it came.
import type { ApiFormat, Step } from '../core/types.ts';
import type { ChatRequest, JsonObject, OpenAIErrorBody } from '../wire/openai-chat/types.ts';
import type { Translated, UnservableRequest } from '../wire/errors.ts';
import type { Endpoint } from '../wire/openai-chat/upstream.ts';
import type { CallerRequest as CodecRequest } from '../wire/codec.ts';
import { requestFacts } from '../routing/estimate.ts';

/** The wire formats callers may speak: OpenAI (/v1/chat/completions…) and Anthropic (/v1/messages). */
export type CallerFormat = Extract<ApiFormat, 'openai' | 'anthropic' | 'openai-responses'>;

/** What the caller sent, as every adapter needs it. */
export interface CallerRequest {
  format: CallerFormat;
  /** The OpenAI endpoint for OpenAI callers; 'chat' for Anthropic callers (their canonical form). */
  endpoint: Endpoint;
  /** The body as the caller sent it. */
  body: JsonObject;
  stream: boolean;
  /**
   * The request in the canonical format, with the caller's fields it had to drop; or why only
   * an upstream of the caller's own format can serve it (e.g. Anthropic document blocks, or
   * OpenAI's legacy /v1/completions).
   */
  chat: Translated<ChatRequest> | UnservableRequest;
  /** Caller headers passed on to upstreams of the caller's own format (e.g. anthropic-beta). */
  passHeaders: Record<string, string>;
}

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

/** One upstream stream event, decoded. */
export interface StreamPiece {
  /** The event in the canonical format: none (ping, message_start…), one, or several. */
  chunks: JsonObject[];
  /** The event as it came, for a caller of the upstream's own format. */
  raw: { event?: string; data: string };
}

export type Decoded =
  | { kind: 'piece'; piece: StreamPiece }
  /** OpenAI's `data: [DONE]`. */
  | { kind: 'done' }
  /** Not JSON: dropped, counted and logged. */
  | { kind: 'malformed' };

/** Turns one upstream stream into canonical chunks, event by event; one per attempt. */
export interface StreamDecoder {
  decode(message: { event?: string | undefined; data: string }): Decoded;
  /** The answer is whole (a finish was seen): a stream ending now without a terminator is complete. */
  readonly finished: boolean;
}

export interface WireAdapter {
  readonly api: ApiFormat;
  /**
   * The HTTP request for a step. Throws UnservableRequest when this format cannot serve the
   * request faithfully (the step is skipped) and InvalidRequest when the request is not valid.
   */
  prepare(call: CallerRequest, step: Step): PreparedRequest;
  /** A 2xx JSON answer -> the canonical answer. Throws MalformedUpstream for a body that is not an answer. */
  toCanonical(body: JsonObject, step: Step): JsonObject;
  streamDecoder(step: Step): StreamDecoder;
  /** An error body (parsed JSON, or the text when it is not JSON) -> OpenAI's error shape. */
  errorToOpenAI(status: number, body: unknown): OpenAIErrorBody;
}

/**
 * What the attempt needs from the caller's side to finish an answer before committing to it:
 * a translation that fails must still be a classified failure (and a fallback), not a crash
 * after the caller's response began.
 */
export interface CallerSide {
  readonly format: CallerFormat;
  /** A canonical JSON answer -> the caller's format. Throws MalformedUpstream when it cannot be. */
  answerFromCanonical(canonical: JsonObject): JsonObject;
  /** An error body in OpenAI's shape -> the caller's error shape. */
  errorFromCanonical(status: number, body: OpenAIErrorBody): JsonObject;
}

/** A stream event's `data`, parsed; undefined when it is not JSON. */
export function parseEventData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** The canonical request, or the reason this caller's request can only go to an upstream of its own format. */
export function canonicalOf(call: CallerRequest): Translated<ChatRequest> {
  if (call.chat instanceof Error) throw call.chat;
  return call.chat;
}

/** The request as the wire codecs (src/wire/codec.ts) take it, for the formats already written against them. */
export function codecRequest(call: CallerRequest): CodecRequest {
  const facts = requestFacts(call.body, call.endpoint);
  return {
    format: call.format,
    operation: call.format === 'openai-responses' ? 'responses' : call.endpoint,
    body: call.body,
    stream: call.stream,
    canonical: call.chat,
    passHeaders: call.passHeaders,
    facts: {
      get inputTokens(): number {
        return facts.inputTokens;
      },
      ...(facts.requestedMaxOutput !== undefined ? { requestedMaxOutput: facts.requestedMaxOutput } : {}),
      choices: facts.choices,
      producesOutput: facts.producesOutput,
      stream: call.stream,
      tools: Array.isArray(call.body['tools']) && call.body['tools'].length > 0,
    },
  };
}
