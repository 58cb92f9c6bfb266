// Property tests of the failure classifier (src/core/failure.ts): whatever status and body an
// upstream sends, classification never throws and keeps the contract's invariants.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classifyErrorEvent, classifyHttpStatus, extractErrorInfo } from '../../src/core/failure.ts';
import { FAILURE_CLASSES } from '../../src/core/types.ts';

const RUNS = 200;

// Error bodies as providers shape them (OpenAI, Anthropic, Gemini, Gemini's one-element array),
// with arbitrary codes, types and messages, plus anything at all.
const textArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    'rate_limit_exceeded',
    'context_length_exceeded',
    'content_policy_violation',
    'content_filter',
    'invalid_api_key',
    'RESOURCE_EXHAUSTED',
    'permission_error',
    'overloaded_error',
    'server_error',
    'prompt is too long',
    'safety system',
    'SAFETY',
  ),
);
const fieldArb = fc.oneof(textArb, fc.integer(), fc.constant(null), fc.constant(undefined), fc.anything({ maxDepth: 1 }));
const errorObjectArb = fc.record({ code: fieldArb, type: fieldArb, status: fieldArb, message: fieldArb }, { requiredKeys: [] });
const bodyArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ error: errorObjectArb }),
  fc.record({ type: fc.constant('error'), error: errorObjectArb }),
  errorObjectArb,
  fc.tuple(fc.record({ error: errorObjectArb })),
  fc.anything(),
  fc.jsonValue(),
  fc.string(),
);

// Any number an HTTP layer could hand over: real statuses, and nonsense ones.
const statusArb = fc.oneof(fc.integer({ min: 100, max: 599 }), fc.integer(), fc.double());

const CLASSES: readonly string[] = FAILURE_CLASSES;

describe('classifyHttpStatus (fast-check)', () => {
  test('never throws, and answers a known class or undefined', () => {
    fc.assert(
      fc.property(statusArb, bodyArb, (status, body) => {
        const got = classifyHttpStatus(status, body);
        assert.ok(got === undefined || CLASSES.includes(got), `unknown class ${String(got)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('undefined (success) exactly for 2xx statuses, whatever the body', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 10_000 }), bodyArb, (status, body) => {
        const is2xx = status >= 200 && status <= 299;
        assert.equal(classifyHttpStatus(status, body) === undefined, is2xx, `status ${status}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('429 is always rateLimited and 5xx always serverError, whatever the body says', () => {
    fc.assert(
      fc.property(fc.integer({ min: 500, max: 599 }), bodyArb, (status, body) => {
        assert.equal(classifyHttpStatus(429, body), 'rateLimited');
        assert.equal(classifyHttpStatus(status, body), 'serverError');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('classifyErrorEvent (fast-check)', () => {
  test("never throws and never answers badRequest: an error inside a 200 is the upstream's fault or a known class", () => {
    fc.assert(
      fc.property(bodyArb, (body) => {
        const got = classifyErrorEvent(body);
        assert.ok(CLASSES.includes(got), `unknown class ${String(got)}`);
        assert.notEqual(got, 'badRequest');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('extractErrorInfo (fast-check)', () => {
  test('never throws and only ever reports strings', () => {
    fc.assert(
      fc.property(bodyArb, (body) => {
        const info = extractErrorInfo(body);
        for (const key of ['code', 'type', 'message'] as const) {
          assert.ok(info[key] === undefined || typeof info[key] === 'string', `${key} is ${typeof info[key]}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
