// The canonical internal format: the subset of OpenAI Chat Completions that the
// translators map (request, response, stream chunk). Bodies come from the wire, so every
// object tolerates extra fields; the translators read them defensively at run time.

export type { JsonObject } from '../../core/json.ts';
import type { JsonObject } from '../../core/json.ts';

export interface TextPart {
  type: 'text';
  text: string;
  [key: string]: unknown;
}

export interface ImageUrlPart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high'; [key: string]: unknown };
  [key: string]: unknown;
}

export interface InputAudioPart {
  type: 'input_audio';
  input_audio: { data: string; format: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface FilePart {
  type: 'file';
  file: { file_data?: string; file_id?: string; filename?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface RefusalPart {
  type: 'refusal';
  refusal: string;
  [key: string]: unknown;
}

export type ContentPart = TextPart | ImageUrlPart | InputAudioPart | FilePart;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface SystemMessage {
  role: 'system';
  content: string | TextPart[];
  name?: string;
  [key: string]: unknown;
}

export interface DeveloperMessage {
  role: 'developer';
  content: string | TextPart[];
  name?: string;
  [key: string]: unknown;
}

export interface UserMessage {
  role: 'user';
  content: string | ContentPart[];
  name?: string;
  [key: string]: unknown;
}

export interface AssistantMessage {
  role: 'assistant';
  content?: string | Array<TextPart | RefusalPart> | null;
  refusal?: string | null;
  tool_calls?: ToolCall[];
  name?: string;
  [key: string]: unknown;
}

export interface ToolMessage {
  role: 'tool';
  content: string | TextPart[];
  tool_call_id: string;
  [key: string]: unknown;
}

export type ChatMessage = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage;

export interface ToolDefinition {
  type: 'function';
  function: {
    name: string;
    description?: string;
    parameters?: JsonObject;
    strict?: boolean | null;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string; [key: string]: unknown } };

export type ResponseFormat =
  | { type: 'text'; [key: string]: unknown }
  | { type: 'json_object'; [key: string]: unknown }
  | {
      type: 'json_schema';
      json_schema: { name: string; description?: string; schema?: JsonObject; strict?: boolean | null; [key: string]: unknown };
      [key: string]: unknown;
    };

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean; [key: string]: unknown } | null;
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: ResponseFormat;
  user?: string;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; [key: string]: unknown };
  completion_tokens_details?: { reasoning_tokens?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ChatResponseMessage {
  role: 'assistant';
  content: string | null;
  refusal?: string | null;
  tool_calls?: ToolCall[];
  [key: string]: unknown;
}

export interface ChatChoice {
  index: number;
  message: ChatResponseMessage;
  finish_reason: FinishReason | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

export interface ChatResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatChoice[];
  usage?: ChatUsage;
  [key: string]: unknown;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ChunkDelta {
  role?: 'assistant';
  content?: string | null;
  refusal?: string | null;
  tool_calls?: ToolCallDelta[];
  [key: string]: unknown;
}

export interface ChunkChoice {
  index: number;
  delta: ChunkDelta;
  finish_reason: FinishReason | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

/** An error carried by a stream event; its presence makes the proxy treat the event as a failure. */
export interface ChunkError {
  message: string;
  type: string;
  param?: string | null;
  code: string | null;
  [key: string]: unknown;
}

export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: ChatUsage | null;
  error?: ChunkError;
  [key: string]: unknown;
}

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null; [key: string]: unknown };
}
