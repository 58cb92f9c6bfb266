// Amazon Bedrock's Converse API <-> the canonical format (OpenAI Chat Completions). Pure.
// Shapes from the Bedrock Runtime API reference (Converse, ConverseStream):
//   request  {messages:[{role, content:[{text}|{image}|{toolUse}|{toolResult}]}], system:[{text}],
//             inferenceConfig:{maxTokens, temperature, topP, stopSequences}, toolConfig:{tools:[{toolSpec}], toolChoice}}
//   response {output:{message:{role, content}}, stopReason, usage:{inputTokens, outputTokens, totalTokens, cacheReadInputTokens?}}
//   stream   messageStart, contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata
//            (and exceptions: throttlingException, serviceUnavailableException, …)
import type { JsonObject } from '../../core/json.ts';
import type { FailureClass } from '../../core/types.ts';
import type { Translated } from '../errors.ts';
import { InvalidRequest, MalformedUpstream, UnservableRequest } from '../errors.ts';
import type { ChatChunk, ChatRequest, ChatResponse, ChatUsage, FinishReason, OpenAIErrorBody, ToolCall } from '../openai-chat/types.ts';
import { DroppedFields, isRecord, isUnsetOrDefault, nowSeconds, numberOr0, parseArguments, parseDataUrl, stringOr, textOf } from '../translation-helpers.ts';

export type ConverseBlock = JsonObject;
export interface ConverseMessage {
  role: 'user' | 'assistant';
  content: ConverseBlock[];
}
export interface ConverseRequest {
  messages: ConverseMessage[];
  system?: Array<{ text: string }>;
  inferenceConfig?: { maxTokens?: number; temperature?: number; topP?: number; stopSequences?: string[] };
  toolConfig?: { tools: Array<{ toolSpec: { name: string; description?: string; inputSchema: { json: JsonObject } } }>; toolChoice?: JsonObject };
}

// Fields Converse has no place for: dropped (logged) when set to anything but the default.
const DROPPABLE = [
  'n',
  'presence_penalty',
  'frequency_penalty',
  'logprobs',
  'top_logprobs',
  'seed',
  'user',
  'parallel_tool_calls',
  'store',
  'metadata',
  'service_tier',
  'logit_bias',
  'reasoning_effort',
];
const HANDLED = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'stream',
  'stream_options',
  'tools',
  'tool_choice',
  'response_format',
]);
const IMAGE_FORMATS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp' };

/** The path of a model's Converse endpoint (the model id URL-encoded: ids contain ':'). */
export function conversePath(model: string, stream: boolean): string {
  return `/model/${encodeURIComponent(model)}/${stream ? 'converse-stream' : 'converse'}`;
}

/** A canonical request -> a Converse body. Throws UnservableRequest for what Converse cannot carry. */
export function chatRequestToConverse(chat: ChatRequest): Translated<ConverseRequest> {
  const dropped = new DroppedFields();
  for (const field of DROPPABLE) if (!isUnsetOrDefault(field, chat[field])) dropped.add(field);
  for (const field of Object.keys(chat)) if (!HANDLED.has(field) && !DROPPABLE.includes(field) && chat[field] !== undefined) dropped.add(field);
  if (typeof chat.n === 'number' && chat.n > 1) throw new UnservableRequest('Bedrock Converse returns one answer (n > 1)');
  if (chat.response_format && chat.response_format.type !== 'text')
    throw new UnservableRequest(`Bedrock Converse has no ${chat.response_format.type} response format`);
  const system: Array<{ text: string }> = [];
  const messages: ConverseMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: ConverseBlock[]): void => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // Converse requires alternating roles: consecutive turns of one role are merged.
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const message of chat.messages) {
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = textOf(message.content, '\n');
        if (text !== '') system.push({ text });
        break;
      }
      case 'user':
        push('user', userBlocks(message.content));
        break;
      case 'assistant': {
        const blocks: ConverseBlock[] = [];
        const text = textOf(message.content);
        if (text !== '') blocks.push({ text });
        for (const call of message.tool_calls ?? []) {
          const input = parseArguments(call.function.arguments);
          if (!input) throw new InvalidRequest(`tool call ${call.id}: arguments are not a JSON object`);
          blocks.push({ toolUse: { toolUseId: call.id, name: call.function.name, input } });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ toolResult: { toolUseId: message.tool_call_id, content: [{ text: textOf(message.content) }], status: 'success' } }]);
        break;
    }
  }
  if (messages.length === 0) throw new InvalidRequest('messages must contain at least one user or assistant message');
  const body: ConverseRequest = { messages };
  if (system.length > 0) body.system = system;
  const inference: NonNullable<ConverseRequest['inferenceConfig']> = {};
  const maxTokens = chat.max_completion_tokens ?? chat.max_tokens;
  if (typeof maxTokens === 'number') inference.maxTokens = maxTokens;
  if (typeof chat.temperature === 'number') inference.temperature = chat.temperature;
  if (typeof chat.top_p === 'number') inference.topP = chat.top_p;
  if (chat.stop != null) inference.stopSequences = typeof chat.stop === 'string' ? [chat.stop] : chat.stop;
  if (Object.keys(inference).length > 0) body.inferenceConfig = inference;
  if (chat.tools && chat.tools.length > 0 && chat.tool_choice !== 'none') {
    const tools = chat.tools.map((tool) => ({
      toolSpec: {
        name: tool.function.name,
        ...(tool.function.description ? { description: tool.function.description } : {}),
        inputSchema: { json: tool.function.parameters ?? { type: 'object', properties: {} } },
      },
    }));
    const choice = chat.tool_choice;
    const toolChoice = choice === 'required' ? { any: {} } : typeof choice === 'object' ? { tool: { name: choice.function.name } } : undefined;
    body.toolConfig = toolChoice ? { tools, toolChoice } : { tools };
  }
  return { value: body, dropped: dropped.list() };
}

