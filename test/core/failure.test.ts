// The failure classifier: which upstream answers retry, fall back, or go back to the client.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyErrorEvent,
  classifyHttpStatus,
  countsAgainstBreaker,
  extractErrorInfo,
  isConnectionErrorCode,
  isContentFilterFinish,
} from '../../src/core/failure.ts';
import { FAILURE_CLASSES, type FailureClass } from '../../src/core/types.ts';

const openaiError = (code: string | null, message: string, type = 'invalid_request_error'): unknown => ({
  error: { message, type, param: null, code },
});

describe('classifyHttpStatus', () => {
  const cases: Array<{ name: string; status: number; body: unknown; want: FailureClass | undefined }> = [
    // A 2xx is not a failure at all.
    { name: '200 is success', status: 200, body: {}, want: undefined },
    // Any 2xx, not only 200, is success.
    { name: '204 is success', status: 204, body: undefined, want: undefined },
    // 429 retries after Retry-After / backoff.
    { name: '429', status: 429, body: openaiError('rate_limit_exceeded', 'Rate limit reached', 'requests'), want: 'rateLimited' },
    // The five server statuses the contract names are all serverError.
    { name: '500', status: 500, body: openaiError(null, 'internal', 'server_error'), want: 'serverError' },
    // Bad gateway from a provider's edge.
    { name: '502', status: 502, body: 'Bad Gateway', want: 'serverError' },
    // Service unavailable.
    { name: '503', status: 503, body: undefined, want: 'serverError' },
    // Gateway timeout is an upstream fault, not our timeout class.
    { name: '504', status: 504, body: undefined, want: 'serverError' },
    // Anthropic's "overloaded" status.
    { name: '529', status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, want: 'serverError' },
    // Request timeout from the upstream is a timeout.
    { name: '408', status: 408, body: undefined, want: 'timeout' },
    // Payload too large: a bigger-context model may take it.
    { name: '413', status: 413, body: undefined, want: 'contextLength' },
    // Bad key: try another provider, do not retry.
    { name: '401', status: 401, body: openaiError('invalid_api_key', 'Incorrect API key provided'), want: 'authFailed' },
    // Forbidden is an auth failure too.
    { name: '403', status: 403, body: { type: 'error', error: { type: 'permission_error', message: 'no access' } }, want: 'authFailed' },
    // Unknown model/path: the client's own mistake.
    { name: '404', status: 404, body: openaiError('model_not_found', 'The model does not exist'), want: 'badRequest' },
    // 422 without a recognised code is a bad request.
    { name: '422 plain', status: 422, body: openaiError(null, 'Unprocessable'), want: 'badRequest' },
    // 422 is read like 400: a context-length code still wins.
    { name: '422 context code', status: 422, body: openaiError('context_length_exceeded', 'too long'), want: 'contextLength' },
    // OpenAI's context-length code.
    {
      name: '400 context_length_exceeded',
      status: 400,
      body: openaiError('context_length_exceeded', "This model's maximum context length is 128000 tokens."),
      want: 'contextLength',
    },
    // Code matching is case-insensitive.
    { name: '400 CONTEXT_LENGTH_EXCEEDED', status: 400, body: openaiError('CONTEXT_LENGTH_EXCEEDED', 'x'), want: 'contextLength' },
    // Anthropic has no code: its message "prompt is too long" decides.
    {
      name: '400 anthropic prompt is too long',
      status: 400,
      body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 210000 tokens > 200000 maximum' } },
      want: 'contextLength',
    },
    // OpenAI's content-policy code.
    {
      name: '400 content_policy_violation',
      status: 400,
      body: openaiError('content_policy_violation', 'Your request was rejected as a result of our safety system.'),
      want: 'contentFiltered',
    },
    // Azure OpenAI reports a filtered prompt with code content_filter.
    {
      name: '400 azure content_filter',
      status: 400,
      body: {
        error: {
          code: 'content_filter',
          message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
          status: 400,
          innererror: { code: 'ResponsibleAIPolicyViolation' },
        },
      },
      want: 'contentFiltered',
    },
    // A plain invalid parameter goes back to the client as it came.
    { name: '400 plain', status: 400, body: openaiError(null, "Invalid value for 'temperature': must be <= 2."), want: 'badRequest' },
    // A 400 with no parseable body is a bad request.
    { name: '400 no body', status: 400, body: undefined, want: 'badRequest' },
    // Gemini: numeric code, status word, and the context message in its own words.
    {
      name: '400 gemini input token count',
      status: 400,
      body: {
        error: { code: 400, message: 'The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).', status: 'INVALID_ARGUMENT' },
      },
      want: 'contextLength',
    },
    // Gemini's OpenAI-compatible endpoint wraps the error object in a one-element array.
    {
      name: '400 gemini array-wrapped context',
      status: 400,
      body: [
        { error: { code: 400, message: 'The input token count (314175) exceeds the maximum number of tokens allowed (131072).', status: 'INVALID_ARGUMENT' } },
      ],
      want: 'contextLength',
    },
    // Anthropic's other context message: input plus max_tokens over the window.
    {
      name: '400 anthropic exceed context limit',
      status: 400,
      body: { type: 'error', error: { type: 'invalid_request_error', message: 'input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000' } },
      want: 'contextLength',
    },
    // Gemini reports a bad key as 400 INVALID_ARGUMENT: another step with its own key can still serve.
    {
      name: '400 gemini API key not valid',
      status: 400,
      body: { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT' } },
      want: 'authFailed',
    },
    // Gemini refuses callers from unsupported regions: a provider refusal, not the client's error.
    {
      name: '400 gemini FAILED_PRECONDITION location',
      status: 400,
      body: { error: { code: 400, message: 'User location is not supported for the API use.', status: 'FAILED_PRECONDITION' } },
      want: 'authFailed',
    },
    // Gemini's generic invalid argument stays a bad request.
    {
      name: '400 gemini invalid argument',
      status: 400,
      body: [{ error: { code: 400, message: 'Request contains an invalid argument.', status: 'INVALID_ARGUMENT' } }],
      want: 'badRequest',
    },
    // Gemini 429 RESOURCE_EXHAUSTED is rateLimited by status alone.
    {
      name: '429 gemini',
      status: 429,
      body: { error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } },
      want: 'rateLimited',
    },
    // Gemini 503 UNAVAILABLE is a server error.
    {
      name: '503 gemini',
      status: 503,
      body: { error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } },
      want: 'serverError',
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(classifyHttpStatus(c.status, c.body), c.want);
    });
  }
});

