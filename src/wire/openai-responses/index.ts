// The OpenAI Responses API, on both sides: callers on POST /v1/responses, and chains whose
// provider says `api: openai-responses`.
import type { WireFormat } from '../codec.ts';
import { responsesCaller } from './caller.ts';
import { responsesUpstream } from './upstream.ts';

export const openAIResponses = {
  api: 'openai-responses',
  description: 'OpenAI Responses API (POST /v1/responses)',
  caller: responsesCaller,
  upstream: responsesUpstream,
} as const satisfies WireFormat<'openai-responses'>;
