// Responses API requests <-> the canonical request (OpenAI Chat Completions). Pure.
//   caller side:   a Responses request (instructions, input as text or items, function tools,
//                  tool outputs, text.format…) -> a Chat request, with the fields it drops;
//   upstream side: a Chat request -> a Responses request for an `api: openai-responses` step.
// What only a Responses upstream can serve (built-in tools, stored prompts, file ids…) is an
// UnservableRequest: steps of other formats are skipped. What needs state kept between
// requests (previous_response_id, conversations, item references, background runs) is a
// refused (statefulUse): a sidecar keeps none, so the caller gets a 400 saying so.
import type {
  AssistantMessage,
  ChatMessage,
  ChatRequest,
  ContentPart,
  JsonObject,
  ResponseFormat,
  TextPart,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../openai-chat/types.ts';
import { InvalidRequest, UnservableRequest, type Translated } from '../errors.ts';
import { DroppedFields, isRecord, isUnsetOrDefault, shownInMessage } from '../translation-helpers.ts';

/** The Responses error code for a request that needs state the sidecar does not keep. */
export const STATEFUL_REQUEST_CODE = 'stateful_request_not_supported';

/** Fields whose use needs the provider to keep state between requests, which a sidecar cannot offer. */
const STATEFUL_FIELDS: Record<string, string> = {
  previous_response_id: 'previous_response_id continues a response stored on the server',
  conversation: 'conversation refers to a conversation stored on the server',
  background: 'background runs are polled later from the server',
};

/** Why a request needs server-side state, or undefined when it does not. */
export function statefulUse(body: JsonObject): { param: string; message: string } | undefined {
  for (const [field, what] of Object.entries(STATEFUL_FIELDS)) {
    const value = body[field];
    if (value === undefined || value === null || value === false) continue;
    return { param: field, message: statelessMessage(what) };
  }
  if (Array.isArray(body['input']) && body['input'].some((item) => isRecord(item) && item['type'] === 'item_reference')) {
    return { param: 'input', message: statelessMessage('an item_reference input item refers to an item stored on the server') };
  }
  return undefined;
}

export function statelessMessage(what: string): string {
  return `${what}; llm-fallback is a stateless sidecar that may answer each request from a different provider, so it keeps no responses: send the whole conversation in \`input\` instead (every response says store: false).`;
}

/** Request fields the translation maps. */
const MAPPED = new Set([
  'model',
  'input',
  'instructions',
  'max_output_tokens',
  'temperature',
  'top_p',
  'tools',
  'tool_choice',
  'text',
  'stream',
  'parallel_tool_calls',
  'user',
  'store',
  'metadata',
]);

/** Fields that change nothing when dropped at these values. */
const HARMLESS: Record<string, unknown> = { truncation: 'disabled', background: false, include: undefined, service_tier: 'auto', top_logprobs: 0 };

/** A Responses API request -> the canonical Chat request. */
export function responsesRequestToChat(body: JsonObject): Translated<ChatRequest> {
  const stateful = statefulUse(body);
  if (stateful) throw new InvalidRequest(stateful.message);
  const dropped = new DroppedFields();
  const model = body['model'];
  if (typeof model !== 'string') throw new InvalidRequest('model: a string is required');
  const messages: ChatMessage[] = [];
  const instructions = body['instructions'];
  if (typeof instructions === 'string' && instructions !== '') messages.push({ role: 'system', content: instructions });
  else if (instructions !== undefined && instructions !== null && typeof instructions !== 'string') throw new InvalidRequest('instructions: must be a string');
  const input = body['input'];
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  else if (Array.isArray(input)) appendItems(messages, input, dropped);
  else if (input !== undefined) throw new InvalidRequest('input: must be a string or an array of input items');
  if (messages.length === 0) throw new InvalidRequest('input: the request has no input');

  const chat: ChatRequest = { model, messages };
  const maxOutput = body['max_output_tokens'];
  if (maxOutput !== undefined && maxOutput !== null) {
    if (typeof maxOutput !== 'number' || !Number.isInteger(maxOutput) || maxOutput < 1)
      throw new InvalidRequest('max_output_tokens: must be a positive integer');
    chat.max_tokens = maxOutput;
  }
  for (const field of ['temperature', 'top_p'] as const) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number') throw new InvalidRequest(`${field}: must be a number`);
    chat[field] = value;
  }
  if (typeof body['parallel_tool_calls'] === 'boolean') chat.parallel_tool_calls = body['parallel_tool_calls'];
  if (typeof body['user'] === 'string') chat.user = body['user'];
  if (body['stream'] === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  const tools = toolsToChat(body['tools']);
  if (tools.length > 0) chat.tools = tools;
  const choice = toolChoiceToChat(body['tool_choice']);
  if (choice !== undefined) chat.tool_choice = choice;
  const format = textFormatToChat(body['text'], dropped);
  if (format) chat.response_format = format;
  if (isRecord(body['metadata']) && Object.keys(body['metadata']).length > 0) dropped.add('metadata');
  if (isRecord(body['reasoning']) && (body['reasoning']['effort'] ?? null) !== null) dropped.add('reasoning');
  if (isRecord(body['prompt'])) throw new UnservableRequest('prompt (a stored prompt template) is served by Responses-API upstreams only');
  for (const [field, value] of Object.entries(body)) {
    if (MAPPED.has(field) || field === 'reasoning' || field === 'prompt' || field in STATEFUL_FIELDS) continue;
    if (field in HARMLESS && (value === HARMLESS[field] || value === null || (Array.isArray(value) && value.length === 0))) continue;
    if (isUnsetOrDefault(field, value)) continue;
    dropped.add(field);
  }
  return { value: chat, dropped: dropped.list() };
}

function appendItems(messages: ChatMessage[], items: unknown[], dropped: DroppedFields): void {
  for (const [index, item] of items.entries()) {
    if (!isRecord(item)) throw new InvalidRequest(`input[${index}]: must be an object`);
    const type = item['type'] ?? 'message';
    if (type === 'message') messages.push(messageToChat(item, index));
    else if (type === 'function_call') appendToolCall(messages, item, index);
    else if (type === 'function_call_output') messages.push(toolOutputToChat(item, index));
    // Reasoning from earlier turns is the model's own scratch work: another model cannot use it.
    else if (type === 'reasoning') dropped.add('input[].reasoning');
    else throw new UnservableRequest(`input[${index}] is a ${shownInMessage(type)} item, which Responses-API upstreams only can take`);
  }
}

function messageToChat(item: JsonObject, index: number): ChatMessage {
  const role = item['role'];
  const content = item['content'];
  const where = `input[${index}].content`;
  if (role === 'assistant') {
    const message: AssistantMessage = {
      role: 'assistant',
      content:
        typeof content === 'string'
          ? content
          : partsOf(content, where)
              .map((part) => outputPartText(part, where))
              .join(''),
    };
    return message;
  }
  if (role === 'system' || role === 'developer') {
    return {
      role,
      content:
        typeof content === 'string' ? content : partsOf(content, where).map((part) => ({ type: 'text', text: inputText(part, where) }) satisfies TextPart),
    };
  }
  if (role !== 'user') throw new InvalidRequest(`input[${index}].role: must be one of user, assistant, system, developer`);
  return { role: 'user', content: typeof content === 'string' ? content : partsOf(content, where).map((part) => inputPartToChat(part, where)) };
}

function partsOf(content: unknown, where: string): JsonObject[] {
  if (!Array.isArray(content)) throw new InvalidRequest(`${where}: must be a string or an array of content parts`);
  return content.map((part) => {
    if (!isRecord(part)) throw new InvalidRequest(`${where}: every content part must be an object`);
    return part;
  });
}

function inputText(part: JsonObject, where: string): string {
  if ((part['type'] === 'input_text' || part['type'] === 'output_text') && typeof part['text'] === 'string') return part['text'];
  throw new UnservableRequest(`${where}: a ${String(part['type'])} part in a system or developer message`);
}

function outputPartText(part: JsonObject, where: string): string {
  if ((part['type'] === 'output_text' || part['type'] === 'input_text') && typeof part['text'] === 'string') return part['text'];
  if (part['type'] === 'refusal' && typeof part['refusal'] === 'string') return part['refusal'];
  throw new InvalidRequest(`${where}: an assistant message holds output_text and refusal parts`);
}

function inputPartToChat(part: JsonObject, where: string): ContentPart {
  switch (part['type']) {
    case 'input_text':
      if (typeof part['text'] !== 'string') break;
      return { type: 'text', text: part['text'] };
    case 'input_image': {
      const url = part['image_url'];
      if (typeof url !== 'string') throw new UnservableRequest(`${where}: an input_image by file_id is served by Responses-API upstreams only`);
      const detail = part['detail'];
      return { type: 'image_url', image_url: { url, ...(detail === 'low' || detail === 'high' || detail === 'auto' ? { detail } : {}) } };
    }
    case 'input_file': {
      if (typeof part['file_data'] === 'string')
        return { type: 'file', file: { file_data: part['file_data'], ...(typeof part['filename'] === 'string' ? { filename: part['filename'] } : {}) } };
      if (typeof part['file_id'] === 'string') return { type: 'file', file: { file_id: part['file_id'] } };
      throw new UnservableRequest(`${where}: an input_file by URL is served by Responses-API upstreams only`);
    }
    default:
      throw new UnservableRequest(`${where}: a ${String(part['type'])} part is served by Responses-API upstreams only`);
  }
  throw new InvalidRequest(`${where}: input_text needs a text string`);
}

/** function_call items follow their assistant turn; consecutive calls are one Chat assistant message. */
function appendToolCall(messages: ChatMessage[], item: JsonObject, index: number): void {
  const callId = item['call_id'];
  const name = item['name'];
  const args = item['arguments'];
  if (typeof callId !== 'string' || typeof name !== 'string' || typeof args !== 'string') {
    throw new InvalidRequest(`input[${index}]: a function_call needs call_id, name and arguments (strings)`);
  }
  const call: ToolCall = { id: callId, type: 'function', function: { name, arguments: args } };
  const last = messages[messages.length - 1];
  if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
  else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
}

function toolOutputToChat(item: JsonObject, index: number): ChatMessage {
  const callId = item['call_id'];
  if (typeof callId !== 'string') throw new InvalidRequest(`input[${index}].call_id: a string is required`);
  const output = item['output'];
  const where = `input[${index}].output`;
  if (typeof output === 'string') return { role: 'tool', tool_call_id: callId, content: output };
  return {
    role: 'tool',
    tool_call_id: callId,
    content: partsOf(output, where).map((part) => ({ type: 'text', text: inputText(part, where) }) satisfies TextPart),
  };
}

function toolsToChat(tools: unknown): ToolDefinition[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw new InvalidRequest('tools: must be an array');
  return tools.map((tool, index) => {
    if (!isRecord(tool)) throw new InvalidRequest(`tools[${index}]: must be an object`);
    if (tool['type'] !== 'function')
      throw new UnservableRequest(`tools[${index}] is a built-in ${String(tool['type'])} tool, which Responses-API upstreams only can run`);
    if (typeof tool['name'] !== 'string') throw new InvalidRequest(`tools[${index}].name: a string is required`);
    const fn: ToolDefinition['function'] = { name: tool['name'] };
    if (typeof tool['description'] === 'string') fn.description = tool['description'];
    if (isRecord(tool['parameters'])) fn.parameters = tool['parameters'];
    // Kept only when the caller said so: a loose schema sent as strict would be refused by Chat upstreams.
    if (typeof tool['strict'] === 'boolean') fn.strict = tool['strict'];
    return { type: 'function', function: fn };
  });
}

function toolChoiceToChat(choice: unknown): ToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'none' || choice === 'auto' || choice === 'required') return choice;
  if (isRecord(choice) && choice['type'] === 'function' && typeof choice['name'] === 'string') return { type: 'function', function: { name: choice['name'] } };
  throw new UnservableRequest(`tool_choice ${JSON.stringify(choice)} is served by Responses-API upstreams only`);
}

