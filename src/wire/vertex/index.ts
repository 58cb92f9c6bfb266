// Google Vertex AI (api: vertex): Gemini (generateContent) and Claude (rawPredict) models with an OAuth2 token. Upstream only.
import type { WireFormat } from '../codec.ts';
import { vertexUpstream } from './upstream.ts';

export const vertex = {
  api: 'vertex',
  description:
    'Google Vertex AI: Gemini models (generateContent) and Anthropic models (rawPredict) under {baseURL} = …/v1/projects/{project}/locations/{location}, with an OAuth2 token from auth.gcpServiceAccount or auth.gcpWorkloadIdentity',
  upstream: vertexUpstream,
} as const satisfies WireFormat<'vertex'>;
