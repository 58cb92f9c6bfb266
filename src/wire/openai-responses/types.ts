// The OpenAI Responses API (POST /v1/responses), as far as the proxy reads and writes it.
// Field names and event types follow the official `openai` SDK's types
// (resources/responses/responses.d.ts). Bodies come from the wire, so they are read
// defensively as JSON objects; these types describe what the proxy writes.
import type { JsonObject } from '../openai-chat/types.ts';

export type { JsonObject };

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs?: unknown[];
}

export interface RefusalContentPart {
  type: 'refusal';
  refusal: string;
}

export interface OutputMessageItem {
  id: string;
  type: 'message';
  role: 'assistant';
  status: ItemStatus;
  content: Array<OutputTextPart | RefusalContentPart>;
}

export interface FunctionCallItem {
  id: string;
  type: 'function_call';
  status: ItemStatus;
  call_id: string;
  name: string;
  arguments: string;
}

export type OutputItem = OutputMessageItem | FunctionCallItem;

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export type ResponseStatus = 'completed' | 'failed' | 'in_progress' | 'incomplete';

/** The `response` object (non-streaming answer, and the payload of the lifecycle events). */
export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  model: string;
  output: OutputItem[];
  usage: ResponsesUsage | null;
  [echoed: string]: unknown;
}

/** The request fields a response object repeats (the real API echoes them, with its defaults). */
export interface RequestEcho {
  instructions: unknown;
  max_output_tokens: unknown;
  metadata: unknown;
  parallel_tool_calls: unknown;
  temperature: unknown;
  text: unknown;
  tool_choice: unknown;
  tools: unknown;
  top_p: unknown;
  user?: unknown;
}
