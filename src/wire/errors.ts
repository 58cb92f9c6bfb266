// What every translator between wire formats returns or throws.

/**
 * A translated body, and the caller's fields the target cannot honour. The fields were
 * left out of `value`; the proxy logs them as a warning and serves the request anyway.
 */
export interface Translated<T> {
  value: T;
  dropped: string[];
}

/**
 * The request cannot be served faithfully by this target's wire format (tools to a
 * format without tools, n > 1 to Anthropic, audio input, ...). The proxy skips the step
 * with `message` as the reason; another step may speak a format that can serve it.
 */
export class UnservableRequest extends Error {
  readonly code = 'UNSERVABLE';
  override readonly name = 'UnservableRequest';
}

/**
 * The caller's body is not a valid request of the format it claims to be (e.g. an
 * Anthropic Messages request without max_tokens). The proxy answers 400 with `message`.
 */
export class InvalidRequest extends Error {
  readonly code = 'INVALID_REQUEST';
  override readonly name = 'InvalidRequest';
}

/**
 * An upstream's 2xx body is not a valid answer of its format (not an object, no
 * content, tool input that is not JSON...). The proxy classifies it as serverError.
 */
export class MalformedUpstream extends Error {
  readonly code = 'MALFORMED_UPSTREAM';
  override readonly name = 'MalformedUpstream';
}

/**
 * No credential could be obtained for an attempt (a token endpoint that refuses or is down,
 * an unreadable token file): an authFailed failure of the step, never a crash.
 */
export class CredentialUnavailable extends Error {
  readonly code = 'credential_unavailable';
  override readonly name = 'CredentialUnavailable';
}
