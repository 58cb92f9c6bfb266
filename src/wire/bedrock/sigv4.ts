// SigV4 for Bedrock requests with the AWS SDK's own signer (@smithy/signature-v4 over
// @aws-crypto/sha256-js), imported on first use so chains without Bedrock never load it.
import type { AwsCredentials } from './aws-credentials.ts';

type Signer = import('@smithy/signature-v4').SignatureV4;
// A signer holds its credentials: one per credentials object (static keys live as long as
// their config snapshot, a session until it is renewed) and region.
const signers = new WeakMap<AwsCredentials, Map<string, Promise<Signer>>>();

function signerFor(region: string, credentials: AwsCredentials): Promise<Signer> {
  let byRegion = signers.get(credentials);
  if (!byRegion) signers.set(credentials, (byRegion = new Map<string, Promise<Signer>>()));
  let signer = byRegion.get(region);
  if (!signer) {
    signer = Promise.all([import('@smithy/signature-v4'), import('@aws-crypto/sha256-js')]).then(
      ([{ SignatureV4 }, { Sha256 }]) => new SignatureV4({ service: 'bedrock', region, credentials, sha256: Sha256 }),
    );
    byRegion.set(region, signer);
  }
  return signer;
}

/** The headers that sign a POST of `body` to `url` (authorization, x-amz-date, x-amz-security-token, host). */
export async function sigV4Headers(
  url: string,
  headers: Record<string, string>,
  body: string,
  region: string,
  credentials: AwsCredentials,
  signingDate?: Date,
): Promise<Record<string, string>> {
  const target = new URL(url);
  const query: Record<string, string> = {};
  for (const [name, value] of target.searchParams) query[name] = value;
  const signer = await signerFor(region, credentials);
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port ? { port: Number(target.port) } : {}),
      // The path as it goes on the wire (already percent-encoded); the signer encodes it once more, as SigV4 requires for every service but S3.
      path: target.pathname,
      query,
      headers: { ...headers, host: target.host },
      body,
    },
    signingDate ? { signingDate } : {},
  );
  const out: Record<string, string> = {};
  for (const name of ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256', 'host']) {
    const value = signed.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
