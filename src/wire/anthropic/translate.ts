// Anthropic Messages API (anthropic-version 2023-06-01) <-> the canonical OpenAI Chat
// Completions format: requests both ways (inbound /v1/messages callers, upstream steps with
// `api: anthropic`), responses both ways, streams event by event both ways, error bodies.
import { randomUUID } from 'node:crypto';
import type {
  AssistantMessage,
  ChatChunk,
  ChatMessage,
  ChatRequest,
  ChatResponse,
  ChatUsage,
  ChunkChoice,
  ChunkDelta,
  ContentPart,
  FinishReason,
  JsonObject,
  OpenAIErrorBody,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../openai-chat/types.ts';
import { InvalidRequest, MalformedUpstream, UnservableRequest, type Translated } from '../errors.ts';
import {
  DroppedFields,
  isRecord,
  isUnsetOrDefault,
  numberOr0,
  nowSeconds,
  parseArguments,
  parseDataUrl,
  shownInMessage,
  stringOr,
  textOf,
} from '../translation-helpers.ts';

export { InvalidRequest, MalformedUpstream, UnservableRequest } from '../errors.ts';

export const ANTHROPIC_VERSION = '2023-06-01';

/**
 * max_tokens is required by Anthropic and optional in OpenAI. When the caller set neither
 * max_tokens nor max_completion_tokens, this is sent: it is within every Claude model's
 * output limit (the smallest, Claude 3 Haiku, is 4096).
 */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 4096;

/** Media types Anthropic accepts in image blocks. */
const ANTHROPIC_IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

// ---------------------------------------------------------------------------------------
// Wire types (the subset we map)

export interface AnthropicTextBlock {
  type: 'text';
  text: string;
  [key: string]: unknown;
}

export type AnthropicImageSource =
  { type: 'base64'; media_type: string; data: string; [key: string]: unknown } | { type: 'url'; url: string; [key: string]: unknown };

export interface AnthropicImageBlock {
  type: 'image';
  source: AnthropicImageSource;
  [key: string]: unknown;
}

export interface AnthropicToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: JsonObject;
  [key: string]: unknown;
}

export interface AnthropicToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content?: string | Array<AnthropicTextBlock | AnthropicImageBlock>;
  is_error?: boolean;
  [key: string]: unknown;
}

export type AnthropicContentBlock = AnthropicTextBlock | AnthropicImageBlock | AnthropicToolUseBlock | AnthropicToolResultBlock;

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: string | AnthropicContentBlock[];
  [key: string]: unknown;
}

export interface AnthropicTool {
  name: string;
  description?: string;
  input_schema: JsonObject;
  [key: string]: unknown;
}

export type AnthropicToolChoice =
  { type: 'auto' | 'any' | 'none'; disable_parallel_tool_use?: boolean } | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean };

export interface AnthropicRequest {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string | AnthropicTextBlock[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop_sequences?: string[];
  stream?: boolean;
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal' | 'model_context_window_exceeded';

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  [key: string]: unknown;
}

export interface AnthropicResponse {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: Array<AnthropicTextBlock | AnthropicToolUseBlock>;
  stop_reason: AnthropicStopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsage;
  [key: string]: unknown;
}

export type AnthropicStreamEvent =
  | { type: 'message_start'; message: AnthropicResponse }
  | { type: 'content_block_start'; index: number; content_block: AnthropicTextBlock | AnthropicToolUseBlock }
  | {
      type: 'content_block_delta';
      index: number;
      delta: { type: 'text_delta'; text: string } | { type: 'input_json_delta'; partial_json: string };
    }
  | { type: 'content_block_stop'; index: number }
  | { type: 'message_delta'; delta: { stop_reason: AnthropicStopReason; stop_sequence: string | null }; usage: AnthropicUsage }
  | { type: 'message_stop' }
  | { type: 'ping' }
  | AnthropicErrorBody;

/** One SSE event to write: `event: <event>\ndata: <JSON of data>\n\n`. */
export interface AnthropicSseEvent {
  event: AnthropicStreamEvent['type'];
  data: AnthropicStreamEvent;
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string; [key: string]: unknown };
}

// ---------------------------------------------------------------------------------------
// Inbound: an Anthropic Messages request from a caller -> the canonical Chat request

const ANTHROPIC_REQUEST_FIELDS = new Set([
  'model',
  'messages',
  'max_tokens',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'stream',
  'tools',
  'tool_choice',
  'metadata',
]);

/**
 * Validates and translates a caller's Messages request. Throws InvalidRequest for a body
 * that is not a valid Messages request (answer 400), UnservableRequest for one that only
 * an Anthropic upstream can serve (skip the non-Anthropic steps).
 */
