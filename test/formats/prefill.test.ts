// The continuation request (pure): the conversation plus the delivered text as a trailing
// assistant message, in the caller's body and in the canonical form, with what is left of
// the caller's output limit.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canPrefill, prefillText, withPrefill } from '../../src/wire/prefill.ts';
import type { ChatRequest } from '../../src/wire/openai-chat/types.ts';
import type { CallerRequest } from '../../src/wire/codec.ts';
import { requestFacts } from '../../src/wire/openai-chat/facts.ts';

const facts = { ...requestFacts({}), stream: true, tools: false };

function openAICall(body: Record<string, unknown>): CallerRequest {
  return { format: 'openai', operation: 'chat', body, stream: true, facts, canonical: { value: body as unknown as ChatRequest, dropped: [] }, passHeaders: {} };
}

describe('withPrefill', () => {
  test('appends the delivered text as an assistant message, in the body and the canonical request', () => {
    const call = openAICall({ model: 'c', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const out = withPrefill(call, 'Once upon', 2);
    const want = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Once upon' },
    ];
    assert.deepEqual(out.body['messages'], want);
    assert.ok(!(out.canonical instanceof Error));
    assert.deepEqual(out.canonical.value.messages, want);
    assert.deepEqual(call.body['messages'], [{ role: 'user', content: 'hi' }], 'the original request is left as it was');
  });

  test("the caller's own prefill is continued, not followed by a second assistant message", () => {
    const anthropic: CallerRequest = {
      format: 'anthropic',
      operation: 'messages',
      stream: true,
      passHeaders: {},
      facts,
      body: {
        model: 'c',
        max_tokens: 100,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'text', text: 'Sure:' }] },
        ],
      },
      canonical: {
        value: {
          model: 'c',
          max_tokens: 100,
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: 'Sure:' },
          ],
        },
        dropped: [],
      },
    };
    const out = withPrefill(anthropic, ' one', 1);
    assert.deepEqual((out.body['messages'] as unknown[])[1], {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Sure:' },
        { type: 'text', text: ' one' },
      ],
    });
    assert.ok(!(out.canonical instanceof Error));
    assert.deepEqual(out.canonical.value.messages[1], { role: 'assistant', content: 'Sure: one' });
  });

  test('output limits are lowered by the tokens already delivered (never below 1)', () => {
    const out = withPrefill(openAICall({ model: 'c', messages: [], max_tokens: 100, max_completion_tokens: 30 }), 'x', 40);
    assert.equal(out.body['max_tokens'], 60);
    assert.equal(out.body['max_completion_tokens'], 1);
  });

  test('trailing whitespace is held back (Anthropic rejects a final assistant message ending in it)', () => {
    assert.equal(prefillText('Hello \n'), 'Hello');
    const out = withPrefill(openAICall({ model: 'c', messages: [] }), 'Hello ', 1);
    assert.deepEqual(out.body['messages'], [{ role: 'assistant', content: 'Hello' }]);
  });

  test('a legacy completion continues its prompt', () => {
    const call: CallerRequest = {
      format: 'openai',
      operation: 'completions',
      body: { model: 'c', prompt: 'Say: ' },
      stream: true,
      canonical: new Error('n/a') as never,
      passHeaders: {},
      facts,
    };
    assert.equal(withPrefill(call, 'one two', 2).body['prompt'], 'Say: one two');
  });
});

describe('canPrefill', () => {
  const cases: Array<{ name: string; call: CallerRequest; want: boolean }> = [
    { name: 'chat with one choice', call: openAICall({ messages: [] }), want: true },
    // Several choices are interleaved in one stream: which text to continue is not one answer.
    { name: 'n > 1', call: openAICall({ messages: [], n: 2 }), want: false },
    { name: 'a completion of a string prompt', call: { ...openAICall({ prompt: 'x' }), operation: 'completions' }, want: true },
    { name: 'a completion of several prompts', call: { ...openAICall({ prompt: ['x', 'y'] }), operation: 'completions' }, want: false },
  ];
  for (const c of cases) test(c.name, () => assert.equal(canPrefill(c.call), c.want));
});
