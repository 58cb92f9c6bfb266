// Properties of the stream translators over random splits of the same answer: the event
// sequence is always well-formed and nothing is lost, duplicated or reordered.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AnthropicStreamToChat, ChatStreamToAnthropic, type AnthropicSseEvent, type AnthropicStreamEvent } from '../../src/wire/anthropic/translate.ts';
import type { ChatChunk, ChatUsage, ChunkDelta, FinishReason } from '../../src/wire/openai-chat/types.ts';

interface ToolCallSpec {
  id: string;
  name: string;
  args: string;
}

interface Answer {
  text: string;
  tools: ToolCallSpec[];
}

const answerArb: fc.Arbitrary<Answer> = fc.record({
  text: fc.string({ maxLength: 60 }),
  tools: fc.array(fc.record({ id: fc.stringMatching(/^call_[A-Za-z0-9]{4,10}$/), name: fc.stringMatching(/^[a-z_]{1,12}$/), args: fc.json({ maxDepth: 2 }) }), {
    maxLength: 3,
  }),
});

/** Cuts `s` into consecutive pieces whose sizes cycle through `sizes` (all >= 1). */
function split(s: string, sizes: number[]): string[] {
  const pieces: string[] = [];
  let at = 0;
  for (let i = 0; at < s.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    pieces.push(s.slice(at, at + size));
    at += size;
  }
  return pieces;
}

const sizesArb = fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 12 });

// ---------------------------------------------------------------------------------------
// OpenAI chunks -> Anthropic events

interface ChunkingOptions {
  sizes: number[];
  roleChunk: boolean; // OpenAI's first chunk: role with content ""
  finishAlone: boolean; // finish_reason in its own chunk, or on the last content chunk
  usage: boolean; // a trailing usage chunk (include_usage)
  emptyArgsFirst: boolean; // the first tool-call delta carries arguments ""
}

const optionsArb: fc.Arbitrary<ChunkingOptions> = fc.record({
  sizes: sizesArb,
  roleChunk: fc.boolean(),
  finishAlone: fc.boolean(),
  usage: fc.boolean(),
  emptyArgsFirst: fc.boolean(),
});

const USAGE: ChatUsage = { prompt_tokens: 31, completion_tokens: 17, total_tokens: 48, prompt_tokens_details: { cached_tokens: 8 } };

function chunk(delta: ChunkDelta, finish: FinishReason | null = null): ChatChunk {
  return { id: 'chatcmpl-p', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta, finish_reason: finish }] };
}