describe('extractErrorInfo', () => {
  const cases: Array<{ name: string; body: unknown; want: { code?: string; type?: string; message?: string } }> = [
    // OpenAI shape: code, type, message from error.
    {
      name: 'openai',
      body: openaiError('rate_limit_exceeded', 'slow down', 'requests'),
      want: { code: 'rate_limit_exceeded', type: 'requests', message: 'slow down' },
    },
    // Anthropic shape: type from error.type, no code.
    {
      name: 'anthropic',
      body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
      want: { code: undefined, type: 'overloaded_error', message: 'Overloaded' },
    },
    // Gemini shape: numeric code becomes a string, status stands in for type.
    {
      name: 'gemini',
      body: { error: { code: 429, message: 'quota', status: 'RESOURCE_EXHAUSTED' } },
      want: { code: '429', type: 'RESOURCE_EXHAUSTED', message: 'quota' },
    },
    // A non-object body yields nothing rather than throwing.
    { name: 'string body', body: 'oops', want: {} },
    // null is tolerated.
    { name: 'null body', body: null, want: {} },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = extractErrorInfo(c.body);
      assert.deepEqual({ code: got.code, type: got.type, message: got.message }, { code: undefined, type: undefined, message: undefined, ...c.want });
    });
  }
});

describe('classifyErrorEvent (an error object inside a 200 stream)', () => {
  const cases: Array<{ name: string; body: unknown; want: FailureClass }> = [
    // Anthropic's mid-stream rate limit.
    {
      name: 'rate_limit_error',
      body: { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your rate limit' } },
      want: 'rateLimited',
    },
    // Gemini's quota status word counts as a rate limit.
    { name: 'RESOURCE_EXHAUSTED', body: { error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'quota' } }, want: 'rateLimited' },
    // An OpenAI code spelled rate_limit_exceeded.
    { name: 'rate_limit_exceeded code', body: openaiError('rate_limit_exceeded', 'Rate limit reached', 'requests'), want: 'rateLimited' },
    // Anthropic's authentication_error.
    { name: 'authentication_error', body: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }, want: 'authFailed' },
    // A permission word is an auth failure.
    { name: 'permission_error', body: { type: 'error', error: { type: 'permission_error', message: 'denied' } }, want: 'authFailed' },
    // A context-length code inside the stream.
    { name: 'context_length_exceeded', body: openaiError('context_length_exceeded', 'too long'), want: 'contextLength' },
    // A content-policy code inside the stream.
    { name: 'content_policy_violation', body: openaiError('content_policy_violation', 'rejected'), want: 'contentFiltered' },
    // An unknown error is blamed on the upstream (it answered 200, then failed).
    { name: 'unknown', body: { error: { message: 'something broke', type: 'weird_error' } }, want: 'serverError' },
    // Anthropic's overloaded_error is not a bad request: serverError.
    { name: 'overloaded_error', body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, want: 'serverError' },
    // An empty error object is still the upstream's fault.
    { name: 'empty error', body: { error: {} }, want: 'serverError' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(classifyErrorEvent(c.body), c.want);
    });
  }
});