function textFormatToChat(text: unknown, dropped: DroppedFields): ResponseFormat | undefined {
  if (!isRecord(text)) return undefined;
  if (text['verbosity'] !== undefined && text['verbosity'] !== null && text['verbosity'] !== 'medium') dropped.add('text.verbosity');
  const format = text['format'];
  if (!isRecord(format) || format['type'] === 'text') return undefined;
  if (format['type'] === 'json_object') return { type: 'json_object' };
  if (format['type'] === 'json_schema' && typeof format['name'] === 'string') {
    const schema: JsonObject = { name: format['name'] };
    if (typeof format['description'] === 'string') schema['description'] = format['description'];
    if (isRecord(format['schema'])) schema['schema'] = format['schema'];
    if (typeof format['strict'] === 'boolean') schema['strict'] = format['strict'];
    return { type: 'json_schema', json_schema: schema as { name: string } };
  }
  throw new InvalidRequest('text.format: must be text, json_object or json_schema (with a name)');
}

// ---------------------------------------------------------------------------------------
// Upstream side

/** The smallest max_output_tokens the Responses API takes. */
export const MIN_OUTPUT_TOKENS = 16;

/** Chat fields a Responses request has no place for, dropped when they are set to something that matters. */
const CHAT_ONLY = [
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'audio',
  'modalities',
  'prediction',
  'web_search_options',
  'top_k',
];