function toChunks(answer: Answer, o: ChunkingOptions): ChatChunk[] {
  const chunks: ChatChunk[] = [];
  if (o.roleChunk) chunks.push(chunk({ role: 'assistant', content: '' }));
  for (const piece of split(answer.text, o.sizes)) chunks.push(chunk({ content: piece }));
  answer.tools.forEach((tool, index) => {
    const pieces = split(tool.args, o.sizes);
    const first = o.emptyArgsFirst ? '' : (pieces.shift() ?? '');
    chunks.push(chunk({ tool_calls: [{ index, id: tool.id, type: 'function', function: { name: tool.name, arguments: first } }] }));
    for (const piece of pieces) chunks.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  const finish: FinishReason = answer.tools.length > 0 ? 'tool_calls' : 'stop';
  const last = chunks[chunks.length - 1]?.choices[0];
  if (o.finishAlone || !last) chunks.push(chunk({}, finish));
  else last.finish_reason = finish;
  if (o.usage) chunks.push({ id: 'chatcmpl-p', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: USAGE });
  return chunks;
}

/** Checks the Anthropic event grammar; returns the blocks' content in order. */
function checkSequence(events: AnthropicSseEvent[]): Array<{ type: 'text' | 'tool_use'; id?: string; name?: string; content: string }> {
  for (const e of events) assert.equal(e.event, e.data.type, 'SSE event name equals data.type');
  const types = events.map((e) => e.event);
  assert.equal(types[0], 'message_start');
  assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
  assert.equal(types.filter((t) => t === 'message_start').length, 1);
  assert.equal(types.filter((t) => t === 'message_delta').length, 1);
  assert.equal(types.filter((t) => t === 'message_stop').length, 1);

  const blocks: Array<{ type: 'text' | 'tool_use'; id?: string; name?: string; content: string }> = [];
  let open: number | undefined;
  for (const { data } of events.slice(1, -2)) {
    switch (data.type) {
      case 'content_block_start': {
        assert.equal(open, undefined, 'a block starts only after the previous one stopped');
        assert.equal(data.index, blocks.length, 'block indexes count up from 0');
        open = data.index;
        const block = data.content_block;
        blocks.push(block.type === 'tool_use' ? { type: 'tool_use', id: block.id, name: block.name, content: '' } : { type: 'text', content: '' });
        break;
      }
      case 'content_block_delta': {
        assert.equal(data.index, open, 'every delta belongs to the open block (started before, not yet stopped)');
        const block = blocks[data.index];
        assert.ok(block);
        if (data.delta.type === 'text_delta') {
          assert.equal(block.type, 'text');
          block.content += data.delta.text;
        } else {
          assert.equal(block.type, 'tool_use');
          block.content += data.delta.partial_json;
        }
        break;
      }
      case 'content_block_stop':
        assert.equal(data.index, open, 'a stop closes the open block');
        open = undefined;
        break;
      default:
        assert.fail(`unexpected ${data.type} between message_start and message_delta`);
    }
  }
  assert.equal(open, undefined, 'every started block is stopped before message_delta');
  return blocks;
}

describe('ChatStreamToAnthropic', () => {
  test('random splits of text and tool-call arguments give a valid sequence with the same content', () => {
    fc.assert(
      fc.property(answerArb, optionsArb, (answer, options) => {
        const translator = new ChatStreamToAnthropic('step-model');
        const events = [...toChunks(answer, options).flatMap((c) => translator.push(c)), ...translator.finish()];
        const blocks = checkSequence(events);

        const textBlocks = blocks.filter((b) => b.type === 'text');
        assert.ok(textBlocks.length <= 1, 'consecutive text stays in one block');
        assert.equal(textBlocks.map((b) => b.content).join(''), answer.text);
        if (answer.text !== '') assert.equal(blocks[0]?.type, 'text', 'text comes first, as it was sent');
        const toolBlocks = blocks.filter((b) => b.type === 'tool_use');
        assert.deepEqual(
          toolBlocks.map((b) => ({ id: b.id, name: b.name, args: b.content })),
          answer.tools.map((t) => ({ id: t.id, name: t.name, args: t.args })),
        );

        const delta = events[events.length - 2]?.data;
        assert.ok(delta?.type === 'message_delta');
        assert.equal(delta.delta.stop_reason, answer.tools.length > 0 ? 'tool_use' : 'end_turn');
        assert.equal(delta.usage.output_tokens, options.usage ? USAGE.completion_tokens : 0);
        assert.equal(delta.usage.cache_read_input_tokens, options.usage ? 8 : 0);
        assert.deepEqual(translator.finish(), [], 'finish() after the end adds nothing');
      }),
      { numRuns: 300 },
    );
  });

  // Events are written as chunks arrive: nothing is held back except the final message_delta.
  test('each content chunk produces its delta immediately', () => {
    const translator = new ChatStreamToAnthropic('step-model');
    assert.deepEqual(
      translator.push(chunk({ role: 'assistant', content: '' })).map((e) => e.event),
      ['message_start'],
    );
    assert.deepEqual(
      translator.push(chunk({ content: 'Hel' })).map((e) => e.event),
      ['content_block_start', 'content_block_delta'],
    );
    assert.deepEqual(
      translator.push(chunk({ content: 'lo' })).map((e) => e.event),
      ['content_block_delta'],
    );
    assert.deepEqual(
      translator.push(chunk({}, 'stop')).map((e) => e.event),
      ['content_block_stop'],
    );
    assert.deepEqual(
      translator.push({ id: 'chatcmpl-p', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: USAGE }).map((e) => e.event),
      ['message_delta', 'message_stop'],
    );
    assert.deepEqual(translator.push(chunk({ content: 'late' })), [], 'nothing after message_stop');
  });

  // An upstream stream that ended with [DONE] and no chunk at all still gives a well-formed empty message.
  test('finish() with no chunk gives an empty, well-formed message', () => {
    const events = new ChatStreamToAnthropic('step-model').finish();
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'message_delta', 'message_stop'],
    );
    const start = events[0]?.data;
    assert.ok(start?.type === 'message_start');
    assert.equal(start.message.model, 'step-model');
    assert.match(start.message.id, /^msg_[0-9a-f]{32}$/);
  });
});

