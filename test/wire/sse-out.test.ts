// An upstream event whose data spans several `data:` lines (valid SSE: the parser joins them
// with "\n") must reach a caller of the same format as valid SSE too: a pass-through writer
// that put the joined data on one `data:` line ended the event at the first line break.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { anthropic } from '../../src/wire/anthropic/index.ts';
import { openAIResponses } from '../../src/wire/openai-responses/index.ts';
import type { CallerRequest } from '../../src/wire/codec.ts';
import { rewrittenSseData, sseEvent } from '../../src/wire/sse-out.ts';
import { Redactor } from '../../src/core/redact.ts';

function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}

const data = '{"type":"content_block_delta","index":0,\n"delta":{"type":"text_delta","text":"hi"}}';

test('sseEvent writes one data line per line of the data, and one line when there is no break', () => {
  assert.equal(sseEvent('{"a":1}', 'x'), 'event: x\ndata: {"a":1}\n\n');
  assert.equal(sseEvent('a\nb'), 'data: a\ndata: b\n\n');
  assert.deepEqual(
    parse(sseEvent(data, 'content_block_delta')).map((e) => [e.event, e.data]),
    [['content_block_delta', data]],
  );
});

for (const [name, codec, event] of [
  ['anthropic', anthropic.caller, 'content_block_delta'],
  ['openai-responses', openAIResponses.caller, 'response.output_text.delta'],
] as const) {
  test(`${name}: a passed-through event with multi-line data reaches the caller as the same event`, () => {
    const encoder = codec.streamEncoder({ model: 'm', passthrough: true, request: {} as CallerRequest });
    const out = encoder.encode({ chunks: [], raw: { event, data } });
    const events = parse(out);
    assert.equal(events.length, 1, out);
    assert.equal(events[0]?.event, event);
    assert.equal(events[0]?.data, data);
    assert.deepEqual(JSON.parse(events[0]?.data ?? ''), JSON.parse(data));
  });
}

test('an event passed on as it came with a key under two escapes: mentioned, and gone once its data is written again and redacted', () => {
  const key = 'sk-sse-out-0123456789abcdef';
  const redactor = new Redactor([key]);
  const text = sseEvent(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"echo \\u002573${key.slice(1)} end"}}`, 'content_block_delta');
  assert.equal(redactor.redactKnown(text), text, 'one level of escapes: the plain rules see nothing');
  assert.equal(redactor.mentions(text), true);
  const out = redactor.redactKnown(rewrittenSseData(text));
  const [event] = parse(out);
  const delta = (JSON.parse(event?.data ?? '{}') as { delta: { text: string } }).delta.text;
  assert.ok(!decodeURIComponent(delta.replace(/\[REDACTED\]/g, '')).includes(key), delta);
  assert.match(delta, /\[REDACTED\]/);
  assert.equal(redactor.mentions('{"text":"nothing here"}'), false);
});
