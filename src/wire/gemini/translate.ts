// Google's Generative Language API (v1beta generateContent / streamGenerateContent with
// alt=sse) <-> the canonical OpenAI Chat Completions format. Gemini is only ever an
// upstream: requests go Chat -> Gemini, answers and errors come back Gemini -> Chat.
import type {
  ChatChunk,
  ChatRequest,
  ChatResponse,
  ChatResponseMessage,
  ChatUsage,
  ChunkChoice,
  ChunkDelta,
  FinishReason,
  JsonObject,
  OpenAIErrorBody,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
  ToolDefinition,
} from '../openai-chat/types.ts';
import { InvalidRequest, MalformedUpstream, UnservableRequest, type Translated } from '../errors.ts';
import { DroppedFields, isRecord, isUnsetOrDefault, numberOr0, nowSeconds, parseArguments, parseDataUrl, stringOr, textOf } from '../translation-helpers.ts';

export { InvalidRequest, MalformedUpstream, UnservableRequest } from '../errors.ts';

// ---------------------------------------------------------------------------------------
// Wire types (the subset we map)

export interface GeminiPart {
  text?: string;
  thought?: boolean;
  inlineData?: { mimeType: string; data: string };
  fileData?: { mimeType: string; fileUri: string };
  functionCall?: { name: string; args?: JsonObject; id?: string };
  functionResponse?: { name: string; response: JsonObject; id?: string };
  [key: string]: unknown;
}

export interface GeminiContent {
  role?: 'user' | 'model';
  parts: GeminiPart[];
  [key: string]: unknown;
}

export interface GeminiFunctionDeclaration {
  name: string;
  description?: string;
  parametersJsonSchema?: JsonObject;
  [key: string]: unknown;
}

export interface GeminiGenerationConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxOutputTokens?: number;
  stopSequences?: string[];
  candidateCount?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  responseMimeType?: string;
  responseJsonSchema?: JsonObject;
  [key: string]: unknown;
}

export interface GeminiToolConfig {
  functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] };
}

export interface GeminiRequest {
  contents: GeminiContent[];
  systemInstruction?: { parts: GeminiPart[] };
  tools?: Array<{ functionDeclarations: GeminiFunctionDeclaration[] }>;
  toolConfig?: GeminiToolConfig;
  generationConfig?: GeminiGenerationConfig;
  [key: string]: unknown;
}

// Media types guessed from an http(s) image URL's extension (Gemini's fileData needs one).
const IMAGE_TYPES_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
};

// Fields the Gemini translation reads; everything else is reported as dropped.
const CHAT_FIELDS_FOR_GEMINI = new Set([
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
  'response_format',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'modalities',
  'audio',
  'functions',
  'function_call',
]);

// ---------------------------------------------------------------------------------------
// Requests

/**
 * Translates a Chat request for an `api: gemini` step: the path to append to the
 * provider's baseURL (…/v1beta) and the body. Throws UnservableRequest when Gemini cannot
 * serve it faithfully; returns the caller's fields it had to drop.
 */
