// Golden transcripts for the Responses API unit, both sides:
//   responses-to-chat-request   a caller's Responses request -> the canonical request (or the refusal)
//   chat-to-responses-request   the canonical request -> an `api: openai-responses` upstream's request
//   chat-to-responses-response  a canonical answer -> the caller's `response` object
//   responses-to-chat-response  an upstream's `response` object -> the canonical answer
//   chat-to-responses-stream    canonical chunks -> the caller's typed events (each transcript also
//                               checked against the real API's event order)
//   responses-to-chat-stream    an upstream's typed events -> canonical chunks
// Then the round trips: answer and stream out to the Responses API and back lose nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { chatResponseToResponses, responsesResponseToChat } from '../../../src/wire/openai-responses/answer.ts';
import { statefulRefusal } from '../../../src/wire/openai-responses/caller.ts';
import { chatRequestToResponses, responsesRequestToChat } from '../../../src/wire/openai-responses/request.ts';
import { ResponsesStreamToChat } from '../../../src/wire/openai-responses/stream-in.ts';
import { ChatStreamToResponses } from '../../../src/wire/openai-responses/stream-out.ts';
import type { ChatChunk, ChatRequest, ChatResponse, JsonObject } from '../../../src/wire/openai-chat/types.ts';
import { FIXTURES, goldenJson, goldenSse, parseSse, type SseEvent } from '../../formats/golden.ts';
import { checkResponsesStream, validateRequest } from '../../support/responses-mock.ts';

/** A thrown translation error as a golden value. */
function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    return { threw: error.name, message: error.message };
  }
}

/** What a caller's request sent with the fixture gets: the stateless check's 400, or the translation. */
goldenJson('responses-to-chat-request', (input) => statefulRefusal(input as JsonObject) ?? outcome(() => responsesRequestToChat(input as JsonObject)));
goldenJson('chat-to-responses-request', (input) => outcome(() => chatRequestToResponses(input as ChatRequest)));

const REQUEST = { model: 'support', instructions: 'Be brief.', max_output_tokens: 256, tools: [], store: true };
goldenJson('chat-to-responses-response', (input) => outcome(() => chatResponseToResponses(input as ChatResponse, REQUEST)));
goldenJson('responses-to-chat-response', (input) => outcome(() => responsesResponseToChat(input as JsonObject, 'step-model')));

/** `data: [DONE]` ends the stream as the proxy does (finish()); a transcript without it is a broken stream. */
function chatToResponses(events: SseEvent[]): JsonObject[] {
  const translator = new ChatStreamToResponses(REQUEST, 'step-model');
  const out = events.flatMap((e) => (e.data === '[DONE]' ? translator.finish() : translator.push(JSON.parse(e.data) as ChatChunk)));
  if (!events.some((e) => e.data === '[DONE]'))
    out.push(...translator.fail('upstream_stream_cut', 'the upstream connection broke in the middle of the stream'));
  return out;
}

goldenSse('chat-to-responses-stream', (events) => {
  const out = chatToResponses(events);
  checkResponsesStream(out);
  return out;
});

goldenSse('responses-to-chat-stream', (events) => {
  const translator = new ResponsesStreamToChat('step-model');
  return events.flatMap((e) => translator.push(JSON.parse(e.data) as JsonObject));
});

// ---------------------------------------------------------------------------------------
// Round trips

const casesIn = (direction: string, ext: string): string[] =>
  readdirSync(`${FIXTURES}${direction}/`)
    .filter((f) => f.endsWith(ext))
    .map((f) => `${FIXTURES}${direction}/${f}`);

for (const file of casesIn('chat-to-responses-response', '.in.json')) {
  test(`round trip: ${file.split('/').slice(-1)[0]}: a canonical answer through the Responses API and back`, () => {
    const chat = JSON.parse(readFileSync(file, 'utf8')) as ChatResponse;
    const back = responsesResponseToChat(chatResponseToResponses(chat, REQUEST), 'step-model');
    const message = chat.choices[0]?.message;
    const returned = back.choices[0]?.message;
    assert.equal(returned?.content ?? null, message?.content === '' ? null : (message?.content ?? null));
    assert.equal(returned?.refusal ?? null, message?.refusal ?? null);
    assert.deepEqual(
      returned?.tool_calls?.map((c) => [c.id, c.function.name, c.function.arguments]),
      message?.tool_calls?.map((c) => [c.id, c.function.name, c.function.arguments]),
    );
    const finish = chat.choices[0]?.finish_reason;
    assert.equal(back.choices[0]?.finish_reason, finish === 'content_filter' || finish === 'length' || finish === 'tool_calls' ? finish : 'stop');
    if (chat.usage) {
      assert.equal(back.usage?.prompt_tokens, chat.usage.prompt_tokens);
      assert.equal(back.usage?.completion_tokens, chat.usage.completion_tokens);
      assert.equal(back.usage?.prompt_tokens_details?.cached_tokens ?? 0, chat.usage.prompt_tokens_details?.cached_tokens ?? 0);
    }
  });
}

for (const file of casesIn('chat-to-responses-stream', '.in.sse')) {
  test(`round trip: ${file.split('/').slice(-1)[0]}: a canonical stream through the Responses API's events and back`, () => {
    const events = parseSse(readFileSync(file, 'utf8'));
    const chunks = events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as ChatChunk);
    const back = new ResponsesStreamToChat('step-model');
    const returned = chatToResponses(events).flatMap((event) => back.push(event));
    const summary = (list: ChatChunk[]): JsonObject => {
      let text = '';
      let refusal = '';
      const args = new Map<number, string>();
      let finish: unknown = null;
      for (const chunk of list) {
        const choice = chunk.choices?.[0];
        text += choice?.delta?.content ?? '';
        refusal += choice?.delta?.refusal ?? '';
        for (const call of choice?.delta?.tool_calls ?? []) args.set(call.index, (args.get(call.index) ?? '') + (call.function?.arguments ?? ''));
        if (choice?.finish_reason) finish = choice.finish_reason;
      }
      return { text, refusal, args: [...args.values()], finish };
    };
    assert.deepEqual(summary(returned), summary(chunks));
    assert.equal(
      back.finished,
      events.some((e) => e.data === '[DONE]'),
    );
  });
}

// Every request the upstream side builds is one the strict mock (the real API's rules) accepts.
test('chat-to-responses-request: every golden output is a request the Responses API accepts', () => {
  for (const file of casesIn('chat-to-responses-request', '.out.json')) {
    const golden = JSON.parse(readFileSync(file, 'utf8')) as { value?: JsonObject };
    if (golden.value) assert.doesNotThrow(() => validateRequest(golden.value as JsonObject), file);
  }
});