export function anthropicRequestToChat(body: unknown): Translated<ChatRequest> {
  if (!isRecord(body)) throw new InvalidRequest('request body must be a JSON object');
  const dropped = new DroppedFields();
  const model = body['model'];
  if (typeof model !== 'string' || model === '') throw new InvalidRequest('model: Field required (a non-empty string)');
  const maxTokens = body['max_tokens'];
  if (maxTokens === undefined) throw new InvalidRequest('max_tokens: Field required');
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new InvalidRequest('max_tokens: Input should be an integer greater than or equal to 1');
  }
  const rawMessages = body['messages'];
  if (!Array.isArray(rawMessages)) throw new InvalidRequest('messages: Input should be a valid list');

  const messages: ChatMessage[] = [];
  const system = body['system'];
  if (system !== undefined) {
    const text = systemText(system, dropped);
    if (text !== '') messages.push({ role: 'system', content: text });
  }
  rawMessages.forEach((message, i) => messages.push(...anthropicMessageToChat(message, i, dropped)));

  const chat: ChatRequest = { model, messages, max_tokens: maxTokens };
  const temperature = optionalNumber(body, 'temperature');
  if (temperature !== undefined) chat.temperature = temperature;
  const topP = optionalNumber(body, 'top_p');
  if (topP !== undefined) chat.top_p = topP;
  if (optionalNumber(body, 'top_k') !== undefined) dropped.add('top_k');
  const stops = body['stop_sequences'];
  if (stops !== undefined) {
    if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string')) throw new InvalidRequest('stop_sequences: Input should be a list of strings');
    if (stops.length > 0) chat.stop = [...stops];
  }
  const stream = body['stream'];
  if (stream !== undefined) {
    if (typeof stream !== 'boolean') throw new InvalidRequest('stream: Input should be a valid boolean');
    chat.stream = stream;
  }
  const tools = body['tools'];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new InvalidRequest('tools: Input should be a valid list');
    if (tools.length > 0) chat.tools = tools.map((tool, i) => anthropicToolToChat(tool, i, dropped));
  }
  const toolChoice = body['tool_choice'];
  if (toolChoice !== undefined) {
    const mapped = anthropicToolChoiceToChat(toolChoice);
    // OpenAI-compatible upstreams reject tool_choice without tools; without tools it means nothing.
    if (chat.tools) {
      chat.tool_choice = mapped.choice;
      if (mapped.parallel === false) chat.parallel_tool_calls = false;
    }
  }
  // A final assistant turn is a prefill that Claude continues; OpenAI-format models answer after it instead.
  if (messages[messages.length - 1]?.role === 'assistant') dropped.add('assistant prefill (continuation of the last assistant turn)');
  const metadata = body['metadata'];
  if (isRecord(metadata)) {
    for (const [key, value] of Object.entries(metadata)) {
      if (key === 'user_id' && typeof value === 'string') chat.user = value;
      else if (value !== undefined && value !== null) dropped.add(`metadata.${key}`);
    }
  }
  if (body['mcp_servers'] !== undefined && !(Array.isArray(body['mcp_servers']) && body['mcp_servers'].length === 0)) {
    throw new UnservableRequest('mcp_servers (Anthropic-hosted MCP connector) has no OpenAI Chat equivalent');
  }
  for (const key of Object.keys(body)) {
    if (!ANTHROPIC_REQUEST_FIELDS.has(key) && key !== 'mcp_servers' && body[key] !== undefined && body[key] !== null) dropped.add(key);
  }
  return { value: chat, dropped: dropped.list() };
}

function systemText(system: unknown, dropped: DroppedFields): string {
  if (typeof system === 'string') return system;
  if (!Array.isArray(system)) throw new InvalidRequest('system: Input should be a string or a list of text blocks');
  const texts: string[] = [];
  for (const block of system) {
    if (!isRecord(block) || block['type'] !== 'text' || typeof block['text'] !== 'string') {
      throw new InvalidRequest('system: every block must be a text block');
    }
    if (block['cache_control'] !== undefined) dropped.add('cache_control');
    texts.push(block['text']);
  }
  return texts.join('\n');
}

function anthropicMessageToChat(message: unknown, i: number, dropped: DroppedFields): ChatMessage[] {
  const where = `messages.${i}`;
  if (!isRecord(message)) throw new InvalidRequest(`${where}: Input should be an object`);
  const role = message['role'];
  if (role !== 'user' && role !== 'assistant') throw new InvalidRequest(`${where}.role: Input should be 'user' or 'assistant'`);
  const content = message['content'];
  if (typeof content === 'string') return [{ role, content }];
  if (!Array.isArray(content)) throw new InvalidRequest(`${where}.content: Input should be a string or a list of content blocks`);
  const blocks = content.map((block, j): JsonObject => {
    if (!isRecord(block) || typeof block['type'] !== 'string') throw new InvalidRequest(`${where}.content.${j}: a content block needs a type`);
    if (block['cache_control'] !== undefined) dropped.add('cache_control');
    return block;
  });
  return role === 'user' ? userBlocksToChat(blocks, where, dropped) : [assistantBlocksToChat(blocks, where, dropped)];
}

function userBlocksToChat(blocks: JsonObject[], where: string, dropped: DroppedFields): ChatMessage[] {
  // OpenAI needs tool results as `tool` messages right after the assistant's tool calls,
  // so they come first; the rest of the turn follows as one user message.
  const toolMessages: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  blocks.forEach((block, j) => {
    const at = `${where}.content.${j}`;
    switch (block['type']) {
      case 'text':
        parts.push({ type: 'text', text: requireString(block, 'text', at) });
        break;
      case 'image':
        parts.push({ type: 'image_url', image_url: { url: imageSourceToUrl(block['source'], at) } });
        break;
      case 'tool_result':
        toolMessages.push(toolResultToChat(block, at, dropped));
        break;
      case 'document':
        throw new UnservableRequest('document blocks (PDF or text documents) have no OpenAI Chat equivalent');
      default:
        throw new UnservableRequest(`user content blocks of type ${String(block['type'])} have no OpenAI Chat equivalent`);
    }
  });
  const out = [...toolMessages];
  if (parts.length === 1 && parts[0]?.type === 'text') out.push({ role: 'user', content: parts[0].text });
  else if (parts.length > 0) out.push({ role: 'user', content: parts });
  return out;
}

