// Responses API answers <-> the canonical answer (a Chat completion). Pure.
//   caller side:   a Chat completion -> the `response` object (output items, usage, status,
//                  incomplete_details, and the request fields the real API repeats);
//   upstream side: a `response` object -> a Chat completion.
import type { ChatResponse, ChatUsage, FinishReason, JsonObject, ToolCall } from '../openai-chat/types.ts';
import { MalformedUpstream } from '../errors.ts';
import { isRecord, numberOr0, nowSeconds, shownInMessage } from '../translation-helpers.ts';
import type { FunctionCallItem, OutputItem, OutputMessageItem, ResponseObject, ResponsesUsage } from './types.ts';

/** Ids the proxy makes for what it writes: the real API's prefixes, so callers that look at them are not surprised. */
export function itemId(prefix: 'resp' | 'msg' | 'fc', seed: string, index = 0): string {
  const clean = seed.replace(/[^A-Za-z0-9]/g, '').slice(-40) || 'llmfallback';
  return `${prefix}_${clean}${index > 0 ? `_${index}` : ''}`;
}

/**
 * The request fields a response object repeats, with the API's defaults for those not sent.
 * `store` is always false: the proxy keeps no responses (see docs: Responses API).
 */
export function echoOf(request: JsonObject): JsonObject {
  const text = isRecord(request['text']) ? request['text'] : {};
  return {
    background: false,
    instructions: request['instructions'] ?? null,
    max_output_tokens: request['max_output_tokens'] ?? null,
    metadata: isRecord(request['metadata']) ? request['metadata'] : {},
    parallel_tool_calls: request['parallel_tool_calls'] ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: false,
    temperature: request['temperature'] ?? 1,
    text: { format: { type: 'text' }, verbosity: 'medium', ...text },
    tool_choice: request['tool_choice'] ?? 'auto',
    tools: Array.isArray(request['tools']) ? request['tools'] : [],
    top_p: request['top_p'] ?? 1,
    truncation: 'disabled',
    ...(typeof request['user'] === 'string' ? { user: request['user'] } : {}),
  };
}

export function usageToResponses(usage: unknown): ResponsesUsage | null {
  if (!isRecord(usage)) return null;
  const prompt = isRecord(usage['prompt_tokens_details']) ? usage['prompt_tokens_details'] : {};
  const completion = isRecord(usage['completion_tokens_details']) ? usage['completion_tokens_details'] : {};
  const input = numberOr0(usage['prompt_tokens']);
  const output = numberOr0(usage['completion_tokens']);
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: numberOr0(prompt['cached_tokens']) },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: numberOr0(completion['reasoning_tokens']) },
    total_tokens: typeof usage['total_tokens'] === 'number' ? usage['total_tokens'] : input + output,
  };
}

