// What the translators refuse: requests a target format cannot serve faithfully
// (UnservableRequest: the proxy skips the step), caller bodies that are not valid Messages
// requests (InvalidRequest: 400), and upstream 2xx bodies that are not answers
// (MalformedUpstream: a classified serverError, not a crash).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicRequestToChat, anthropicResponseToChat, chatRequestToAnthropic, chatResponseToAnthropic } from '../../src/wire/anthropic/translate.ts';
import { chatRequestToGemini, geminiResponseToChat } from '../../src/wire/gemini/translate.ts';
import type { ChatRequest, ChatResponse } from '../../src/wire/openai-chat/types.ts';
import { InvalidRequest, MalformedUpstream, UnservableRequest } from '../../src/wire/errors.ts';

const user = (content: ChatRequest['messages'][number]['content']): ChatRequest['messages'][number] => ({ role: 'user', content: content as string });
const chat = (extra: Record<string, unknown>, messages: ChatRequest['messages'] = [user('hi')]): ChatRequest => ({ model: 'm', messages, ...extra });
const weatherTool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } };
const badArgsHistory: ChatRequest['messages'] = [
  user('weather?'),
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location": "Par' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
];
const arrayArgsHistory: ChatRequest['messages'] = [
  user('weather?'),
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '["Paris"]' } }] },
];

describe('UnservableRequest: chat -> anthropic', () => {
  const cases: Array<{ name: string; request: ChatRequest; reason: RegExp }> = [
    // Anthropic has no n: asking for two answers cannot be honoured by one.
    { name: 'n > 1', request: chat({ n: 2 }), reason: /n > 1/ },
    // Claude does not take audio input.
    {
      name: 'audio input',
      request: chat({}, [user([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }] as never)]),
      reason: /audio input/,
    },
    // Spoken output cannot be produced.
    { name: 'audio output', request: chat({ modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } }), reason: /audio output/ },
    // A modality other than text without the audio parameter is still refused.
    { name: 'audio modality', request: chat({ modalities: ['text', 'audio'] }), reason: /modalities/ },
    // File parts (PDFs by id or data) are not translated to Anthropic.
    { name: 'file part', request: chat({}, [user([{ type: 'file', file: { file_id: 'file-abc' } }] as never)]), reason: /file parts/ },
    // A strict schema is a guarantee Anthropic cannot give, so the step is skipped rather than the JSON silently unvalidated.
    {
      name: 'strict json_schema',
      request: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'object' } } } }),
      reason: /strict/,
    },
    // A truncated arguments string cannot become Anthropic's tool_use input object.
    { name: 'tool call arguments not JSON', request: chat({ tools: [weatherTool] }, badArgsHistory), reason: /not a JSON object/ },
    // Valid JSON that is not an object cannot be a tool input either.
    { name: 'tool call arguments a JSON array', request: chat({ tools: [weatherTool] }, arrayArgsHistory), reason: /not a JSON object/ },
    // Anthropic accepts jpeg, png, gif, webp only.
    { name: 'bmp image', request: chat({}, [user([{ type: 'image_url', image_url: { url: 'data:image/bmp;base64,Qk0=' } }] as never)]), reason: /image\/bmp/ },
    // A file: URL is neither inline data nor fetchable.
    {
      name: 'file: image URL',
      request: chat({}, [user([{ type: 'image_url', image_url: { url: 'file:///tmp/cat.png' } }] as never)]),
      reason: /data: URL or an http/,
    },
    // OpenAI's custom (free-form grammar) tools have no Anthropic equivalent.
    { name: 'custom tool type', request: chat({ tools: [{ type: 'custom', custom: { name: 'grammar' } } as never] }), reason: /tools of type custom/ },
    // Forcing a tool call with no tools cannot be honoured.
    { name: 'tool_choice required without tools', request: chat({ tool_choice: 'required' }), reason: /no tools/ },
    // The deprecated functions API is not translated.
    { name: 'legacy functions', request: chat({ functions: [{ name: 'f', parameters: {} }] }), reason: /legacy functions/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => chatRequestToAnthropic(c.request),
        (error: unknown) => {
          assert.ok(error instanceof UnservableRequest);
          assert.equal(error.code, 'UNSERVABLE');
          assert.match(error.message, c.reason);
          return true;
        },
      );
    });
  }
});

