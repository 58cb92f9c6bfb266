// Azure OpenAI (api: azure-openai): the OpenAI Chat Completions format behind Azure's own
// addressing and key header. The provider's baseURL is the resource endpoint
// (https://<resource>.openai.azure.com) and a step's model is the deployment name:
//   {endpoint}/openai/deployments/{deployment}/chat/completions?api-version={apiVersion}
// A baseURL that already ends in /openai/v1 is the newer v1 API (no api-version, the
// deployment goes in the body's `model`): {endpoint}/openai/v1/chat/completions.
// The key goes in `api-key` (never `Authorization`), or, with auth.azureWorkloadIdentity, an
// Entra token (AKS workload identity) in `Authorization: Bearer`. Answers, streams and errors are OpenAI's;
// Azure's content-filter 400 (`code: content_filter`) and its `retry-after-ms` are read by
// the generic rules (core/failure.ts, core/retry-after.ts).
import type { Target } from '../../core/types.ts';
import { canonicalOf } from '../canonical.ts';
import type { CallerRequest, PreparedRequest, UpstreamCodec } from '../codec.ts';
import { entraAccessToken } from './entra-token.ts';
import { buildOpenAIRequest, endpointOf, openAIUpstream, type Endpoint } from '../openai-chat/upstream.ts';

/** The GA data-plane version used when the provider names none (its `apiVersion`). */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

const V1_SUFFIX = /\/openai\/v1$/;

/** The URL of an Azure OpenAI endpoint for a deployment (pure). */
export function azureURL(baseURL: string, deployment: string, endpoint: Endpoint, apiVersion: string | undefined): string {
  const path = endpoint === 'chat' ? '/chat/completions' : `/${endpoint}`;
  if (V1_SUFFIX.test(baseURL)) return `${baseURL}${path}`;
  const version = encodeURIComponent(apiVersion ?? DEFAULT_AZURE_API_VERSION);
  return `${baseURL}/openai/deployments/${encodeURIComponent(deployment)}${path}?api-version=${version}`;
}

export const azureOpenAIUpstream: UpstreamCodec = {
  ...openAIUpstream,
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    const passthrough = call.format === 'openai';
    const endpoint = passthrough ? endpointOf(call.operation) : 'chat';
    const chat = passthrough ? undefined : canonicalOf(call);
    const built = buildOpenAIRequest(endpoint, chat ? chat.value : call.body, step, call.stream);
    // buildOpenAIRequest puts the key in Authorization; Azure reads it from api-key.
    const { authorization: _bearer, ...headers } = built.headers;
    if (step.provider.apiKey) headers['api-key'] = step.provider.apiKey;
    return {
      url: azureURL(step.provider.baseURL, step.model, endpoint, step.provider.apiVersion),
      headers,
      body: built.body,
      dropped: chat ? chat.dropped : [],
      passthrough,
    };
  },
  // With workload identity (auth.azureWorkloadIdentity) an Entra bearer token replaces the api-key.
  async authorize(_request, step): Promise<Record<string, string>> {
    const source = step.provider.azure;
    if (!source) return {};
    return { authorization: `Bearer ${await entraAccessToken(source)}` };
  },
  secretHeaders: ['api-key', 'authorization'],
};