/** How a finish reason ends a response. */
export function statusOf(finish: unknown): Pick<ResponseObject, 'status' | 'incomplete_details'> {
  if (finish === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

/** A Chat completion -> the Responses API `response` object, for the caller whose request is `request`. */
export function chatResponseToResponses(chat: ChatResponse, request: JsonObject): ResponseObject {
  const choice = Array.isArray(chat.choices) ? chat.choices[0] : undefined;
  if (!choice || !isRecord(choice.message)) throw new MalformedUpstream('the answer has no choices[0].message');
  const seed = typeof chat.id === 'string' ? chat.id : String(chat.created);
  const { status, incomplete_details } = statusOf(choice.finish_reason);
  const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
  const output: OutputItem[] = [];
  const message = choice.message;
  const content: OutputMessageItem['content'] = [];
  if (typeof message.content === 'string' && message.content !== '')
    content.push({ type: 'output_text', text: message.content, annotations: [], logprobs: [] });
  if (typeof message.refusal === 'string' && message.refusal !== '') content.push({ type: 'refusal', refusal: message.refusal });
  if (content.length > 0) output.push({ id: itemId('msg', seed), type: 'message', role: 'assistant', status: itemStatus, content });
  for (const [index, call] of (message.tool_calls ?? []).entries()) output.push(functionCallItem(call, index));
  return {
    id: itemId('resp', seed),
    object: 'response',
    created_at: typeof chat.created === 'number' ? chat.created : nowSeconds(),
    status,
    error: null,
    incomplete_details,
    model: chat.model,
    output,
    usage: usageToResponses(chat.usage),
    ...echoOf(request),
  };
}

function functionCallItem(call: ToolCall, index: number): FunctionCallItem {
  if (!isRecord(call) || !isRecord(call.function) || typeof call.function.name !== 'string') throw new MalformedUpstream('a tool call without a function name');
  return {
    id: itemId('fc', call.id, index),
    type: 'function_call',
    status: 'completed',
    call_id: call.id,
    name: call.function.name,
    arguments: typeof call.function.arguments === 'string' ? call.function.arguments : '',
  };
}

// ---------------------------------------------------------------------------------------
// Upstream side

export function usageToChat(usage: unknown): ChatUsage | undefined {
  if (!isRecord(usage)) return undefined;
  const input = isRecord(usage['input_tokens_details']) ? usage['input_tokens_details'] : {};
  const output = isRecord(usage['output_tokens_details']) ? usage['output_tokens_details'] : {};
  const prompt = numberOr0(usage['input_tokens']);
  const completion = numberOr0(usage['output_tokens']);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: typeof usage['total_tokens'] === 'number' ? usage['total_tokens'] : prompt + completion,
    prompt_tokens_details: { cached_tokens: numberOr0(input['cached_tokens']) },
    completion_tokens_details: { reasoning_tokens: numberOr0(output['reasoning_tokens']) },
  };
}

/** The finish reason a finished response has. */
export function finishOf(response: JsonObject, calledTools: boolean): FinishReason {
  if (response['status'] === 'incomplete') {
    const reason = isRecord(response['incomplete_details']) ? response['incomplete_details']['reason'] : undefined;
    return reason === 'content_filter' ? 'content_filter' : 'length';
  }
  return calledTools ? 'tool_calls' : 'stop';
}

/** A Responses API `response` object -> a Chat completion. */
export function responsesResponseToChat(body: JsonObject, model: string): ChatResponse {
  if (body['object'] !== 'response' || !Array.isArray(body['output']))
    throw new MalformedUpstream('the answer is not a response object (object: "response" with an output array)');
  if (body['status'] === 'failed') {
    const error = isRecord(body['error']) ? body['error'] : {};
    throw new MalformedUpstream(`the response failed: ${shownInMessage(error['code'] ?? '')} ${shownInMessage(error['message'] ?? '')}`.trim());
  }
  /** null when the response has no text part at all (only tool calls, a refusal, or nothing). */
  let text: string | null = null;
  let refusal = '';
  const calls: ToolCall[] = [];
  for (const item of body['output']) {
    if (!isRecord(item)) continue;
    if (item['type'] === 'message' && Array.isArray(item['content'])) {
      for (const part of item['content']) {
        if (!isRecord(part)) continue;
        if (part['type'] === 'output_text' && typeof part['text'] === 'string') text = (text ?? '') + part['text'];
        else if (part['type'] === 'refusal' && typeof part['refusal'] === 'string') refusal += part['refusal'];
      }
    } else if (item['type'] === 'function_call') {
      if (typeof item['call_id'] !== 'string' || typeof item['name'] !== 'string') throw new MalformedUpstream('a function_call item without call_id or name');
      calls.push({
        id: item['call_id'],
        type: 'function',
        function: { name: item['name'], arguments: typeof item['arguments'] === 'string' ? item['arguments'] : '' },
      });
    }
    // Reasoning and built-in tool items carry nothing a Chat answer can hold.
  }
  const usage = usageToChat(body['usage']);
  return {
    id: typeof body['id'] === 'string' ? body['id'] : itemId('resp', String(nowSeconds())),
    object: 'chat.completion',
    created: typeof body['created_at'] === 'number' ? Math.floor(body['created_at']) : nowSeconds(),
    model: typeof body['model'] === 'string' && body['model'] !== '' ? body['model'] : model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, ...(refusal !== '' ? { refusal } : {}), ...(calls.length > 0 ? { tool_calls: calls } : {}) },
        finish_reason: finishOf(body, calls.length > 0),
        logprobs: null,
      },
    ],
    ...(usage ? { usage } : {}),
  };
}