function toolResultToChat(block: JsonObject, at: string, dropped: DroppedFields): ChatMessage {
  const id = requireString(block, 'tool_use_id', at);
  const content = block['content'];
  let text = '';
  if (typeof content === 'string') text = content;
  else if (Array.isArray(content)) {
    const texts: string[] = [];
    for (const inner of content) {
      if (isRecord(inner) && inner['type'] === 'text' && typeof inner['text'] === 'string') texts.push(inner['text']);
      else if (isRecord(inner) && inner['type'] === 'image')
        throw new UnservableRequest('images inside tool_result have no OpenAI Chat equivalent (tool messages are text)');
      else throw new InvalidRequest(`${at}.content: tool_result content must be text or image blocks`);
      if (isRecord(inner) && inner['cache_control'] !== undefined) dropped.add('cache_control');
    }
    text = texts.join('\n');
  } else if (content !== undefined) throw new InvalidRequest(`${at}.content: Input should be a string or a list of blocks`);
  // OpenAI tool messages have no error flag: the error travels in the text.
  if (block['is_error'] === true) text = `Error: ${text}`;
  return { role: 'tool', tool_call_id: id, content: text };
}

function assistantBlocksToChat(blocks: JsonObject[], where: string, dropped: DroppedFields): AssistantMessage {
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  blocks.forEach((block, j) => {
    const at = `${where}.content.${j}`;
    switch (block['type']) {
      case 'text':
        texts.push(requireString(block, 'text', at));
        break;
      case 'tool_use': {
        const input = block['input'];
        if (!isRecord(input)) throw new InvalidRequest(`${at}.input: Input should be an object`);
        toolCalls.push({
          id: requireString(block, 'id', at),
          type: 'function',
          function: { name: requireString(block, 'name', at), arguments: JSON.stringify(input) },
        });
        break;
      }
      case 'thinking':
      case 'redacted_thinking':
        dropped.add('thinking blocks');
        break;
      default:
        throw new UnservableRequest(`assistant content blocks of type ${String(block['type'])} have no OpenAI Chat equivalent`);
    }
  });
  const text = texts.join('');
  const message: AssistantMessage = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return message;
}

function imageSourceToUrl(source: unknown, at: string): string {
  if (!isRecord(source)) throw new InvalidRequest(`${at}.source: Field required`);
  if (source['type'] === 'base64') {
    return `data:${requireString(source, 'media_type', `${at}.source`)};base64,${requireString(source, 'data', `${at}.source`)}`;
  }
  if (source['type'] === 'url') return requireString(source, 'url', `${at}.source`);
  throw new UnservableRequest(`image source of type ${String(source['type'])} (e.g. Files API ids) has no OpenAI Chat equivalent`);
}

function anthropicToolToChat(tool: unknown, i: number, dropped: DroppedFields): ToolDefinition {
  if (!isRecord(tool)) throw new InvalidRequest(`tools.${i}: Input should be an object`);
  const type = tool['type'];
  if (type !== undefined && type !== null && type !== 'custom') {
    throw new UnservableRequest(`server tool ${shownInMessage(type)} runs at Anthropic and has no OpenAI Chat equivalent`);
  }
  const name = requireString(tool, 'name', `tools.${i}`);
  const schema = tool['input_schema'];
  if (!isRecord(schema)) throw new InvalidRequest(`tools.${i}.input_schema: Field required`);
  if (tool['cache_control'] !== undefined) dropped.add('cache_control');
  const fn: ToolDefinition['function'] = { name };
  if (typeof tool['description'] === 'string') fn.description = tool['description'];
  fn.parameters = schema;
  return { type: 'function', function: fn };
}

function anthropicToolChoiceToChat(choice: unknown): { choice: ToolChoice; parallel?: boolean } {
  if (!isRecord(choice)) throw new InvalidRequest('tool_choice: Input should be an object');
  const parallel = choice['disable_parallel_tool_use'] === true ? false : undefined;
  switch (choice['type']) {
    case 'auto':
      return { choice: 'auto', parallel };
    case 'any':
      return { choice: 'required', parallel };
    case 'none':
      return { choice: 'none' };
    case 'tool':
      return { choice: { type: 'function', function: { name: requireString(choice, 'name', 'tool_choice') } }, parallel };
    default:
      throw new InvalidRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  }
}

function requireString(obj: JsonObject, key: string, at: string): string {
  const value = obj[key];
  if (typeof value !== 'string') throw new InvalidRequest(`${at}.${key}: Field required (a string)`);
  return value;
}

