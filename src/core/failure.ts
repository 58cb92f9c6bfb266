import { isJsonObject } from './json.ts';
import type { FailureClass } from './types.ts';

/** What we could learn from an upstream error body, whatever its shape. */
export interface ErrorInfo {
  code?: string;
  type?: string;
  message?: string;
}

// Error bodies differ by provider: OpenAI {error:{code,type,message}}, Anthropic
// {type:'error', error:{type,message}}, Gemini {error:{code,status,message}}, which
// Gemini's OpenAI-compatible endpoint wraps in a one-element array.
export function extractErrorInfo(body: unknown): ErrorInfo {
  if (Array.isArray(body) && body.length === 1) return extractErrorInfo(body[0]);
  if (!isJsonObject(body)) return {};
  const inner = isJsonObject(body['error']) ? body['error'] : body;
  return {
    code: stringOf(inner['code']),
    type: stringOf(inner['type']) ?? stringOf(inner['status']),
    message: stringOf(inner['message']),
  };
}

const CONTEXT_LENGTH_CODES = new Set(['context_length_exceeded', 'string_above_max_length', 'max_tokens_exceeded']);
const CONTEXT_LENGTH_TEXT =
  /context length|context window|context_length|maximum context|prompt is too long|too many tokens|input is too long|reduce the length|exceeds the maximum number of tokens|exceed context limit/i;
const CONTENT_POLICY_CODES = new Set(['content_policy_violation', 'content_filter', 'content_filtered', 'safety']);
const CONTENT_POLICY_TEXT = /content[ _-]?(management )?policy|safety system|content filter|flagged|SAFETY/;

/** Classify an upstream HTTP status (with its parsed error body) into a failure class; undefined means success. */
export function classifyHttpStatus(status: number, body: unknown): FailureClass | undefined {
  if (status >= 200 && status < 300) return undefined;
  if (status === 429) return 'rateLimited';
  if (status === 401 || status === 403) return 'authFailed';
  if (status === 408) return 'timeout';
  if (status === 413) return 'contextLength';
  if (status >= 500) return 'serverError';
  if (status === 400 || status === 422) return classifyBadRequest(extractErrorInfo(body));
  return 'badRequest';
}

// A provider that refuses this caller (bad key reported as 400, unsupported region) may
// still be served by another step: that is an auth failure, not the client's fault.
const AUTH_TEXT = /API key not valid|API_KEY_INVALID|User location is not supported/i;

function classifyBadRequest(info: ErrorInfo): FailureClass {
  if (info.type === 'FAILED_PRECONDITION' || AUTH_TEXT.test(info.message ?? '')) return 'authFailed';
  const code = info.code?.toLowerCase();
  if (code && CONTEXT_LENGTH_CODES.has(code)) return 'contextLength';
  if (code && CONTENT_POLICY_CODES.has(code)) return 'contentFiltered';
  const text = info.message ?? '';
  if (CONTEXT_LENGTH_TEXT.test(text)) return 'contextLength';
  if (CONTENT_POLICY_TEXT.test(text)) return 'contentFiltered';
  return 'badRequest';
}

/**
 * An error object inside a 200 stream ({"error": {...}}) has no status of its own;
 * its code/type decide, and an unrecognised one is the upstream's fault.
 */
export function classifyErrorEvent(body: unknown): FailureClass {
  const info = extractErrorInfo(body);
  const words = `${info.code ?? ''} ${info.type ?? ''}`.toLowerCase();
  if (/rate_limit|resource_exhausted|too_many/.test(words)) return 'rateLimited';
  if (/auth|permission|api_key/.test(words)) return 'authFailed';
  const asBadRequest = classifyBadRequest(info);
  return asBadRequest === 'badRequest' ? 'serverError' : asBadRequest;
}

// Error codes for failures to reach or keep talking to the upstream: Node's (connecting,
// resolving, TLS) and undici's, the upstream client (its socket and connect errors).
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT',
]);

/** True for error codes that mean the upstream could not be reached or dropped us (incl. TLS failures). */
export function isConnectionErrorCode(code: string | undefined): boolean {
  if (code === undefined) return false;
  return CONNECTION_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT');
}

/** Finish reasons that mean the answer was withheld by the provider's filter. */
export function isContentFilterFinish(finishReason: unknown): boolean {
  return finishReason === 'content_filter' || finishReason === 'SAFETY' || finishReason === 'refusal';
}

/**
 * Failures that say something about the target's health, and so count towards its
 * circuit breaker. Request-specific failures (a prompt too long, a refused prompt, a
 * malformed request) say nothing about the upstream and must not open its circuit.
 */
export function countsAgainstBreaker(failure: FailureClass): boolean {
  // A switch, not an `||` chain, so that a new failure class is a lint error here
  // (switch-exhaustiveness-check) until someone decides which side it belongs on.
  switch (failure) {
    case 'rateLimited':
    case 'serverError':
    case 'timeout':
    case 'connection':
    case 'authFailed':
      return true;
    case 'contextLength':
    case 'contentFiltered':
    case 'badRequest':
      return false;
  }
}

function stringOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}