describe('isConnectionErrorCode', () => {
  const cases: Array<{ code: string | undefined; want: boolean; why: string }> = [
    { code: 'ECONNREFUSED', want: true, why: 'nothing listens on the port' },
    { code: 'ECONNRESET', want: true, why: 'the peer dropped the socket' },
    { code: 'UND_ERR_SOCKET', want: true, why: "undici's socket error (e.g. a reset mid-body)" },
    { code: 'ENOTFOUND', want: true, why: 'DNS failure' },
    { code: 'EAI_AGAIN', want: true, why: 'transient DNS failure' },
    { code: 'UND_ERR_CONNECT_TIMEOUT', want: true, why: 'TCP connect timed out' },
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID', want: true, why: 'TLS name mismatch (ERR_TLS prefix)' },
    { code: 'CERT_HAS_EXPIRED', want: true, why: 'expired certificate (contains CERT)' },
    { code: 'ERR_SSL_WRONG_VERSION_NUMBER', want: true, why: 'TLS to a plain-HTTP port (ERR_SSL prefix)' },
    { code: 'ERR_INVALID_ARG_TYPE', want: false, why: 'a programming error, not the network' },
    { code: 'UND_ERR_ABORTED', want: false, why: 'our own abort is not a connection failure' },
    { code: undefined, want: false, why: 'an error without a code' },
  ];
  for (const c of cases) {
    test(`${String(c.code)} → ${c.want} (${c.why})`, () => {
      assert.equal(isConnectionErrorCode(c.code), c.want);
    });
  }
});

describe('isContentFilterFinish', () => {
  const cases: Array<{ reason: unknown; want: boolean; why: string }> = [
    { reason: 'content_filter', want: true, why: "OpenAI/Azure's filtered finish" },
    { reason: 'SAFETY', want: true, why: "Gemini's safety finish" },
    { reason: 'refusal', want: true, why: "Anthropic's refusal stop reason" },
    { reason: 'stop', want: false, why: 'a normal end' },
    { reason: 'length', want: false, why: 'max_tokens reached is an answer, not a refusal' },
    { reason: null, want: false, why: 'no finish reason yet' },
  ];
  for (const c of cases) {
    test(`${String(c.reason)} → ${c.want} (${c.why})`, () => {
      assert.equal(isContentFilterFinish(c.reason), c.want);
    });
  }
});

describe('countsAgainstBreaker', () => {
  const expected: Record<FailureClass, boolean> = {
    rateLimited: true, // the target is saturated
    serverError: true, // the target is broken
    timeout: true, // the target is silent
    connection: true, // the target is unreachable
    authFailed: true, // the key for this target is bad: every request will fail
    contextLength: false, // this prompt is too long; the target is fine
    contentFiltered: false, // this prompt was refused; the target is fine
    badRequest: false, // the client's mistake
  };
  test('the table covers every failure class', () => {
    assert.deepEqual(Object.keys(expected).sort(), [...FAILURE_CLASSES].sort());
  });
  for (const failure of FAILURE_CLASSES) {
    test(`${failure} → ${expected[failure]}`, () => {
      assert.equal(countsAgainstBreaker(failure), expected[failure]);
    });
  }
});