function optionalNumber(obj: JsonObject, key: string): number | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidRequest(`${key}: Input should be a valid number`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Upstream: the canonical Chat request -> an Anthropic Messages request

// Fields the Anthropic translation reads; everything else is reported as dropped.
const CHAT_FIELDS_FOR_ANTHROPIC = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'top_k',
  'n',
  'stop',
  'stream',
  'stream_options',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
  'modalities',
  'audio',
  'functions',
  'function_call',
]);

/**
 * Translates a Chat request for an `api: anthropic` step. `model` is copied as given (the
 * proxy sets the step's model). Throws UnservableRequest when Anthropic cannot serve it
 * faithfully; returns the caller's fields it had to drop.
 */
export function chatRequestToAnthropic(chat: ChatRequest): Translated<AnthropicRequest> {
  const dropped = new DroppedFields();
  if (!Array.isArray(chat.messages)) throw new InvalidRequest('messages: Input should be a valid list');
  if (typeof chat.n === 'number' && chat.n > 1) throw new UnservableRequest('n > 1: Anthropic returns a single answer per request');
  if (chat.audio !== undefined && chat.audio !== null) throw new UnservableRequest('audio output has no Anthropic equivalent');
  if (Array.isArray(chat.modalities) && chat.modalities.some((m) => m !== 'text')) throw new UnservableRequest('Anthropic answers in text only (modalities)');
  if (chat.functions !== undefined || chat.function_call !== undefined)
    throw new UnservableRequest('legacy functions/function_call are not translated; use tools');

  const systemTexts: string[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: AnthropicContentBlock[]): void => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // Anthropic wants user and assistant turns to alternate: consecutive ones merge.
    if (last && last.role === role) last.content = [...asBlocks(last.content), ...blocks];
    else messages.push({ role, content: blocks });
  };
  chat.messages.forEach((message, i) => {
    if (!isRecord(message)) throw new InvalidRequest(`messages[${i}]: Input should be an object`);
    if (typeof message.name === 'string') dropped.add('messages[].name');
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = textOf(message.content);
        if (text !== '') systemTexts.push(text);
        break;
      }
      case 'user':
        push('user', userContentToAnthropic(message.content, dropped));
        break;
      case 'assistant':
        push('assistant', assistantToAnthropic(message));
        break;
      case 'tool':
        if (typeof message.tool_call_id !== 'string') throw new InvalidRequest(`messages[${i}].tool_call_id: Field required`);
        push('user', [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: textOf(message.content) }]);
        break;
      default:
        throw new UnservableRequest(`messages with role ${String((message as { role?: unknown }).role)} have no Anthropic equivalent`);
    }
  });
  // A turn that is a single text block is sent as a plain string, the common form.
  for (const message of messages) {
    const blocks = message.content;
    if (Array.isArray(blocks) && blocks.length === 1 && blocks[0]?.type === 'text' && Object.keys(blocks[0]).length === 2) message.content = blocks[0].text;
  }

  const out: AnthropicRequest = {
    model: chat.model,
    max_tokens: positiveInt(chat.max_completion_tokens) ?? positiveInt(chat.max_tokens) ?? DEFAULT_ANTHROPIC_MAX_TOKENS,
    ...(systemTexts.length > 0 ? { system: systemTexts.join('\n\n') } : {}),
    messages,
  };
  if (typeof chat.temperature === 'number') {
    // OpenAI's range is 0..2, Anthropic's 0..1.
    if (chat.temperature > 1) dropped.add('temperature above 1 (clamped to 1)');
    out.temperature = Math.min(chat.temperature, 1);
  }
  if (typeof chat.top_p === 'number') out.top_p = chat.top_p;
  if (typeof chat.top_k === 'number') out.top_k = chat.top_k;
  const stop = typeof chat.stop === 'string' ? [chat.stop] : Array.isArray(chat.stop) ? chat.stop.filter((s) => typeof s === 'string') : [];
  if (stop.length > 0) out.stop_sequences = stop;
  if (chat.stream === true) out.stream = true;

  const tools = Array.isArray(chat.tools) ? chat.tools : [];
  if (tools.length > 0) {
    out.tools = tools.map((tool) => chatToolToAnthropic(tool, dropped));
    const choice = chatToolChoiceToAnthropic(chat.tool_choice);
    if (chat.parallel_tool_calls === false) out.tool_choice = { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
    else if (choice) out.tool_choice = choice;
  } else if (chat.tool_choice !== undefined && chat.tool_choice !== 'none' && chat.tool_choice !== 'auto') {
    throw new UnservableRequest('tool_choice requires a tool, but no tools were given');
  }

  const format = chat.response_format;
  if (isRecord(format) && format.type !== 'text') {
    // Anthropic has no JSON mode: a schema the caller wants guaranteed cannot be served;
    // otherwise the answer is still useful and the caller's prompt usually asks for JSON.
    if (format.type === 'json_schema' && isRecord(format.json_schema) && format.json_schema.strict === true) {
      throw new UnservableRequest('response_format json_schema with strict: true cannot be guaranteed by Anthropic');
    }
    dropped.add(`response_format ${String(format.type)}`);
  }
  if (typeof chat.user === 'string') out.metadata = { user_id: chat.user };

  for (const [key, value] of Object.entries(chat)) {
    if (!CHAT_FIELDS_FOR_ANTHROPIC.has(key) && !isUnsetOrDefault(key, value)) dropped.add(key);
  }
  return { value: out, dropped: dropped.list() };
}