export function chatRequestToGemini(chat: ChatRequest, stream: boolean): Translated<{ path: string; body: GeminiRequest }> {
  const dropped = new DroppedFields();
  if (!Array.isArray(chat.messages)) throw new InvalidRequest('messages: Input should be a valid list');
  if (chat.audio !== undefined && chat.audio !== null) throw new UnservableRequest('audio output is not translated to Gemini');
  if (Array.isArray(chat.modalities) && chat.modalities.some((m) => m !== 'text'))
    throw new UnservableRequest('only text output is translated to Gemini (modalities)');
  if (chat.functions !== undefined || chat.function_call !== undefined)
    throw new UnservableRequest('legacy functions/function_call are not translated; use tools');

  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  const push = (role: 'user' | 'model', parts: GeminiPart[]): void => {
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    // Consecutive turns of one role merge, so the answers to parallel calls share a turn.
    if (last && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  chat.messages.forEach((message, i) => {
    if (!isRecord(message)) throw new InvalidRequest(`messages[${i}]: Input should be an object`);
    if (typeof message.name === 'string') dropped.add('messages[].name');
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = textOf(message.content);
        if (text !== '') system.push({ text });
        break;
      }
      case 'user':
        push('user', userContentToGemini(message.content, dropped));
        break;
      case 'assistant': {
        const parts: GeminiPart[] = [];
        const text = textOf(message.content) || (typeof message.refusal === 'string' ? message.refusal : '');
        if (text !== '') parts.push({ text });
        for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
          const fn = isRecord(call) && isRecord(call.function) ? call.function : undefined;
          if (!fn || typeof fn.name !== 'string') throw new UnservableRequest('assistant tool_calls without a function name cannot be translated');
          const args = parseArguments(stringOr(fn.arguments, ''));
          if (!args) throw new UnservableRequest(`tool call ${String(call.id)} has arguments that are not a JSON object; Gemini needs them as an object`);
          parts.push({ functionCall: { name: fn.name, args } });
        }
        push('model', parts);
        break;
      }
      case 'tool': {
        const name = toolNameFor(chat.messages, i, message.tool_call_id);
        if (name === undefined)
          throw new UnservableRequest(`tool message ${String(message.tool_call_id)} answers no earlier assistant tool call; Gemini needs the function's name`);
        push('user', [{ functionResponse: { name, response: toolResponseObject(textOf(message.content)) } }]);
        break;
      }
      default:
        throw new UnservableRequest(`messages with role ${String((message as { role?: unknown }).role)} have no Gemini equivalent`);
    }
  });

  const body: GeminiRequest = { ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}), contents };
  const tools = Array.isArray(chat.tools) ? chat.tools : [];
  if (tools.length > 0) {
    body.tools = [{ functionDeclarations: tools.map((tool) => chatToolToGemini(tool, dropped)) }];
    const toolConfig = chatToolChoiceToGemini(chat.tool_choice);
    if (toolConfig) body.toolConfig = toolConfig;
    if (chat.parallel_tool_calls === false) dropped.add('parallel_tool_calls');
  } else if (chat.tool_choice !== undefined && chat.tool_choice !== 'none' && chat.tool_choice !== 'auto') {
    throw new UnservableRequest('tool_choice requires a tool, but no tools were given');
  }

  const config: GeminiGenerationConfig = {};
  if (typeof chat.temperature === 'number') config.temperature = chat.temperature;
  if (typeof chat.top_p === 'number') config.topP = chat.top_p;
  if (typeof chat.top_k === 'number') config.topK = chat.top_k;
  const maxTokens = chat.max_completion_tokens ?? chat.max_tokens;
  if (typeof maxTokens === 'number') config.maxOutputTokens = maxTokens;
  const stop = typeof chat.stop === 'string' ? [chat.stop] : Array.isArray(chat.stop) ? chat.stop.filter((s) => typeof s === 'string') : [];
  if (stop.length > 0) config.stopSequences = stop;
  if (typeof chat.n === 'number' && chat.n !== 1) config.candidateCount = chat.n;
  if (typeof chat.seed === 'number') config.seed = chat.seed;
  if (typeof chat.presence_penalty === 'number' && chat.presence_penalty !== 0) config.presencePenalty = chat.presence_penalty;
  if (typeof chat.frequency_penalty === 'number' && chat.frequency_penalty !== 0) config.frequencyPenalty = chat.frequency_penalty;
  const format = chat.response_format;
  if (isRecord(format) && format.type === 'json_object') config.responseMimeType = 'application/json';
  if (isRecord(format) && format.type === 'json_schema') {
    config.responseMimeType = 'application/json';
    const schema = isRecord(format.json_schema) ? format.json_schema.schema : undefined;
    if (isRecord(schema)) config.responseJsonSchema = schema;
  }
  if (Object.keys(config).length > 0) body.generationConfig = config;

  for (const [key, value] of Object.entries(chat)) {
    if (!CHAT_FIELDS_FOR_GEMINI.has(key) && !isUnsetOrDefault(key, value)) dropped.add(key);
  }
  // Model names are plain ([a-z0-9.-]) at Google, but the path must stay a path whatever a config says.
  const model = encodeURIComponent(chat.model.replace(/^models\//, ''));
  const path = stream ? `/models/${model}:streamGenerateContent?alt=sse` : `/models/${model}:generateContent`;
  return { value: { path, body }, dropped: dropped.list() };
}

/** The function name of the tool call a tool message answers, from the nearest earlier assistant turn. */
function toolNameFor(messages: ChatRequest['messages'], before: number, toolCallId: unknown): string | undefined {
  for (let i = before - 1; i >= 0; i--) {
    const message = messages[i];
    if (!isRecord(message) || message.role !== 'assistant' || !Array.isArray(message.tool_calls)) continue;
    for (const call of message.tool_calls) {
      if (isRecord(call) && call.id === toolCallId && isRecord(call.function) && typeof call.function.name === 'string') return call.function.name;
    }
  }
  return undefined;
}

/** Gemini wants the function's result as an object: a JSON object as is, anything else under `output` (Gemini's documented key). */
function toolResponseObject(text: string): JsonObject {
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) return parsed;
  } catch {
    // plain text
  }
  return { output: text };
}

