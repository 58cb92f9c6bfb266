// Error bodies crossing wire formats, and how they classify through core/failure.ts, the
// engine's single classifier (native bodies of each provider, and the translated ones).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyErrorEvent, classifyHttpStatus } from '../../src/core/failure.ts';
import type { FailureClass } from '../../src/core/types.ts';
import { AnthropicStreamToChat, anthropicErrorToOpenAI, anthropicStreamError, openAIErrorToAnthropic } from '../../src/wire/anthropic/translate.ts';
import { GeminiStreamToChat, geminiErrorToOpenAI } from '../../src/wire/gemini/translate.ts';

const anthropicBody = (type: string, message: string): unknown => ({ type: 'error', error: { type, message } });
const geminiBody = (code: number, status: string, message: string, details?: unknown[]): unknown => ({
  error: { code, message, status, ...(details ? { details } : {}) },
});

describe('openAIErrorToAnthropic: status -> Anthropic error type', () => {
  const cases: Array<{ status: number; type: string }> = [
    // Client mistakes.
    { status: 400, type: 'invalid_request_error' },
    // Bad or missing key.
    { status: 401, type: 'authentication_error' },
    // Billing problems have their own type at Anthropic.
    { status: 402, type: 'billing_error' },
    // Key without access to the resource.
    { status: 403, type: 'permission_error' },
    // Unknown model or path.
    { status: 404, type: 'not_found_error' },
    // Body too large.
    { status: 413, type: 'request_too_large' },
    // Any other 4xx is reported as an invalid request.
    { status: 422, type: 'invalid_request_error' },
    // Rate limited.
    { status: 429, type: 'rate_limit_error' },
    // Upstream failure.
    { status: 500, type: 'api_error' },
    // The proxy's own 502 upstream_connection is an API error for the caller.
    { status: 502, type: 'api_error' },
    // The proxy's 503 no_available_step likewise.
    { status: 503, type: 'api_error' },
    // The proxy's 504 upstream_timeout / deadline_exceeded is Anthropic's timeout_error.
    { status: 504, type: 'timeout_error' },
    // Overloaded keeps Anthropic's own status and type, so its SDK retries it as usual.
    { status: 529, type: 'overloaded_error' },
  ];
  for (const c of cases) {
    test(`${c.status} -> ${c.type}`, () => {
      assert.deepEqual(openAIErrorToAnthropic(c.status, { error: { message: 'm', type: 'x', param: null, code: null } }), {
        type: 'error',
        error: { type: c.type, message: 'm' },
      });
    });
  }
});

describe('openAIErrorToAnthropic: body shapes', () => {
  const cases: Array<{ name: string; status: number; body: unknown; want: unknown }> = [
    // The all-steps-failed reply keeps its attempt list for Anthropic callers too.
    {
      name: 'llm_fallback details are kept',
      status: 429,
      body: {
        error: {
          message: 'Rate limit reached',
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
          llm_fallback: { chain: 'chat', attempts: [{ step: 0, outcome: 'rateLimited' }] },
        },
      },
      want: {
        type: 'error',
        error: { llm_fallback: { chain: 'chat', attempts: [{ step: 0, outcome: 'rateLimited' }] }, type: 'rate_limit_error', message: 'Rate limit reached' },
      },
    },
    // A plain-text upstream body becomes the message.
    { name: 'text body', status: 502, body: 'Bad Gateway', want: { type: 'error', error: { type: 'api_error', message: 'Bad Gateway' } } },
    // No body at all still gives a readable message.
    { name: 'no body', status: 503, body: undefined, want: { type: 'error', error: { type: 'api_error', message: 'upstream error (HTTP 503)' } } },
    // Gemini-compat's one-element array wrapping is unwrapped.
    {
      name: 'array-wrapped',
      status: 400,
      body: [{ error: { code: 400, message: 'Invalid argument', status: 'INVALID_ARGUMENT' } }],
      want: { type: 'error', error: { type: 'invalid_request_error', message: 'Invalid argument' } },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(openAIErrorToAnthropic(c.status, c.body), c.want);
    });
  }
});

