// OpenAI Chat Completions (and the legacy completions and embeddings endpoints): the
// canonical format, spoken by callers and by most upstreams (api: openai).
import type { WireFormat } from '../codec.ts';
import { openAIChatCaller } from './caller.ts';
import { openAIUpstream } from './upstream.ts';

export const openAIChat = {
  api: 'openai',
  description: 'OpenAI Chat Completions and every OpenAI-compatible API (DeepSeek, GLM, Kimi, Qwen, Mistral, vLLM…)',
  caller: openAIChatCaller,
  upstream: openAIUpstream,
} as const satisfies WireFormat<'openai'>;
