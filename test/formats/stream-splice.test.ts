// Splicing a second upstream's stream onto what the caller already has (pure): the
// Transcript of what was delivered, a continuation's chunks (one id, no second role, no
// repeated whitespace, usage covering the whole answer) and a restart's verification.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contentEvents, Splice, Transcript } from '../../src/wire/stream-splice.ts';
import type { JsonObject } from '../../src/core/json.ts';

const chunk = (id: string, delta: JsonObject, finish: string | null = null): JsonObject => ({
  id,
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

function delivered(...texts: string[]): Transcript {
  const t = new Transcript();
  t.record([chunk('first', { role: 'assistant', content: '' }), ...texts.map((content) => chunk('first', { content }))]);
  return t;
}

function texts(chunks: readonly JsonObject[]): string {
  return chunks.map((c) => ((c['choices'] as JsonObject[])[0]?.['delta'] as JsonObject | undefined)?.['content'] ?? '').join('');
}

describe('Transcript', () => {
  test('keeps the text, the first id, the content events and whether tool calls went out', () => {
    const t = delivered('Hello', ' world');
    assert.equal(t.text, 'Hello world');
    assert.equal(t.id, 'first');
    assert.equal(t.tokens, 2);
    assert.equal(t.toolCalls, false);
    t.record([chunk('first', { tool_calls: [{ index: 0, function: { arguments: '{' } }] })]);
    assert.equal(t.toolCalls, true);
  });

  test('contentEvents counts text and tool-call deltas, not role or finish chunks', () => {
    assert.equal(contentEvents([chunk('a', { role: 'assistant', content: '' }), chunk('a', { content: 'x' }), chunk('a', {}, 'stop')]), 1);
  });
});

describe('Splice: continue', () => {
  test('drops the second role chunk, keeps the first id, passes the text and the finish', () => {
    const splice = new Splice('continue', delivered('Hello'));
    const out = splice.accept([chunk('second', { role: 'assistant', content: '' }), chunk('second', { content: ' world' }), chunk('second', {}, 'stop')]);
    assert.equal(out.kind, 'chunks');
    assert.ok(out.kind === 'chunks');
    assert.equal(out.chunks.length, 2, 'the empty role chunk is gone');
    assert.ok(out.chunks.every((c) => c['id'] === 'first'));
    assert.ok(out.chunks.every((c) => !('role' in ((c['choices'] as JsonObject[])[0]?.['delta'] as JsonObject))));
    assert.equal(texts(out.chunks), ' world');
    assert.equal(splice.verified, true);
  });

  test('whitespace held back from the prefill is not delivered twice', () => {
    // "Hello " was sent as prefill "Hello"; the continuation starts with the space again.
    const splice = new Splice('continue', delivered('Hello '));
    const out = splice.accept([chunk('b', { content: ' world' })]);
    assert.ok(out.kind === 'chunks');
    assert.equal(texts(out.chunks), 'world');
  });

  test('a continuation that does not repeat the held-back whitespace is delivered as it came', () => {
    const splice = new Splice('continue', delivered('Hello '));
    const out = splice.accept([chunk('b', { content: 'world' })]);
    assert.ok(out.kind === 'chunks');
    assert.equal(texts(out.chunks), 'world');
  });

  test('a "continuation" that starts the answer anew is verified like a restart: the delivered text is not sent twice', () => {
    const splice = new Splice('continue', delivered('Once upon a time', ' there was'));
    const out: JsonObject[] = [];
    for (const content of ['Once ', 'upon a', ' time there', ' was a king.']) {
      const r = splice.accept([chunk('b', { content })]);
      assert.ok(r.kind === 'chunks');
      out.push(...r.chunks);
    }
    assert.equal(texts(out), ' a king.');
    assert.equal(splice.mode, 'restart');
  });

  test('a real continuation is held only until it shows it does not start anew', () => {
    const splice = new Splice('continue', delivered('Once upon a time'));
    const held = splice.accept([chunk('b', { content: ' there' })]);
    assert.ok(held.kind === 'chunks');
    assert.deepEqual(held.chunks, [], "held while it could still be the answer's beginning");
    const released = splice.accept([chunk('b', { content: ' was a king.' })]);
    assert.ok(released.kind === 'chunks');
    assert.equal(texts(released.chunks), ' there was a king.');
    assert.equal(splice.mode, 'continue');
  });

  test('usage covers the whole answer: what earlier attempts reported is added', () => {
    const splice = new Splice('continue', delivered('Hello'), { inputTokens: 10, outputTokens: 1, cachedInputTokens: 2 });
    const out = splice.accept([{ id: 'b', choices: [], usage: { prompt_tokens: 12, completion_tokens: 20, total_tokens: 32 } }]);
    assert.ok(out.kind === 'chunks');
    assert.deepEqual(out.chunks[0]?.['usage'], { prompt_tokens: 22, completion_tokens: 21, total_tokens: 43, prompt_tokens_details: { cached_tokens: 2 } });
  });
});

describe('Splice: restart', () => {
  test('the delivered text is matched across chunk boundaries and only the rest goes out', () => {
    const splice = new Splice('restart', delivered('Hello', ' wor'));
    const out: JsonObject[] = [];
    for (const c of [
      chunk('b', { role: 'assistant', content: '' }),
      chunk('b', { content: 'Hel' }),
      chunk('b', { content: 'lo w' }),
      chunk('b', { content: 'orld' }),
      chunk('b', { content: '!' }),
      chunk('b', {}, 'stop'),
    ]) {
      const r = splice.accept([c]);
      assert.ok(r.kind === 'chunks');
      out.push(...r.chunks);
    }
    assert.equal(texts(out), 'ld!');
    assert.equal(splice.verified, true);
    assert.ok(out.every((c) => c['id'] === 'first'));
  });

  test('nothing is verified until the whole delivered text was matched', () => {
    const splice = new Splice('restart', delivered('Hello world'));
    const r = splice.accept([chunk('b', { content: 'Hello' })]);
    assert.ok(r.kind === 'chunks');
    assert.deepEqual(r.chunks, []);
    assert.equal(splice.verified, false);
  });

  const divergences: Array<{ name: string; chunks: JsonObject[]; reason: RegExp }> = [
    // Different words: the restart would alter what the caller already read.
    { name: 'different text', chunks: [chunk('b', { content: 'Hi there' })], reason: /does not begin with/ },
    // It ends before it has said what was delivered: shorter than the text the caller has.
    { name: 'finish before the delivered text', chunks: [chunk('b', { content: 'Hel' }), chunk('b', {}, 'stop')], reason: /ended before/ },
    // A tool call where the caller has text.
    {
      name: 'tool call instead of text',
      chunks: [chunk('b', { tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '' } }] })],
      reason: /called a tool/,
    },
  ];
  for (const d of divergences) {
    test(`diverges: ${d.name}`, () => {
      const splice = new Splice('restart', delivered('Hello'));
      const results = d.chunks.map((c) => splice.accept([c]));
      const last = results.find((r) => r.kind === 'diverged');
      assert.ok(last && last.kind === 'diverged', 'diverged');
      assert.match(last.reason, d.reason);
    });
  }
});
