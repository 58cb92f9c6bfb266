// Amazon Bedrock's Converse API (api: bedrock): POST {baseURL}/model/{modelId}/converse, or
// /converse-stream for streams (answered as a binary application/vnd.amazon.eventstream),
// SigV4-signed for service `bedrock` in the provider's auth.aws.region. The baseURL is the
// runtime endpoint, https://bedrock-runtime.{region}.amazonaws.com. No caller speaks
// Converse, so every request is translated from the canonical one.
import { isJsonObject, parseJson } from '../../core/json.ts';
import type { Target } from '../../core/types.ts';
import { canonicalOf } from '../canonical.ts';
import type { CallerRequest, Decoded, PreparedRequest, StreamDecoder, UpstreamCodec } from '../codec.ts';
import { CredentialUnavailable } from '../errors.ts';
import { awsCredentials } from './aws-credentials.ts';
import { sigV4Headers } from './sigv4.ts';
import { ConverseStreamToChat, bedrockErrorToOpenAI, bedrockFailureClass, chatRequestToConverse, conversePath, converseResponseToChat } from './translate.ts';

export const bedrockUpstream: UpstreamCodec = {
  prepare(call: CallerRequest, step: Target): PreparedRequest {
    const chat = canonicalOf(call);
    const translated = chatRequestToConverse({ ...chat.value, model: step.model });
    return {
      url: `${step.provider.baseURL}${conversePath(step.model, call.stream)}`,
      headers: {
        ...step.provider.headers,
        'content-type': 'application/json',
        accept: call.stream ? 'application/vnd.amazon.eventstream' : 'application/json',
      },
      body: JSON.stringify(translated.value),
      dropped: [...chat.dropped, ...translated.dropped],
      passthrough: false,
    };
  },
  async authorize(request, step, signal) {
    const source = step.provider.aws;
    if (!source) throw new CredentialUnavailable('api: bedrock needs auth.aws (a key pair or webIdentity)');
    const credentials = await awsCredentials(source, signal);
    return sigV4Headers(request.url, request.headers, request.body, source.region, credentials);
  },
  toCanonical: (body, step) => converseResponseToChat(body, step.model),
  streamFraming: 'aws-eventstream',
  streamDecoder: (step) => new ConverseStreamDecoder(step.model),
  errorToCanonical: (status, body) => bedrockErrorToOpenAI(status, body),
  classifyError: (_status, _body, headers) => {
    const type = headers['x-amzn-errortype'];
    return bedrockFailureClass(Array.isArray(type) ? type[0] : type);
  },
  errorWithHeaders: (status, body, headers) => {
    const type = headers['x-amzn-errortype'];
    return bedrockErrorToOpenAI(status, body, Array.isArray(type) ? type[0] : type);
  },
  // No caller speaks Converse: its bodies are always built from the (already capped) canonical request.
  capOutput: (body) => body,
  // The SigV4 authorization and the session token (x-amz-security-token) authorise a request.
  secretHeaders: ['authorization', 'x-amz-security-token'],
  // Claude on Bedrock continues a trailing assistant message, other Bedrock models may not: opt in per provider (prefill: supported).
  prefillByDefault: false,
};

class ConverseStreamDecoder implements StreamDecoder {
  readonly #translator: ConverseStreamToChat;

  constructor(model: string) {
    this.#translator = new ConverseStreamToChat(model);
  }

  get finished(): boolean {
    return this.#translator.finished;
  }

  decode(message: { event?: string | undefined; data: string }): Decoded {
    const payload = parseJson(message.data);
    if (!isJsonObject(payload) || message.event === undefined) return { kind: 'malformed' };
    return { kind: 'piece', piece: { chunks: this.#translator.push(message.event, payload), raw: { event: message.event, data: message.data } } };
  }
}