/** The canonical Chat request -> a Responses API request (store: false: the sidecar keeps nothing, and asks the same of the provider). */
export function chatRequestToResponses(chat: ChatRequest): Translated<JsonObject> {
  const dropped = new DroppedFields();
  if (typeof chat.n === 'number' && chat.n > 1) throw new UnservableRequest('n > 1: the Responses API returns one answer per request');
  const input: JsonObject[] = [];
  for (const message of chat.messages) appendChatMessage(input, message);
  const out: JsonObject = { model: chat.model, input, store: false };
  const max = chat.max_completion_tokens ?? chat.max_tokens;
  if (typeof max === 'number') {
    // The API refuses smaller limits; raising it would let the answer run longer than the caller allowed.
    if (max < MIN_OUTPUT_TOKENS)
      throw new UnservableRequest(`an output limit of ${max} tokens: the Responses API's smallest max_output_tokens is ${MIN_OUTPUT_TOKENS}`);
    out['max_output_tokens'] = max;
  }
  if (typeof chat.temperature === 'number') out['temperature'] = chat.temperature;
  if (typeof chat.top_p === 'number') out['top_p'] = chat.top_p;
  if (typeof chat.parallel_tool_calls === 'boolean') out['parallel_tool_calls'] = chat.parallel_tool_calls;
  if (typeof chat.user === 'string') out['user'] = chat.user;
  if (chat.stream === true) out['stream'] = true;
  if (chat.tools && chat.tools.length > 0) {
    out['tools'] = chat.tools.map((tool) => ({
      type: 'function',
      name: tool.function.name,
      ...(tool.function.description !== undefined ? { description: tool.function.description } : {}),
      parameters: tool.function.parameters ?? null,
      // Chat tools are not strict unless they say so; the Responses API's default is strict.
      strict: tool.function.strict === true,
    }));
  }
  if (chat.tool_choice !== undefined) {
    out['tool_choice'] = typeof chat.tool_choice === 'string' ? chat.tool_choice : { type: 'function', name: chat.tool_choice.function.name };
  }
  const format = chat.response_format;
  if (format?.type === 'json_object') out['text'] = { format: { type: 'json_object' } };
  else if (format?.type === 'json_schema') {
    const { name, description, schema, strict } = format.json_schema;
    out['text'] = {
      format: {
        type: 'json_schema',
        name,
        ...(description !== undefined ? { description } : {}),
        schema: schema ?? {},
        ...(typeof strict === 'boolean' ? { strict } : {}),
      },
    };
  }
  if (typeof chat['reasoning_effort'] === 'string') out['reasoning'] = { effort: chat['reasoning_effort'] };
  for (const field of CHAT_ONLY) {
    if (!isUnsetOrDefault(field, chat[field])) dropped.add(field);
  }
  return { value: out, dropped: dropped.list() };
}