function asBlocks(content: string | AnthropicContentBlock[]): AnthropicContentBlock[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : content;
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

function userContentToAnthropic(content: unknown, dropped: DroppedFields): AnthropicContentBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  const blocks: AnthropicContentBlock[] = [];
  for (const part of content) {
    if (!isRecord(part)) continue;
    switch (part['type']) {
      case 'text':
        if (typeof part['text'] === 'string' && part['text'] !== '') blocks.push({ type: 'text', text: part['text'] });
        break;
      case 'image_url': {
        const image = isRecord(part['image_url']) ? part['image_url'] : {};
        if (image['detail'] !== undefined && image['detail'] !== 'auto') dropped.add('image_url.detail');
        blocks.push({ type: 'image', source: imageUrlToAnthropic(stringOr(image['url'], '')) });
        break;
      }
      case 'input_audio':
        throw new UnservableRequest('audio input has no Anthropic equivalent');
      case 'file':
        throw new UnservableRequest('file parts are not translated to Anthropic');
      default:
        throw new UnservableRequest(`content parts of type ${String(part['type'])} have no Anthropic equivalent`);
    }
  }
  return blocks;
}

function imageUrlToAnthropic(url: string): AnthropicImageSource {
  const data = parseDataUrl(url);
  if (data) {
    if (!ANTHROPIC_IMAGE_TYPES.has(data.mimeType)) throw new UnservableRequest(`Anthropic accepts jpeg, png, gif and webp images, not ${data.mimeType}`);
    return { type: 'base64', media_type: data.mimeType, data: data.data };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'url', url };
  throw new UnservableRequest('image_url must be a data: URL or an http(s) URL');
}

function assistantToAnthropic(message: AssistantMessage): AnthropicContentBlock[] {
  const blocks: AnthropicContentBlock[] = [];
  const text = textOf(message.content) || (typeof message.refusal === 'string' ? message.refusal : '');
  if (text !== '') blocks.push({ type: 'text', text });
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const fn = isRecord(call) && isRecord(call.function) ? call.function : undefined;
    if (!fn || typeof fn.name !== 'string') throw new UnservableRequest('assistant tool_calls without a function name cannot be translated');
    const input = parseArguments(stringOr(fn.arguments, ''));
    if (!input) throw new UnservableRequest(`tool call ${String(call.id)} has arguments that are not a JSON object; Anthropic needs tool input as an object`);
    blocks.push({ type: 'tool_use', id: String(call.id), name: fn.name, input });
  }
  return blocks;
}

function chatToolToAnthropic(tool: ToolDefinition, dropped: DroppedFields): AnthropicTool {
  if (!isRecord(tool) || tool.type !== 'function' || !isRecord(tool.function) || typeof tool.function.name !== 'string') {
    throw new UnservableRequest(`tools of type ${String(isRecord(tool) ? tool.type : tool)} have no Anthropic equivalent`);
  }
  const fn = tool.function;
  if (fn.strict === true) dropped.add('tools[].function.strict');
  return {
    name: fn.name,
    ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
    input_schema: isRecord(fn.parameters) ? fn.parameters : { type: 'object', properties: {} },
  };
}

function chatToolChoiceToAnthropic(choice: ToolChoice | undefined): AnthropicToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string') return { type: 'tool', name: choice.function.name };
  throw new UnservableRequest('tool_choice of this shape has no Anthropic equivalent');
}

// ---------------------------------------------------------------------------------------
// Responses

const STOP_TO_FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

export function anthropicStopToFinish(stop: unknown): FinishReason {
  return (typeof stop === 'string' ? STOP_TO_FINISH[stop] : undefined) ?? 'stop';
}

export function finishToAnthropicStop(finish: unknown): AnthropicStopReason {
  switch (finish) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/** Anthropic usage (input excludes cache reads and writes) -> OpenAI usage (prompt includes them). */
export function anthropicUsageToChat(usage: unknown): ChatUsage {
  const u = isRecord(usage) ? usage : {};
  const cacheRead = numberOr0(u['cache_read_input_tokens']);
  const prompt = numberOr0(u['input_tokens']) + cacheRead + numberOr0(u['cache_creation_input_tokens']);
  const completion = numberOr0(u['output_tokens']);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cacheRead } };
}

/** OpenAI usage -> Anthropic usage; cache writes are not reported by OpenAI and count as input. */
export function chatUsageToAnthropic(usage: unknown): AnthropicUsage {
  const u = isRecord(usage) ? usage : {};
  const details = isRecord(u['prompt_tokens_details']) ? u['prompt_tokens_details'] : {};
  const cached = numberOr0(details['cached_tokens']);
  return {
    input_tokens: Math.max(0, numberOr0(u['prompt_tokens']) - cached),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: numberOr0(u['completion_tokens']),
  };
}

/**
 * A non-stream Messages response -> a Chat response. `model` is reported when the body
 * names none. Throws MalformedUpstream for a body that is not a Messages response.
 */