function userContentToGemini(content: unknown, dropped: DroppedFields): GeminiPart[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  if (!Array.isArray(content)) return [];
  const parts: GeminiPart[] = [];
  for (const part of content) {
    if (!isRecord(part)) continue;
    switch (part['type']) {
      case 'text':
        if (typeof part['text'] === 'string' && part['text'] !== '') parts.push({ text: part['text'] });
        break;
      case 'image_url': {
        const image = isRecord(part['image_url']) ? part['image_url'] : {};
        if (image['detail'] !== undefined && image['detail'] !== 'auto') dropped.add('image_url.detail');
        parts.push(imageUrlToGemini(stringOr(image['url'], '')));
        break;
      }
      case 'input_audio': {
        const audio = isRecord(part['input_audio']) ? part['input_audio'] : {};
        parts.push({ inlineData: { mimeType: `audio/${stringOr(audio['format'], 'wav')}`, data: stringOr(audio['data'], '') } });
        break;
      }
      case 'file': {
        const file = isRecord(part['file']) ? part['file'] : {};
        const data = parseDataUrl(stringOr(file['file_data'], ''));
        if (!data) throw new UnservableRequest('file parts are translated to Gemini only as data: URLs in file_data (not file_id)');
        parts.push({ inlineData: { mimeType: data.mimeType, data: data.data } });
        break;
      }
      default:
        throw new UnservableRequest(`content parts of type ${String(part['type'])} have no Gemini equivalent`);
    }
  }
  return parts;
}

function imageUrlToGemini(url: string): GeminiPart {
  const data = parseDataUrl(url);
  if (data) return { inlineData: { mimeType: data.mimeType, data: data.data } };
  if (!/^https?:\/\//i.test(url)) throw new UnservableRequest('image_url must be a data: URL or an http(s) URL');
  let extension: string;
  try {
    extension = new URL(url).pathname.split('.').pop()?.toLowerCase() ?? '';
  } catch {
    throw new UnservableRequest('image_url is not a valid URL');
  }
  const mimeType = IMAGE_TYPES_BY_EXTENSION[extension];
  if (!mimeType)
    throw new UnservableRequest(
      'an http(s) image URL without a known image extension cannot be sent to Gemini (fileData needs its media type); send a data: URL',
    );
  return { fileData: { mimeType, fileUri: url } };
}

function chatToolToGemini(tool: ToolDefinition, dropped: DroppedFields): GeminiFunctionDeclaration {
  if (!isRecord(tool) || tool.type !== 'function' || !isRecord(tool.function) || typeof tool.function.name !== 'string') {
    throw new UnservableRequest(`tools of type ${String(isRecord(tool) ? tool.type : tool)} have no Gemini equivalent`);
  }
  const fn = tool.function;
  if (fn.strict === true) dropped.add('tools[].function.strict');
  return {
    name: fn.name,
    ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
    ...(isRecord(fn.parameters) ? { parametersJsonSchema: fn.parameters } : {}),
  };
}

function chatToolChoiceToGemini(choice: ToolChoice | undefined): GeminiToolConfig | undefined {
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string') {
    return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.function.name] } };
  }
  throw new UnservableRequest('tool_choice of this shape has no Gemini equivalent');
}