// ---------------------------------------------------------------------------------------
// Anthropic events -> OpenAI chunks

function anthropicEvents(answer: Answer, sizes: number[], pings: boolean): Array<{ name: string; data: AnthropicStreamEvent }> {
  const out: Array<{ name: string; data: AnthropicStreamEvent }> = [];
  const add = (data: AnthropicStreamEvent): void => {
    out.push({ name: data.type, data });
  };
  add({
    type: 'message_start',
    message: {
      id: 'msg_p',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 1, cache_read_input_tokens: 5 },
    },
  });
  let index = 0;
  if (answer.text !== '') {
    add({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    if (pings) add({ type: 'ping' });
    for (const piece of split(answer.text, sizes)) add({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    add({ type: 'content_block_stop', index });
    index++;
  }
  for (const tool of answer.tools) {
    add({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} } });
    add({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of split(tool.args, sizes)) add({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
    add({ type: 'content_block_stop', index });
    index++;
  }
  add({
    type: 'message_delta',
    delta: { stop_reason: answer.tools.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { input_tokens: 20, output_tokens: 42 },
  });
  add({ type: 'message_stop' });
  return out;
}

describe('AnthropicStreamToChat', () => {
  test('random splits give chunks that rebuild the same text and tool calls, with one role and one finish', () => {
    fc.assert(
      fc.property(answerArb, sizesArb, fc.boolean(), (answer, sizes, pings) => {
        const translator = new AnthropicStreamToChat('step-model', 1);
        const chunks = anthropicEvents(answer, sizes, pings).flatMap((e) => translator.push(e.name, e.data));
        let text = '';
        const tools: ToolCallSpec[] = [];
        const finishes: unknown[] = [];
        let roles = 0;
        for (const c of chunks) {
          assert.equal(c.object, 'chat.completion.chunk');
          for (const choice of c.choices) {
            if (choice.delta.role) roles++;
            text += choice.delta.content ?? '';
            for (const call of choice.delta.tool_calls ?? []) {
              if (call.id) tools[call.index] = { id: call.id, name: call.function?.name ?? '', args: '' };
              const tool = tools[call.index];
              assert.ok(tool, 'an argument fragment follows its call');
              tool.args += call.function?.arguments ?? '';
            }
            if (choice.finish_reason) finishes.push(choice.finish_reason);
          }
        }
        assert.equal(roles, 1, 'the role is sent exactly once');
        assert.equal(text, answer.text);
        assert.deepEqual(
          tools,
          answer.tools.map((t) => ({ id: t.id, name: t.name, args: t.args })),
        );
        assert.deepEqual(finishes, [answer.tools.length > 0 ? 'tool_calls' : 'stop']);
        const last = chunks[chunks.length - 1];
        assert.deepEqual(last?.choices, [], 'the usage chunk comes last, with no choices');
        assert.deepEqual(last?.usage, { prompt_tokens: 25, completion_tokens: 42, total_tokens: 67, prompt_tokens_details: { cached_tokens: 5 } });
        assert.equal(translator.finished, true);
      }),
      { numRuns: 300 },
    );
  });
});