export function anthropicResponseToChat(body: unknown, model: string, created: number = nowSeconds()): ChatResponse {
  if (!isRecord(body) || !Array.isArray(body['content'])) throw new MalformedUpstream('Anthropic response has no content array');
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const block of body['content']) {
    if (!isRecord(block)) continue;
    if (block['type'] === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
    if (block['type'] === 'tool_use') {
      toolCalls.push({
        id: stringOr(block['id'], `toolu_${toolCalls.length}`),
        type: 'function',
        function: { name: stringOr(block['name'], ''), arguments: JSON.stringify(isRecord(block['input']) ? block['input'] : {}) },
      });
    }
    // thinking, redacted_thinking and server-tool blocks have no Chat equivalent and are left out.
  }
  const text = texts.join('');
  const finish = anthropicStopToFinish(body['stop_reason']);
  // No text: null when the answer is tool calls or was withheld, as OpenAI reports them.
  const message: ChatResponse['choices'][number]['message'] = {
    role: 'assistant',
    content: text === '' && (toolCalls.length > 0 || finish === 'content_filter') ? null : text,
    refusal: null,
  };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: stringOr(body['id'], `msg_${created}`),
    object: 'chat.completion',
    created,
    model: stringOr(body['model'], model),
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage: anthropicUsageToChat(body['usage']),
  };
}

/** A Chat response (first choice) -> a Messages response, for Anthropic callers. */
export function chatResponseToAnthropic(chat: ChatResponse): AnthropicResponse {
  const choice = isRecord(chat) && Array.isArray(chat.choices) ? chat.choices[0] : undefined;
  if (!isRecord(choice) || !isRecord(choice.message)) throw new MalformedUpstream('OpenAI response has no choices[0].message');
  const message = choice.message;
  const content: AnthropicResponse['content'] = [];
  const text = textOf(message.content) || (typeof message.refusal === 'string' ? message.refusal : '');
  if (text !== '') content.push({ type: 'text', text });
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const fn: JsonObject = isRecord(call) && isRecord(call.function) ? call.function : {};
    const input = parseArguments(stringOr(fn['arguments'], ''));
    if (!input) throw new MalformedUpstream(`tool call ${String(call.id)} has arguments that are not a JSON object`);
    content.push({ type: 'tool_use', id: stringOr(call.id, `toolu_${content.length}`), name: stringOr(fn['name'], ''), input });
  }
  return {
    id: stringOr(chat.id, 'msg_unknown'),
    type: 'message',
    role: 'assistant',
    model: stringOr(chat.model, ''),
    content,
    stop_reason: finishToAnthropicStop(choice.finish_reason),
    stop_sequence: null,
    usage: chatUsageToAnthropic(chat.usage),
  };
}

// ---------------------------------------------------------------------------------------
// Streams

/**
 * Anthropic stream events (an Anthropic upstream) -> Chat chunks, one event at a time.
 *
 * push() may return no chunk (ping, message_start, content_block_stop, message_stop): the
 * assistant role rides on the first chunk that carries something, so an error event or a
 * refusal that comes before any content is the first chunk the proxy sees and can still
 * fall back. message_delta yields the finish chunk and then a usage chunk (choices: []),
 * as OpenAI does with stream_options.include_usage. Anthropic sends no [DONE]: `finished`
 * turns true at message_stop.
 */
export class AnthropicStreamToChat {
  readonly #fallbackModel: string;
  readonly #created: number;
  #id = '';
  #model = '';
  #roleSent = false;
  #finished = false;
  #usage: JsonObject = {};
  // Anthropic content block index -> OpenAI tool_calls index (only tool_use blocks).
  readonly #toolIndex = new Map<number, number>();