// ---------------------------------------------------------------------------------------
// Responses

const FILTER_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

/** Gemini finishReason -> OpenAI finish_reason (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL… are 'stop'). */
export function geminiFinishToChat(reason: unknown, calledTools: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (typeof reason === 'string' && FILTER_REASONS.has(reason)) return 'content_filter';
  return calledTools ? 'tool_calls' : 'stop';
}

/** usageMetadata -> OpenAI usage. promptTokenCount already includes cached tokens; thoughts count as output. */
export function geminiUsageToChat(usage: unknown): ChatUsage {
  const u = isRecord(usage) ? usage : {};
  const prompt = numberOr0(u['promptTokenCount']);
  const thoughts = numberOr0(u['thoughtsTokenCount']);
  const completion = numberOr0(u['candidatesTokenCount']) + thoughts;
  const out: ChatUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: numberOr0(u['cachedContentTokenCount']) },
  };
  if (thoughts > 0) out.completion_tokens_details = { reasoning_tokens: thoughts };
  return out;
}

function toolCallIdPrefix(responseId: unknown): string {
  // Unique across turns, so a conversation replayed to another provider has distinct ids.
  const clean = typeof responseId === 'string' ? responseId.replace(/[^A-Za-z0-9_-]/g, '') : '';
  return clean === '' ? 'call_' : `call_${clean}_`;
}

interface ReadParts {
  text: string;
  calls: Array<{ id?: string; name: string; args: JsonObject }>;
}

function readParts(content: unknown): ReadParts {
  const parts = isRecord(content) && Array.isArray(content['parts']) ? content['parts'] : [];
  const texts: string[] = [];
  const calls: ReadParts['calls'] = [];
  for (const part of parts) {
    if (!isRecord(part)) continue;
    // Thought summaries are the model's reasoning, not its answer.
    if (typeof part['text'] === 'string' && part['thought'] !== true) texts.push(part['text']);
    const call = part['functionCall'];
    if (isRecord(call)) {
      const id = typeof call['id'] === 'string' && call['id'] !== '' ? call['id'] : undefined;
      calls.push({ ...(id ? { id } : {}), name: stringOr(call['name'], ''), args: isRecord(call['args']) ? call['args'] : {} });
    }
  }
  return { text: texts.join(''), calls };
}

/**
 * A generateContent response -> a Chat response. Candidates become choices; a prompt blocked
 * by promptFeedback becomes one empty choice with finish_reason content_filter. Tool calls
 * get ids `call_<responseId>_<n>` unless Gemini gave one. `model` is reported when the body
 * has no modelVersion. Throws MalformedUpstream for a body that is not a response.
 */