function userBlocks(content: ChatRequest['messages'][number]['content']): ConverseBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  if (!Array.isArray(content)) return [];
  return content.map((part): ConverseBlock => {
    if (isRecord(part) && part['type'] === 'text') return { text: stringOr(part['text'], '') };
    if (isRecord(part) && part['type'] === 'image_url' && isRecord(part['image_url'])) {
      const data = parseDataUrl(stringOr(part['image_url']['url'], ''));
      const format = data ? IMAGE_FORMATS[data.mimeType] : undefined;
      if (!data || !format) throw new UnservableRequest('Bedrock Converse takes images as base64 data URLs (png, jpeg, gif, webp), not links');
      return { image: { format, source: { bytes: data.data } } };
    }
    throw new UnservableRequest(`Bedrock Converse cannot carry a ${isRecord(part) ? String(part['type']) : 'non-object'} content part`);
  });
}

/** Converse stopReason -> finish_reason. Guardrail interventions and content filters are refusals. */
export function converseStopToChat(reason: unknown): FinishReason {
  switch (reason) {
    case 'tool_use':
      return 'tool_calls';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export function converseUsageToChat(usage: unknown): ChatUsage {
  const u = isRecord(usage) ? usage : {};
  const cached = numberOr0(u['cacheReadInputTokens']);
  // Bedrock's inputTokens exclude cache reads; the canonical prompt_tokens include them.
  const prompt = numberOr0(u['inputTokens']) + cached;
  const completion = numberOr0(u['outputTokens']);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    ...(cached > 0 ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
  };
}

/** A Converse answer -> a canonical answer. */
export function converseResponseToChat(body: unknown, model: string, created: number = nowSeconds()): ChatResponse {
  if (!isRecord(body) || !isRecord(body['output']) || !isRecord(body['output']['message']) || !Array.isArray(body['output']['message']['content'])) {
    throw new MalformedUpstream('a Converse answer has output.message.content');
  }
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of body['output']['message']['content']) {
    if (!isRecord(block)) continue;
    if (typeof block['text'] === 'string') text += block['text'];
    else if (isRecord(block['toolUse'])) {
      const use = block['toolUse'];
      toolCalls.push({
        id: stringOr(use['toolUseId'], ''),
        type: 'function',
        function: { name: stringOr(use['name'], ''), arguments: JSON.stringify(use['input'] ?? {}) },
      });
    }
  }
  return {
    id: `chatcmpl-bedrock-${created}`,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
        finish_reason: converseStopToChat(body['stopReason']),
        logprobs: null,
      },
    ],
    usage: converseUsageToChat(body['usage']),
  };
}

/**
 * ConverseStream events (name + JSON payload, from the binary event stream) -> canonical
 * chunks. An exception event becomes a chunk with an `error` member (a mid-stream failure).
 */
export class ConverseStreamToChat {
  readonly #model: string;
  readonly #created = nowSeconds();
  readonly #id = `chatcmpl-bedrock-${Date.now().toString(36)}`;
  /** Converse's contentBlockIndex of each tool-use block -> the canonical tool_calls index. */
  readonly #toolIndex = new Map<number, number>();
  #finish: FinishReason | undefined;
  #finished = false;