describe('anthropicErrorToOpenAI', () => {
  const cases: Array<{ name: string; body: unknown; want: { type: string; code: string | null; message: string } }> = [
    // Overloaded keeps Anthropic's type as both type and code, which failure.ts reads.
    {
      name: 'overloaded',
      body: anthropicBody('overloaded_error', 'Overloaded'),
      want: { type: 'overloaded_error', code: 'overloaded_error', message: 'Overloaded' },
    },
    // Rate limit.
    {
      name: 'rate limit',
      body: anthropicBody('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'),
      want: { type: 'rate_limit_error', code: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' },
    },
    // A too-long prompt gets OpenAI's context_length_exceeded code, so OpenAI callers can recognise it.
    {
      name: 'prompt is too long',
      body: anthropicBody('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'),
      want: { type: 'invalid_request_error', code: 'context_length_exceeded', message: 'prompt is too long: 210000 tokens > 200000 maximum' },
    },
    // Anthropic's other context wording ("exceed context limit") is recognised too.
    {
      name: 'exceed context limit',
      body: anthropicBody(
        'invalid_request_error',
        'input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again',
      ),
      want: {
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: 'input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again',
      },
    },
    // Other invalid requests keep their type as code.
    {
      name: 'plain invalid request',
      body: anthropicBody('invalid_request_error', 'max_tokens: Field required'),
      want: { type: 'invalid_request_error', code: 'invalid_request_error', message: 'max_tokens: Field required' },
    },
    // A text body (an HTML error page from a gateway) becomes the message.
    { name: 'text body', body: 'upstream connect error', want: { type: 'api_error', code: 'api_error', message: 'upstream connect error' } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(anthropicErrorToOpenAI(c.body), { error: { message: c.want.message, type: c.want.type, param: null, code: c.want.code } });
    });
  }
});