export function geminiResponseToChat(body: unknown, model: string, created: number = nowSeconds()): ChatResponse {
  if (!isRecord(body)) throw new MalformedUpstream('Gemini response is not a JSON object');
  const candidates = body['candidates'];
  const blocked = isRecord(body['promptFeedback']) && typeof body['promptFeedback']['blockReason'] === 'string';
  if (!Array.isArray(candidates) && !blocked) throw new MalformedUpstream('Gemini response has neither candidates nor promptFeedback.blockReason');
  const prefix = toolCallIdPrefix(body['responseId']);
  let callCount = 0;
  const choices: ChatResponse['choices'] = [];
  (Array.isArray(candidates) ? candidates : []).forEach((candidate, position) => {
    if (!isRecord(candidate)) return;
    const { text, calls } = readParts(candidate['content']);
    const toolCalls: ToolCall[] = calls.map((call) => ({
      id: call.id ?? `${prefix}${callCount++}`,
      type: 'function',
      function: { name: call.name, arguments: JSON.stringify(call.args) },
    }));
    const finish = geminiFinishToChat(candidate['finishReason'], toolCalls.length > 0);
    // No text: null when the answer is tool calls or was withheld, as OpenAI reports them.
    const message: ChatResponseMessage = {
      role: 'assistant',
      content: text === '' && (toolCalls.length > 0 || finish === 'content_filter') ? null : text,
      refusal: null,
    };
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    const index = typeof candidate['index'] === 'number' ? candidate['index'] : position;
    choices.push({ index, message, logprobs: null, finish_reason: finish });
  });
  if (choices.length === 0) {
    if (!blocked) throw new MalformedUpstream('Gemini response has no candidates');
    choices.push({ index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'content_filter' });
  }
  return {
    id: stringOr(body['responseId'], `gemini-${created}`),
    object: 'chat.completion',
    created,
    model: stringOr(body['modelVersion'], model),
    choices,
    usage: geminiUsageToChat(body['usageMetadata']),
  };
}

/**
 * streamGenerateContent?alt=sse events (each a partial GenerateContentResponse) -> Chat
 * chunks. The first chunk of each choice carries the role; a finishReason becomes that
 * choice's finish_reason, and is followed by one usage chunk (choices: []) with the
 * latest usageMetadata. A blocked prompt is a single chunk with finish_reason
 * content_filter. A `{"error": …}` event becomes a chunk with an OpenAI-shaped top-level
 * `error`. Gemini sends no [DONE]: `finished` turns true once a finishReason was seen.
 */
export class GeminiStreamToChat {
  readonly #fallbackModel: string;
  readonly #created: number;
  #id = '';
  #model = '';
  #prefix = '';
  #callCount = 0;
  #finished = false;
  #usage: unknown;
  readonly #roleSent = new Set<number>();
  readonly #toolsPerChoice = new Map<number, number>();