function appendChatMessage(input: JsonObject[], message: ChatMessage): void {
  switch (message.role) {
    case 'system':
    case 'developer':
      input.push({
        type: 'message',
        role: message.role,
        content: typeof message.content === 'string' ? message.content : message.content.map((part) => ({ type: 'input_text', text: part.text })),
      });
      return;
    case 'user':
      input.push({ type: 'message', role: 'user', content: typeof message.content === 'string' ? message.content : message.content.map(userPartToResponses) });
      return;
    case 'assistant': {
      const text =
        typeof message.content === 'string'
          ? message.content
          : (message.content ?? []).map((part) => (part.type === 'text' ? part.text : part.refusal)).join('');
      if (text !== '') input.push({ type: 'message', role: 'assistant', content: text });
      for (const call of message.tool_calls ?? [])
        input.push({ type: 'function_call', call_id: call.id, name: call.function.name, arguments: call.function.arguments });
      return;
    }
    case 'tool':
      input.push({
        type: 'function_call_output',
        call_id: message.tool_call_id,
        output: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
      });
      return;
  }
}

function userPartToResponses(part: ContentPart): JsonObject {
  switch (part.type) {
    case 'text':
      return { type: 'input_text', text: part.text };
    case 'image_url':
      return { type: 'input_image', image_url: part.image_url.url, detail: part.image_url.detail ?? 'auto' };
    case 'file': {
      const { file_data, file_id, filename } = part.file;
      return {
        type: 'input_file',
        ...(file_data !== undefined ? { file_data } : {}),
        ...(file_id !== undefined ? { file_id } : {}),
        ...(filename !== undefined ? { filename } : {}),
      };
    }
    case 'input_audio':
      throw new UnservableRequest('audio input: the Responses API takes no input_audio parts');
  }
}
