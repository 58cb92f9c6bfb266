// Anthropic's Messages API, for callers (/v1/messages) and upstreams (api: anthropic).
import type { WireFormat } from '../codec.ts';
import { anthropicCaller } from './caller.ts';
import { anthropicUpstream } from './upstream.ts';

export const anthropic = {
  api: 'anthropic',
  description: "Anthropic's Messages API",
  caller: anthropicCaller,
  upstream: anthropicUpstream,
} as const satisfies WireFormat<'anthropic'>;