  constructor(model: string, created: number = nowSeconds()) {
    this.#fallbackModel = model;
    this.#created = created;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Usage so far (complete after message_delta), in OpenAI's shape; undefined before message_start. */
  usage(): ChatUsage | undefined {
    return Object.keys(this.#usage).length === 0 ? undefined : anthropicUsageToChat(this.#usage);
  }

  push(eventName: string, data: unknown): ChatChunk[] {
    const event = isRecord(data) ? data : {};
    const type = typeof event['type'] === 'string' ? event['type'] : eventName;
    switch (type) {
      case 'message_start': {
        const message = isRecord(event['message']) ? event['message'] : {};
        this.#id = stringOr(message['id'], this.#id);
        this.#model = stringOr(message['model'], this.#model);
        if (isRecord(message['usage'])) this.#usage = { ...this.#usage, ...definedNumbers(message['usage']) };
        return [];
      }
      case 'content_block_start': {
        const block = isRecord(event['content_block']) ? event['content_block'] : {};
        const index = numberOr0(event['index']);
        if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') return [this.#chunk({ content: block['text'] })];
        if (block['type'] === 'tool_use') {
          const toolIndex = this.#toolIndex.size;
          this.#toolIndex.set(index, toolIndex);
          const input = isRecord(block['input']) && Object.keys(block['input']).length > 0 ? JSON.stringify(block['input']) : '';
          return [
            this.#chunk({
              tool_calls: [
                {
                  index: toolIndex,
                  id: stringOr(block['id'], `toolu_${toolIndex}`),
                  type: 'function',
                  function: { name: stringOr(block['name'], ''), arguments: input },
                },
              ],
            }),
          ];
        }
        return []; // thinking and server-tool blocks have no Chat equivalent
      }
      case 'content_block_delta': {
        const delta = isRecord(event['delta']) ? event['delta'] : {};
        if (delta['type'] === 'text_delta' && typeof delta['text'] === 'string' && delta['text'] !== '') return [this.#chunk({ content: delta['text'] })];
        if (delta['type'] === 'input_json_delta' && typeof delta['partial_json'] === 'string' && delta['partial_json'] !== '') {
          const toolIndex = this.#toolIndex.get(numberOr0(event['index']));
          if (toolIndex === undefined) return [];
          return [this.#chunk({ tool_calls: [{ index: toolIndex, function: { arguments: delta['partial_json'] } }] })];
        }
        return []; // thinking_delta, signature_delta, citations_delta
      }
      case 'message_delta': {
        const delta = isRecord(event['delta']) ? event['delta'] : {};
        if (isRecord(event['usage'])) this.#usage = { ...this.#usage, ...definedNumbers(event['usage']) };
        const out: ChatChunk[] = [];
        if (delta['stop_reason'] !== undefined && delta['stop_reason'] !== null) out.push(this.#chunk({}, anthropicStopToFinish(delta['stop_reason'])));
        out.push({ ...this.#base(), choices: [], usage: anthropicUsageToChat(this.#usage) });
        return out;
      }
      case 'message_stop':
        this.#finished = true;
        return [];
      case 'error': {
        const error = isRecord(event['error']) ? event['error'] : {};
        const errorType = stringOr(error['type'], 'api_error');
        return [
          { ...this.#base(), choices: [], error: { message: stringOr(error['message'], 'upstream error'), type: errorType, param: null, code: errorType } },
        ];
      }
      default:
        return []; // ping, content_block_stop, and event types added later
    }
  }

  #base(): ChunkBase {
    return { id: this.#id || `msg_${this.#created}`, object: 'chat.completion.chunk', created: this.#created, model: this.#model || this.#fallbackModel };
  }

  #chunk(delta: ChunkDelta, finish: FinishReason | null = null): ChatChunk {
    const choice: ChunkChoice = { index: 0, delta: this.#roleSent ? delta : { role: 'assistant', ...delta }, logprobs: null, finish_reason: finish };
    this.#roleSent = true;
    return { ...this.#base(), choices: [choice] };
  }
}

interface ChunkBase {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
}

function definedNumbers(obj: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) if (typeof value === 'number') out[key] = value;
  return out;
}

/**
 * Chat chunks (an OpenAI-format upstream) -> Anthropic stream events, for Anthropic
 * callers, chunk by chunk. The first chunk opens the message (message_start); text and
 * each tool call get their own content block (start, deltas, stop), a new block closing the
 * one before. Only the end waits: message_delta needs both the stop reason and the usage,
 * which OpenAI sends in separate chunks, so it is written when both are known or at
 * finish() (call it at [DONE] or at the end of the upstream stream). A chunk with an
 * `error` field becomes an Anthropic `error` event. Only choice 0 is translated.
 */
export class ChatStreamToAnthropic {
  readonly #model: string;
  #started = false;
  #ended = false;
  #nextBlock = 0;
  #open: { index: number; kind: 'text' } | { index: number; kind: 'tool'; toolIndex: number } | undefined;
  #stopReason: AnthropicStopReason | undefined;
  #usage: ChatUsage | undefined;
  #toolsSeen = 0;

  constructor(model: string) {
    this.#model = model;
  }

  /**
   * A translator that carries on a message whose start (and `nextBlock` content blocks) the
   * caller already has, e.g. from an Anthropic upstream passed through before it broke: text
   * continues the open text block, if one is open, instead of starting a second message.
   */
  static continuing(model: string, state: { nextBlock: number; openTextBlock?: number }): ChatStreamToAnthropic {
    const translator = new ChatStreamToAnthropic(model);
    translator.#started = true;
    translator.#nextBlock = state.nextBlock;
    if (state.openTextBlock !== undefined) translator.#open = { index: state.openTextBlock, kind: 'text' };
    return translator;
  }

  push(chunk: ChatChunk): AnthropicSseEvent[] {
    if (this.#ended || !isRecord(chunk)) return [];
    const out: AnthropicSseEvent[] = [];
    if (isRecord(chunk.error)) {
      this.#ended = true;
      return [streamErrorToAnthropic(chunk.error)];
    }
    if (!this.#started) out.push(this.#start(chunk));
    const choice = Array.isArray(chunk.choices) ? chunk.choices.find((c) => isRecord(c) && (c.index ?? 0) === 0) : undefined;
    const delta = isRecord(choice) && isRecord(choice.delta) ? choice.delta : {};
    const text = `${typeof delta.content === 'string' ? delta.content : ''}${typeof delta.refusal === 'string' ? delta.refusal : ''}`;
    if (text !== '') {
      if (this.#open?.kind !== 'text') {
        this.#close(out);
        this.#open = { index: this.#nextBlock++, kind: 'text' };
        out.push(event({ type: 'content_block_start', index: this.#open.index, content_block: { type: 'text', text: '' } }));
      }
      out.push(event({ type: 'content_block_delta', index: this.#open.index, delta: { type: 'text_delta', text } }));
    }
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
      if (!isRecord(call)) continue;
      const toolIndex = typeof call.index === 'number' ? call.index : 0;
      if (this.#open?.kind !== 'tool' || this.#open.toolIndex !== toolIndex) {
        this.#close(out);
        this.#open = { index: this.#nextBlock++, kind: 'tool', toolIndex };
        const id = typeof call.id === 'string' && call.id !== '' ? call.id : `toolu_${this.#toolsSeen}`;
        this.#toolsSeen++;
        out.push(
          event({
            type: 'content_block_start',
            index: this.#open.index,
            content_block: { type: 'tool_use', id, name: stringOr(call.function?.name, ''), input: {} },
          }),
        );
      }
      const args = call.function?.arguments;
      if (typeof args === 'string' && args !== '')
        out.push(event({ type: 'content_block_delta', index: this.#open.index, delta: { type: 'input_json_delta', partial_json: args } }));
    }
    if (isRecord(choice) && typeof choice.finish_reason === 'string') {
      this.#close(out);
      this.#stopReason = finishToAnthropicStop(choice.finish_reason);
    }
    // The end waits for the usage that comes with or after the finish (include_usage); usage
    // seen earlier (providers that report it on every chunk) is kept for finish().
    if (isRecord(chunk.usage)) {
      this.#usage = chunk.usage;
      if (this.#stopReason !== undefined) out.push(...this.#end());
    }
    return out;
  }

  /** Ends the message if the chunks did not; nothing once it has ended. */
  finish(): AnthropicSseEvent[] {
    if (this.#ended) return [];
    const out: AnthropicSseEvent[] = [];
    if (!this.#started) out.push(this.#start(undefined));
    this.#close(out);
    out.push(...this.#end());
    return out;
  }

  #start(chunk: ChatChunk | undefined): AnthropicSseEvent {
    this.#started = true;
    const id = chunk && typeof chunk.id === 'string' && chunk.id !== '' ? chunk.id : `msg_${randomUUID().replaceAll('-', '')}`;
    const model = chunk && typeof chunk.model === 'string' && chunk.model !== '' ? chunk.model : this.#model;
    const input = chunk && isRecord(chunk.usage) ? chatUsageToAnthropic(chunk.usage) : { input_tokens: 0, output_tokens: 0 };
    return event({
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...input, output_tokens: 0 } },
    });
  }

  #close(out: AnthropicSseEvent[]): void {
    if (this.#open === undefined) return;
    out.push(event({ type: 'content_block_stop', index: this.#open.index }));
    this.#open = undefined;
  }

  #end(): AnthropicSseEvent[] {
    this.#ended = true;
    return [
      event({ type: 'message_delta', delta: { stop_reason: this.#stopReason ?? 'end_turn', stop_sequence: null }, usage: chatUsageToAnthropic(this.#usage) }),
      event({ type: 'message_stop' }),
    ];
  }
}

function event(data: AnthropicStreamEvent): AnthropicSseEvent {
  return { event: data.type, data };
}

/** An Anthropic `error` stream event for a failure in the middle of a translated stream. */
export function anthropicStreamError(type: string, message: string): AnthropicSseEvent {
  return event({ type: 'error', error: { type, message } });
}

function streamErrorToAnthropic(error: JsonObject): AnthropicSseEvent {
  const words = `${stringOr(error['type'], '')} ${stringOr(error['code'], '')}`.toLowerCase();
  const type = /rate_limit/.test(words) ? 'rate_limit_error' : /overloaded/.test(words) ? 'overloaded_error' : 'api_error';
  return anthropicStreamError(type, stringOr(error['message'], 'upstream error'));
}

// ---------------------------------------------------------------------------------------
// Error bodies

const STATUS_TO_ANTHROPIC_ERROR: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** The Anthropic error type for an HTTP status. */
export function anthropicErrorType(status: number): string {
  return STATUS_TO_ANTHROPIC_ERROR[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

const CONTEXT_MESSAGE = /prompt is too long|context limit|context window|exceed context/i;

/** An Anthropic error body (or any text) -> OpenAI's error shape, for OpenAI callers. */
export function anthropicErrorToOpenAI(body: unknown): OpenAIErrorBody {
  const error = isRecord(body) && isRecord(body['error']) ? body['error'] : {};
  const message = typeof body === 'string' && body !== '' ? body : stringOr(error['message'], 'upstream error');
  const type = stringOr(error['type'], 'api_error');
  const code = type === 'invalid_request_error' && CONTEXT_MESSAGE.test(message) ? 'context_length_exceeded' : type;
  return { error: { message, type, param: null, code } };
}

/**
 * An OpenAI-shaped error body (an upstream's, or the proxy's own) -> Anthropic's shape,
 * for Anthropic callers. Extra fields of the error object (e.g. llm_fallback) are kept.
 */
export function openAIErrorToAnthropic(status: number, body: unknown): AnthropicErrorBody {
  const inner: unknown = Array.isArray(body) && body.length === 1 ? body[0] : body;
  const error = isRecord(inner) && isRecord(inner['error']) ? inner['error'] : {};
  const message = typeof inner === 'string' && inner !== '' ? inner : stringOr(error['message'], `upstream error (HTTP ${status})`);
  const extra: JsonObject = {};
  for (const [key, value] of Object.entries(error)) {
    if (!['message', 'type', 'code', 'param', 'status'].includes(key)) extra[key] = value;
  }
  return { type: 'error', error: { ...extra, type: anthropicErrorType(status), message } };
}