describe('UnservableRequest: chat -> gemini', () => {
  const cases: Array<{ name: string; request: ChatRequest; reason: RegExp }> = [
    // Gemini's functionResponse needs the function's name, found only through the call id.
    {
      name: 'tool message answering no call',
      request: chat({}, [user('x'), { role: 'tool', tool_call_id: 'call_missing', content: '1' }]),
      reason: /answers no earlier assistant tool call/,
    },
    // fileData needs a media type; an extension-less URL gives none.
    {
      name: 'image URL without extension',
      request: chat({}, [user([{ type: 'image_url', image_url: { url: 'https://example.com/render?id=7' } }] as never)]),
      reason: /known image extension/,
    },
    // Uploaded OpenAI file ids mean nothing to Gemini.
    { name: 'file part by id', request: chat({}, [user([{ type: 'file', file: { file_id: 'file-abc' } }] as never)]), reason: /file_id/ },
    // functionCall.args must be an object.
    { name: 'tool call arguments not JSON', request: chat({}, badArgsHistory), reason: /not a JSON object/ },
    // Spoken output is not translated.
    { name: 'audio output', request: chat({ audio: { voice: 'alloy', format: 'wav' } }), reason: /audio output/ },
    // Forcing a tool call with no tools cannot be honoured.
    { name: 'tool_choice required without tools', request: chat({ tool_choice: 'required' }), reason: /no tools/ },
    // OpenAI's custom tools have no Gemini equivalent.
    { name: 'custom tool type', request: chat({ tools: [{ type: 'custom', custom: { name: 'grammar' } } as never] }), reason: /tools of type custom/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => chatRequestToGemini(c.request, false),
        (error: unknown) => {
          assert.ok(error instanceof UnservableRequest);
          assert.match(error.message, c.reason);
          return true;
        },
      );
    });
  }

  // Gemini ids repeat across turns (call_<n>): the name comes from the NEAREST earlier assistant turn.
  test('a reused tool_call_id resolves to the nearest earlier call', () => {
    const { value } = chatRequestToGemini(
      chat({}, [
        user('a'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'first', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_0', content: 'one' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'second', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_0', content: 'two' },
      ]),
      false,
    );
    const names = value.body.contents.flatMap((c) => c.parts).flatMap((p) => (p.functionResponse ? [p.functionResponse.name] : []));
    assert.deepEqual(names, ['first', 'second']);
  });
});

describe('UnservableRequest: anthropic caller -> chat', () => {
  const base = { model: 'claude', max_tokens: 100 };
  const cases: Array<{ name: string; body: unknown; reason: RegExp }> = [
    // PDFs and text documents have no OpenAI Chat content part most upstreams accept.
    {
      name: 'document block',
      body: {
        ...base,
        messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } }] }],
      },
      reason: /document blocks/,
    },
    // Server tools run inside Anthropic's platform.
    {
      name: 'server tool',
      body: { ...base, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }], messages: [{ role: 'user', content: 'news?' }] },
      reason: /server tool web_search_20250305/,
    },
    // OpenAI tool messages carry text only.
    {
      name: 'image in tool_result',
      body: {
        ...base,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBO' } }] },
            ],
          },
        ],
      },
      reason: /images inside tool_result/,
    },
    // Files API ids are only valid at Anthropic.
    {
      name: 'image from Files API',
      body: { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'file_011' } }] }] },
      reason: /image source of type file/,
    },
    // The MCP connector makes Anthropic call remote tools.
    {
      name: 'mcp_servers',
      body: { ...base, mcp_servers: [{ type: 'url', url: 'https://mcp.example.com/sse', name: 'ex' }], messages: [{ role: 'user', content: 'hi' }] },
      reason: /mcp_servers/,
    },
    // A server tool's call in the history cannot be replayed elsewhere.
    {
      name: 'server_tool_use in history',
      body: {
        ...base,
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: [{ type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'x' } }] },
        ],
      },
      reason: /server_tool_use/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => anthropicRequestToChat(c.body),
        (error: unknown) => {
          assert.ok(error instanceof UnservableRequest);
          assert.match(error.message, c.reason);
          return true;
        },
      );
    });
  }
});

