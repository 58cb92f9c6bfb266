// Vertex AI (api: vertex): Gemini and Anthropic models on Google Cloud, with an OAuth2 access
// token (auth.gcpServiceAccount or auth.gcpWorkloadIdentity). The provider's baseURL names the
// project and location:
//   https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}
// A step's model picks the publisher: `claude-…` models are Anthropic's, served by
//   {baseURL}/publishers/anthropic/models/{model}:rawPredict | :streamRawPredict
// with the Messages body minus `model`, plus anthropic_version: vertex-2023-10-16; every other
// model is Google's, served by
//   {baseURL}/publishers/google/models/{model}:generateContent | :streamGenerateContent?alt=sse
// with Gemini's body. The gemini and anthropic units' translators do the rest.
import { isJsonObject, type JsonObject } from '../../core/json.ts';
import type { Target } from '../../core/types.ts';
import type { CallerRequest, PreparedRequest, UpstreamCodec } from '../codec.ts';
import { CredentialUnavailable } from '../errors.ts';
import { anthropicUpstream } from '../anthropic/upstream.ts';
import { geminiUpstream } from '../gemini/upstream.ts';
import { googleAccessToken } from './google-token.ts';

export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

/** Whether a Vertex model is one of Anthropic's (the rawPredict endpoints). */
export function isAnthropicModel(model: string): boolean {
  return /^claude-/.test(model);
}

const publisherOf = (step: Target): UpstreamCodec => (isAnthropicModel(step.model) ? anthropicUpstream : geminiUpstream);

export const vertexUpstream: UpstreamCodec = {
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    const model = encodeURIComponent(step.model);
    if (isAnthropicModel(step.model)) {
      const built = anthropicUpstream.prepare(call, step);
      const { model: _model, ...body } = JSON.parse(built.body) as JsonObject;
      // Vertex takes the version in the body, and the model from the path only.
      const { 'anthropic-version': _version, 'x-api-key': _key, ...headers } = built.headers;
      return {
        ...built,
        url: `${step.provider.baseURL}/publishers/anthropic/models/${model}:${call.stream ? 'streamRawPredict' : 'rawPredict'}`,
        headers,
        body: JSON.stringify({ ...body, anthropic_version: VERTEX_ANTHROPIC_VERSION }),
      };
    }
    const built = geminiUpstream.prepare(call, step);
    const { 'x-goog-api-key': _key, ...headers } = built.headers;
    return {
      ...built,
      url: `${step.provider.baseURL}/publishers/google/models/${model}:${call.stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
      headers,
    };
  },
  async authorize(_request, step, signal) {
    const source = step.provider.gcp;
    if (!source) throw new CredentialUnavailable('api: vertex needs auth.gcpServiceAccount or auth.gcpWorkloadIdentity');
    return { authorization: `Bearer ${await googleAccessToken(source, signal)}` };
  },
  toCanonical: (body, step) => publisherOf(step).toCanonical(body, step),
  streamFraming: 'sse',
  streamDecoder: (step) => publisherOf(step).streamDecoder(step),
  // Anthropic's errors say {type: "error", error: {type, message}}; Google's {error: {code, status, message}}.
  errorToCanonical: (status, body) => (isJsonObject(body) && body['type'] === 'error' ? anthropicUpstream : geminiUpstream).errorToCanonical(status, body),
  // Callers' bodies are capped by their own format's rules; a Vertex body is always built here.
  capOutput: (body) => body,
  secretHeaders: ['authorization'],
  // Gemini does not continue a trailing assistant message; Claude on Vertex does: `prefill: supported` on the provider says so.
  prefillByDefault: false,
};