  constructor(model: string, created: number = nowSeconds()) {
    this.#fallbackModel = model;
    this.#created = created;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** The latest usageMetadata in OpenAI's shape; undefined until Gemini sent one. */
  usage(): ChatUsage | undefined {
    return this.#usage === undefined ? undefined : geminiUsageToChat(this.#usage);
  }

  push(data: unknown): ChatChunk[] {
    if (Array.isArray(data) && data.length === 1) return this.push(data[0]);
    if (!isRecord(data)) return [];
    if (isRecord(data['error'])) {
      const status = typeof data['error']['code'] === 'number' ? data['error']['code'] : 500;
      return [{ ...this.#base(), choices: [], error: { ...geminiErrorToOpenAI(status, data).error } }];
    }
    if (this.#id === '' && typeof data['responseId'] === 'string') {
      this.#id = data['responseId'];
      this.#prefix = toolCallIdPrefix(data['responseId']);
    }
    if (this.#prefix === '') this.#prefix = 'call_';
    if (this.#model === '' && typeof data['modelVersion'] === 'string') this.#model = data['modelVersion'];
    if (isRecord(data['usageMetadata'])) this.#usage = data['usageMetadata'];

    const out: ChatChunk[] = [];
    let finishedNow = false;
    const candidates = Array.isArray(data['candidates']) ? data['candidates'] : [];
    candidates.forEach((candidate, position) => {
      if (!isRecord(candidate)) return;
      const index = typeof candidate['index'] === 'number' ? candidate['index'] : position;
      const { text, calls } = readParts(candidate['content']);
      const delta: ChunkDelta = {};
      if (text !== '') delta.content = text;
      if (calls.length > 0) {
        const first = this.#toolsPerChoice.get(index) ?? 0;
        delta.tool_calls = calls.map((call, k): ToolCallDelta => ({
          index: first + k,
          id: call.id ?? `${this.#prefix}${this.#callCount++}`,
          type: 'function',
          function: { name: call.name, arguments: JSON.stringify(call.args) },
        }));
        this.#toolsPerChoice.set(index, first + calls.length);
      }
      const reason = candidate['finishReason'];
      const finish = typeof reason === 'string' ? geminiFinishToChat(reason, (this.#toolsPerChoice.get(index) ?? 0) > 0) : null;
      if (finish) finishedNow = true;
      if (Object.keys(delta).length > 0 || finish) out.push(this.#chunk(index, delta, finish));
    });
    const feedback = data['promptFeedback'];
    if (candidates.length === 0 && isRecord(feedback) && typeof feedback['blockReason'] === 'string') {
      out.push(this.#chunk(0, {}, 'content_filter'));
      finishedNow = true;
    }
    if (finishedNow && !this.#finished) {
      this.#finished = true;
      out.push({ ...this.#base(), choices: [], usage: geminiUsageToChat(this.#usage) });
    }
    return out;
  }

  #base(): { id: string; object: 'chat.completion.chunk'; created: number; model: string } {
    return { id: this.#id || `gemini-${this.#created}`, object: 'chat.completion.chunk', created: this.#created, model: this.#model || this.#fallbackModel };
  }

  #chunk(index: number, delta: ChunkDelta, finish: FinishReason | null): ChatChunk {
    const withRole: ChunkDelta = this.#roleSent.has(index) ? delta : { role: 'assistant', ...delta };
    this.#roleSent.add(index);
    const choice: ChunkChoice = { index, delta: withRole, logprobs: null, finish_reason: finish };
    return { ...this.#base(), choices: [choice] };
  }
}

// ---------------------------------------------------------------------------------------
// Errors

const GEMINI_CONTEXT_MESSAGE = /input token count|exceeds the maximum number of tokens|context (window|length)|too many tokens/i;
const GEMINI_BAD_KEY = /API key not valid|API_KEY_INVALID|API key expired/i;

function openAITypeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * A Gemini error body ({error:{code,message,status}}, possibly wrapped in a one-element
 * array, or plain text) -> OpenAI's error shape. The code says what the failure is in
 * OpenAI's words where one exists (context_length_exceeded, rate_limit_exceeded,
 * invalid_api_key); otherwise it is Gemini's status in lower case.
 */
export function geminiErrorToOpenAI(status: number, body: unknown): OpenAIErrorBody {
  const inner: unknown = Array.isArray(body) && body.length === 1 ? body[0] : body;
  const error = isRecord(inner) && isRecord(inner['error']) ? inner['error'] : {};
  const message = typeof inner === 'string' && inner !== '' ? inner : stringOr(error['message'], `Gemini upstream error (HTTP ${status})`);
  const geminiStatus = stringOr(error['status'], '');
  const details = JSON.stringify(error['details'] ?? '');
  let code: string | null = geminiStatus === '' ? null : geminiStatus.toLowerCase();
  if (geminiStatus === 'RESOURCE_EXHAUSTED' || status === 429) code = 'rate_limit_exceeded';
  else if (GEMINI_BAD_KEY.test(message) || GEMINI_BAD_KEY.test(details)) code = 'invalid_api_key';
  else if ((status === 400 || geminiStatus === 'INVALID_ARGUMENT') && GEMINI_CONTEXT_MESSAGE.test(message)) code = 'context_length_exceeded';
  return { error: { message, type: openAITypeFor(status), param: null, code } };
}