describe('InvalidRequest: bodies that are not Messages requests', () => {
  const base = { model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
  const cases: Array<{ name: string; body: unknown; message: RegExp }> = [
    // A JSON array is not a request object.
    { name: 'array body', body: [base], message: /JSON object/ },
    // null (a body of "null") is not a request object.
    { name: 'null body', body: null, message: /JSON object/ },
    // max_tokens is required by the Messages API.
    { name: 'missing max_tokens', body: { model: 'claude', messages: [] }, message: /max_tokens: Field required/ },
    // max_tokens must be a positive integer.
    { name: 'max_tokens 0', body: { ...base, max_tokens: 0 }, message: /max_tokens/ },
    // A fractional max_tokens is invalid too.
    { name: 'max_tokens 1.5', body: { ...base, max_tokens: 1.5 }, message: /max_tokens/ },
    // messages must be a list.
    { name: 'messages not an array', body: { ...base, messages: { role: 'user', content: 'hi' } }, message: /messages: Input should be a valid list/ },
    // messages is required.
    { name: 'messages missing', body: { model: 'claude', max_tokens: 10 }, message: /messages/ },
    // model is required.
    { name: 'model missing', body: { max_tokens: 10, messages: [] }, message: /model/ },
    // System prompts go in `system`, not in messages.
    { name: 'system role in messages', body: { ...base, messages: [{ role: 'system', content: 'x' }] }, message: /messages\.0\.role/ },
    // Content must be a string or a block list.
    { name: 'numeric content', body: { ...base, messages: [{ role: 'user', content: 42 }] }, message: /messages\.0\.content/ },
    // Every block has a type.
    { name: 'block without type', body: { ...base, messages: [{ role: 'user', content: [{ text: 'x' }] }] }, message: /needs a type/ },
    // system is a string or text blocks.
    { name: 'system not text', body: { ...base, system: 7 }, message: /system/ },
    // system blocks must all be text.
    { name: 'system image block', body: { ...base, system: [{ type: 'image', source: {} }] }, message: /system/ },
    // tool_use input is an object.
    {
      name: 'tool_use input a string',
      body: { ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: '{}' }] }] },
      message: /input/,
    },
    // A custom tool needs its input_schema.
    { name: 'tool without input_schema', body: { ...base, tools: [{ name: 'f' }] }, message: /input_schema/ },
    // tool_choice types are auto, any, tool, none.
    { name: 'tool_choice type unknown', body: { ...base, tool_choice: { type: 'required' } }, message: /tool_choice/ },
    // tool_choice tool needs the name.
    { name: 'tool_choice tool without name', body: { ...base, tool_choice: { type: 'tool' } }, message: /tool_choice\.name/ },
    // stop_sequences is a list of strings.
    { name: 'stop_sequences a string', body: { ...base, stop_sequences: 'END' }, message: /stop_sequences/ },
    // stream is a boolean.
    { name: 'stream a string', body: { ...base, stream: 'yes' }, message: /stream/ },
    // temperature is a number.
    { name: 'temperature a string', body: { ...base, temperature: 'hot' }, message: /temperature/ },
    // tool_result needs the id of the call it answers.
    {
      name: 'tool_result without tool_use_id',
      body: { ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] },
      message: /tool_use_id/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => anthropicRequestToChat(c.body),
        (error: unknown) => {
          assert.ok(error instanceof InvalidRequest);
          assert.equal(error.code, 'INVALID_REQUEST');
          assert.match(error.message, c.message);
          return true;
        },
      );
    });
  }
});

describe('MalformedUpstream: 2xx bodies that are not answers', () => {
  const cases: Array<{ name: string; translate: () => unknown }> = [
    // An HTML error page parsed as text is not a Messages response.
    { name: 'anthropic: a string', translate: () => anthropicResponseToChat('<html>502</html>', 'm') },
    // An empty object has no content.
    { name: 'anthropic: {}', translate: () => anthropicResponseToChat({}, 'm') },
    // content must be a list of blocks.
    { name: 'anthropic: content a string', translate: () => anthropicResponseToChat({ type: 'message', content: 'hi' }, 'm') },
    // null body.
    { name: 'anthropic: null', translate: () => anthropicResponseToChat(null, 'm') },
    // Gemini: an array (the streaming shape of a non-stream call) is not a response object.
    { name: 'gemini: an array of responses', translate: () => geminiResponseToChat([{ candidates: [] }], 'm') },
    // No candidates and no block reason: nothing to answer with.
    { name: 'gemini: {}', translate: () => geminiResponseToChat({}, 'm') },
    // Empty candidates without promptFeedback is not an answer either.
    { name: 'gemini: empty candidates', translate: () => geminiResponseToChat({ candidates: [], usageMetadata: { promptTokenCount: 3 } }, 'm') },
    // An OpenAI answer without choices cannot become an Anthropic message.
    { name: 'openai: no choices', translate: () => chatResponseToAnthropic({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [] }) },
    // Tool arguments that are not JSON cannot become tool_use input.
    {
      name: 'openai: tool arguments not JSON',
      translate: () =>
        chatResponseToAnthropic({
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'm',
          choices: [
            {
              index: 0,
              finish_reason: 'tool_calls',
              message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":' } }] },
            },
          ],
        } satisfies ChatResponse),
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(c.translate, (error: unknown) => {
        assert.ok(error instanceof MalformedUpstream);
        assert.equal(error.code, 'MALFORMED_UPSTREAM');
        return true;
      });
    });
  }
});

describe('InvalidRequest: Chat bodies the upstream translators cannot read', () => {
  const cases: Array<{ name: string; translate: () => unknown; message: RegExp }> = [
    // messages must be a list for an Anthropic step.
    { name: 'anthropic: messages not a list', translate: () => chatRequestToAnthropic({ model: 'm', messages: 'hi' } as never), message: /messages/ },
    // messages must be a list for a Gemini step.
    { name: 'gemini: messages not a list', translate: () => chatRequestToGemini({ model: 'm', messages: {} } as never, false), message: /messages/ },
    // A tool message must name the call it answers (Anthropic's tool_use_id).
    {
      name: 'anthropic: tool message without tool_call_id',
      translate: () => chatRequestToAnthropic(chat({}, [user('x'), { role: 'tool', content: 'r' } as never])),
      message: /tool_call_id/,
    },
    // A message must be an object.
    { name: 'gemini: a message that is a string', translate: () => chatRequestToGemini(chat({}, ['hi' as never]), false), message: /messages\[0\]/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(c.translate, (error: unknown) => {
        assert.ok(error instanceof InvalidRequest);
        assert.match(error.message, c.message);
        return true;
      });
    });
  }
});