describe('geminiErrorToOpenAI', () => {
  const cases: Array<{ name: string; status: number; body: unknown; want: { type: string; code: string | null; message: string } }> = [
    // Quota: OpenAI's rate-limit code.
    {
      name: 'RESOURCE_EXHAUSTED',
      status: 429,
      body: geminiBody(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).'),
      want: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Resource has been exhausted (e.g. check quota).' },
    },
    // Overloaded model: a server error with Gemini's status as code.
    {
      name: 'UNAVAILABLE',
      status: 503,
      body: geminiBody(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.'),
      want: { type: 'server_error', code: 'unavailable', message: 'The model is overloaded. Please try again later.' },
    },
    // Input over the context window: OpenAI's context code.
    {
      name: 'INVALID_ARGUMENT token count',
      status: 400,
      body: geminiBody(400, 'INVALID_ARGUMENT', 'The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).'),
      want: {
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: 'The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).',
      },
    },
    // The word "tokens" alone (an unknown field name) is NOT a context-length error.
    {
      name: 'INVALID_ARGUMENT unknown field max_tokens',
      status: 400,
      body: geminiBody(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Unknown name "max_tokens": Cannot find field.'),
      want: {
        type: 'invalid_request_error',
        code: 'invalid_argument',
        message: 'Invalid JSON payload received. Unknown name "max_tokens": Cannot find field.',
      },
    },
    // Gemini reports a bad key as 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
    {
      name: 'API key not valid',
      status: 400,
      body: geminiBody(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' },
      ]),
      want: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'API key not valid. Please pass a valid API key.' },
    },
    // Forbidden.
    {
      name: 'PERMISSION_DENIED',
      status: 403,
      body: geminiBody(403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers."),
      want: { type: 'permission_error', code: 'permission_denied', message: "Method doesn't allow unregistered callers." },
    },
    // Unknown model.
    {
      name: 'NOT_FOUND',
      status: 404,
      body: geminiBody(404, 'NOT_FOUND', 'models/gemini-9 is not found for API version v1beta.'),
      want: { type: 'not_found_error', code: 'not_found', message: 'models/gemini-9 is not found for API version v1beta.' },
    },
    // Internal error.
    {
      name: 'INTERNAL',
      status: 500,
      body: geminiBody(500, 'INTERNAL', 'An internal error has occurred.'),
      want: { type: 'server_error', code: 'internal', message: 'An internal error has occurred.' },
    },
    // The OpenAI-compatible endpoint's array wrapping is unwrapped.
    {
      name: 'array-wrapped',
      status: 429,
      body: [geminiBody(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded')],
      want: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Quota exceeded' },
    },
    // A text body from a proxy in front of Gemini.
    { name: 'text body', status: 502, body: 'Bad Gateway', want: { type: 'server_error', code: null, message: 'Bad Gateway' } },
    // No body: a readable message naming the status.
    { name: 'no body', status: 500, body: undefined, want: { type: 'server_error', code: null, message: 'Gemini upstream error (HTTP 500)' } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(geminiErrorToOpenAI(c.status, c.body), { error: { message: c.want.message, type: c.want.type, param: null, code: c.want.code } });
    });
  }
});

describe('classification of provider error bodies (core/failure.ts)', () => {
  const cases: Array<{ name: string; status: number; native: unknown; translated: unknown; want: FailureClass }> = [
    // Anthropic 529 overloaded is a server error.
    {
      name: 'anthropic 529 overloaded',
      status: 529,
      native: anthropicBody('overloaded_error', 'Overloaded'),
      translated: anthropicErrorToOpenAI(anthropicBody('overloaded_error', 'Overloaded')),
      want: 'serverError',
    },
    // Anthropic 429 rate_limit_error.
    {
      name: 'anthropic 429',
      status: 429,
      native: anthropicBody('rate_limit_error', 'rate limited'),
      translated: anthropicErrorToOpenAI(anthropicBody('rate_limit_error', 'rate limited')),
      want: 'rateLimited',
    },
    // Anthropic 401 authentication_error.
    {
      name: 'anthropic 401',
      status: 401,
      native: anthropicBody('authentication_error', 'invalid x-api-key'),
      translated: anthropicErrorToOpenAI(anthropicBody('authentication_error', 'invalid x-api-key')),
      want: 'authFailed',
    },
    // Anthropic 403 permission_error.
    {
      name: 'anthropic 403',
      status: 403,
      native: anthropicBody('permission_error', 'no access'),
      translated: anthropicErrorToOpenAI(anthropicBody('permission_error', 'no access')),
      want: 'authFailed',
    },
    // Anthropic 413 request_too_large: a bigger-context step may take it.
    {
      name: 'anthropic 413',
      status: 413,
      native: anthropicBody('request_too_large', 'Request exceeds the maximum allowed number of bytes.'),
      translated: anthropicErrorToOpenAI(anthropicBody('request_too_large', 'Request exceeds the maximum allowed number of bytes.')),
      want: 'contextLength',
    },
    // Anthropic "prompt is too long".
    {
      name: 'anthropic 400 prompt too long',
      status: 400,
      native: anthropicBody('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'),
      translated: anthropicErrorToOpenAI(anthropicBody('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum')),
      want: 'contextLength',
    },
    // Anthropic 500 api_error.
    {
      name: 'anthropic 500',
      status: 500,
      native: anthropicBody('api_error', 'Internal server error'),
      translated: anthropicErrorToOpenAI(anthropicBody('api_error', 'Internal server error')),
      want: 'serverError',
    },
    // Anthropic 400 plain invalid request goes back to the client.
    {
      name: 'anthropic 400 plain',
      status: 400,
      native: anthropicBody('invalid_request_error', 'messages: roles must alternate'),
      translated: anthropicErrorToOpenAI(anthropicBody('invalid_request_error', 'messages: roles must alternate')),
      want: 'badRequest',
    },
    // Gemini 429 RESOURCE_EXHAUSTED.
    {
      name: 'gemini 429',
      status: 429,
      native: geminiBody(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded'),
      translated: geminiErrorToOpenAI(429, geminiBody(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded')),
      want: 'rateLimited',
    },
    // Gemini 503 UNAVAILABLE.
    {
      name: 'gemini 503',
      status: 503,
      native: geminiBody(503, 'UNAVAILABLE', 'The model is overloaded.'),
      translated: geminiErrorToOpenAI(503, geminiBody(503, 'UNAVAILABLE', 'The model is overloaded.')),
      want: 'serverError',
    },
    // Gemini 400 over the context window.
    {
      name: 'gemini 400 token count',
      status: 400,
      native: geminiBody(400, 'INVALID_ARGUMENT', 'The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).'),
      translated: geminiErrorToOpenAI(
        400,
        geminiBody(400, 'INVALID_ARGUMENT', 'The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).'),
      ),
      want: 'contextLength',
    },
    // Gemini 400 mentioning "tokens" as a field name stays a bad request.
    {
      name: 'gemini 400 unknown field',
      status: 400,
      native: geminiBody(400, 'INVALID_ARGUMENT', 'Unknown name "max_tokens": Cannot find field.'),
      translated: geminiErrorToOpenAI(400, geminiBody(400, 'INVALID_ARGUMENT', 'Unknown name "max_tokens": Cannot find field.')),
      want: 'badRequest',
    },
    // Gemini 403 PERMISSION_DENIED.
    {
      name: 'gemini 403',
      status: 403,
      native: geminiBody(403, 'PERMISSION_DENIED', 'denied'),
      translated: geminiErrorToOpenAI(403, geminiBody(403, 'PERMISSION_DENIED', 'denied')),
      want: 'authFailed',
    },
    // Gemini 500 INTERNAL.
    {
      name: 'gemini 500',
      status: 500,
      native: geminiBody(500, 'INTERNAL', 'An internal error has occurred.'),
      translated: geminiErrorToOpenAI(500, geminiBody(500, 'INTERNAL', 'An internal error has occurred.')),
      want: 'serverError',
    },
    // Gemini 504 DEADLINE_EXCEEDED is the upstream's fault, a server error.
    {
      name: 'gemini 504',
      status: 504,
      native: geminiBody(504, 'DEADLINE_EXCEEDED', 'Deadline expired'),
      translated: geminiErrorToOpenAI(504, geminiBody(504, 'DEADLINE_EXCEEDED', 'Deadline expired')),
      want: 'serverError',
    },
  ];
  for (const c of cases) {
    test(`${c.name}: native body`, () => {
      assert.equal(classifyHttpStatus(c.status, c.native), c.want);
    });
    test(`${c.name}: translated body`, () => {
      assert.equal(classifyHttpStatus(c.status, c.translated), c.want);
    });
  }

  // Anthropic's "exceed context limit" wording: the translated body carries
  // context_length_exceeded, so an OpenAI caller's view classifies as contextLength.
  test('anthropic "exceed context limit": translated body is contextLength', () => {
    const body = anthropicBody(
      'invalid_request_error',
      'input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again',
    );
    assert.equal(classifyHttpStatus(400, anthropicErrorToOpenAI(body)), 'contextLength');
  });
});

describe('stream error events classify through classifyErrorEvent', () => {
  const anthropicCases: Array<{ name: string; error: { type: string; message: string }; want: FailureClass }> = [
    // Anthropic's mid-stream overload is a server error.
    { name: 'overloaded_error', error: { type: 'overloaded_error', message: 'Overloaded' }, want: 'serverError' },
    // A rate limit in the stream is rateLimited.
    { name: 'rate_limit_error', error: { type: 'rate_limit_error', message: 'slow down' }, want: 'rateLimited' },
    // An unknown type is the upstream's fault.
    { name: 'api_error', error: { type: 'api_error', message: 'Internal server error' }, want: 'serverError' },
    // A too-long prompt reported as a stream event is contextLength.
    {
      name: 'invalid_request_error prompt too long',
      error: { type: 'invalid_request_error', message: 'prompt is too long: 210000 tokens > 200000 maximum' },
      want: 'contextLength',
    },
  ];
  for (const c of anthropicCases) {
    test(`anthropic ${c.name}`, () => {
      const [chunk, ...rest] = new AnthropicStreamToChat('m', 0).push('error', { type: 'error', error: c.error });
      assert.equal(rest.length, 0);
      assert.ok(chunk?.error, 'the chunk carries a top-level error');
      assert.equal(chunk.error.message, c.error.message);
      assert.equal(classifyErrorEvent(chunk), c.want);
    });
  }

  const geminiCases: Array<{ name: string; data: unknown; want: FailureClass }> = [
    // Gemini's overload inside an SSE stream.
    { name: 'UNAVAILABLE', data: geminiBody(503, 'UNAVAILABLE', 'The model is overloaded.'), want: 'serverError' },
    // Quota exhausted inside a stream.
    { name: 'RESOURCE_EXHAUSTED', data: geminiBody(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded'), want: 'rateLimited' },
    // Permission problems inside a stream.
    { name: 'PERMISSION_DENIED', data: geminiBody(403, 'PERMISSION_DENIED', 'denied'), want: 'authFailed' },
  ];
  for (const c of geminiCases) {
    test(`gemini ${c.name}`, () => {
      const [chunk, ...rest] = new GeminiStreamToChat('m', 0).push(c.data);
      assert.equal(rest.length, 0);
      assert.ok(chunk?.error, 'the chunk carries a top-level error');
      assert.equal(classifyErrorEvent(chunk), c.want);
    });
  }

  // The proxy's own mid-stream failure, written to an Anthropic caller.
  test('anthropicStreamError builds an Anthropic error event', () => {
    assert.deepEqual(anthropicStreamError('api_error', 'the upstream stream stalled'), {
      event: 'error',
      data: { type: 'error', error: { type: 'api_error', message: 'the upstream stream stalled' } },
    });
  });
});
