// Azure OpenAI deployments (api: azure-openai): OpenAI's format at Azure's addresses, with
// Azure's api-key header. Upstream only: callers speak OpenAI's format to the proxy.
import type { WireFormat } from '../codec.ts';
import { azureOpenAIUpstream } from './upstream.ts';

export const azureOpenAI = {
  api: 'azure-openai',
  description:
    'Azure OpenAI deployments ({endpoint}/openai/deployments/{model}/chat/completions?api-version=…, or an {endpoint}/openai/v1 baseURL), key in api-key',
  upstream: azureOpenAIUpstream,
} as const satisfies WireFormat<'azure-openai'>;
