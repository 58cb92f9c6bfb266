// Amazon Bedrock (api: bedrock): the Converse and ConverseStream APIs, SigV4-signed. Upstream only.
import type { WireFormat } from '../codec.ts';
import { bedrockUpstream } from './upstream.ts';

export const bedrock = {
  api: 'bedrock',
  description: 'Amazon Bedrock Converse / ConverseStream ({baseURL}/model/{model}/converse), SigV4-signed with auth.aws (a key pair or IRSA)',
  upstream: bedrockUpstream,
} as const satisfies WireFormat<'bedrock'>;