  constructor(model: string) {
    this.#model = model;
  }

  /** The messageStop and the metadata (usage) both arrived: the answer is whole. */
  get finished(): boolean {
    return this.#finished;
  }

  push(event: string, payload: JsonObject): ChatChunk[] {
    switch (event) {
      case 'messageStart':
        return [this.#chunk({ role: 'assistant', content: '' })];
      case 'contentBlockStart': {
        const start = isRecord(payload['start']) ? payload['start'] : {};
        if (!isRecord(start['toolUse'])) return [];
        const index = this.#toolIndex.size;
        this.#toolIndex.set(numberOr0(payload['contentBlockIndex']), index);
        return [
          this.#chunk({
            tool_calls: [
              {
                index,
                id: stringOr(start['toolUse']['toolUseId'], ''),
                type: 'function',
                function: { name: stringOr(start['toolUse']['name'], ''), arguments: '' },
              },
            ],
          }),
        ];
      }
      case 'contentBlockDelta': {
        const delta = isRecord(payload['delta']) ? payload['delta'] : {};
        if (typeof delta['text'] === 'string') return [this.#chunk({ content: delta['text'] })];
        if (isRecord(delta['toolUse'])) {
          const index = this.#toolIndex.get(numberOr0(payload['contentBlockIndex'])) ?? 0;
          return [this.#chunk({ tool_calls: [{ index, function: { arguments: stringOr(delta['toolUse']['input'], '') } }] })];
        }
        return [];
      }
      case 'messageStop':
        this.#finish = converseStopToChat(payload['stopReason']);
        return [this.#chunk({}, this.#finish)];
      case 'metadata':
        this.#finished = this.#finish !== undefined;
        return [
          {
            id: this.#id,
            object: 'chat.completion.chunk',
            created: this.#created,
            model: this.#model,
            choices: [],
            usage: converseUsageToChat(payload['usage']),
          },
        ];
      case 'contentBlockStop':
        return [];
      default: {
        // An exception event (`:message-type: exception`): its name is the error's type.
        const message = stringOr(payload['message'], `Bedrock stream exception ${event}`);
        return [
          {
            id: this.#id,
            object: 'chat.completion.chunk',
            created: this.#created,
            model: this.#model,
            choices: [],
            error: { message, type: event, code: exceptionCode(event) },
          },
        ];
      }
    }
  }

  #chunk(delta: ChatChunk['choices'][number]['delta'], finish: FinishReason | null = null): ChatChunk {
    return { id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model, choices: [{ index: 0, delta, finish_reason: finish }] };
  }
}

// Bedrock exception names -> codes the generic classifier reads (core/failure.ts).
function exceptionCode(name: string): string {
  const lower = name.toLowerCase();
  if (lower.startsWith('throttling') || lower.startsWith('modelnotready')) return 'rate_limit_exceeded';
  if (lower.startsWith('validation')) return 'invalid_request';
  return 'server_error';
}

/** A Bedrock error (`{message}`, its type in x-amzn-ErrorType or `__type`) -> OpenAI's shape. */
export function bedrockErrorToOpenAI(status: number, body: unknown, errorType?: string): OpenAIErrorBody {
  const record = isRecord(body) ? body : {};
  const message = stringOr(
    record['message'] ?? record['Message'],
    typeof body === 'string' && body.trim() !== '' ? body.trim().slice(0, 1000) : `Bedrock error (HTTP ${status})`,
  );
  const type = errorTypeName(errorType ?? stringOr(record['__type'], ''));
  const fallback = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return {
    error: {
      message,
      type: type || fallback,
      param: null,
      code: type === 'ValidationException' && /too long|too many|context/i.test(message) ? 'context_length_exceeded' : type || null,
    },
  };
}

/**
 * The Bedrock errors whose status alone says the wrong thing: 424 ModelErrorException (the
 * model failed while answering) is the target's fault, not the request's; 400
 * ServiceQuotaExceededException is a quota, like a 429. Everything else: the generic rules.
 */
export function bedrockFailureClass(errorType: string | undefined): FailureClass | undefined {
  const type = errorTypeName(errorType ?? '');
  if (type === 'ModelErrorException' || type === 'ModelStreamErrorException') return 'serverError';
  if (type === 'ServiceQuotaExceededException') return 'rateLimited';
  return undefined;
}

/** The bare error name of `x-amzn-ErrorType` (`Name:http://…`) or `__type` (`namespace#Name`). */
export function errorTypeName(raw: string): string {
  return (raw.split(':')[0] ?? '').split('#').pop() ?? '';
}
