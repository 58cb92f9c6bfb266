// The AWS credentials a Bedrock attempt signs with: the provider's static key pair, or IRSA
// session credentials from STS AssumeRoleWithWebIdentity (an unsigned POST of the pod's
// projected service-account token), cached until shortly before they expire. The web identity
// token is reported to the redactor the moment it is read, every session credential the
// moment it is received.
import { readFile } from 'node:fs/promises';
import { rememberDerivedSecrets } from '../../core/credentials.ts';
import type { AwsCredentialSource } from '../../core/types.ts';
import { CredentialUnavailable } from '../errors.ts';
import { ExpiringCache, type Expiring } from '../expiring-cache.ts';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const SESSION_SECONDS = 3600;
const EXCHANGE_TIMEOUT_MS = 10_000;

// Keyed by role, token file and STS endpoint: one session per identity, shared by every chain that uses it.
const sessions = new ExpiringCache<AwsCredentials>();

/** The credentials to sign an attempt with; session credentials are fetched once and reused until near expiry. */
export async function awsCredentials(source: AwsCredentialSource, _signal: AbortSignal, now: () => number = Date.now): Promise<AwsCredentials> {
  const c = source.credentials;
  // The resolved source itself (the same object for the config snapshot's life: the signer cache keys on it).
  if (c.kind === 'static') return c;
  // The exchange is shared by every attempt waiting for it, so it runs under its own time limit, not one attempt's.
  return sessions.get(JSON.stringify([c.roleArn, c.tokenFile, c.stsURL]), () => assumeRoleWithWebIdentity(c, AbortSignal.timeout(EXCHANGE_TIMEOUT_MS), now));
}

/** Forgets every cached session (tests). */
export function clearAwsSessions(): void {
  sessions.clear();
}

async function assumeRoleWithWebIdentity(
  c: Extract<AwsCredentialSource['credentials'], { kind: 'webIdentity' }>,
  signal: AbortSignal,
  now: () => number,
): Promise<Expiring<AwsCredentials>> {
  let token: string;
  try {
    // Read on every exchange: the kubelet rotates the projected token.
    token = (await readFile(c.tokenFile, 'utf8')).trim();
  } catch {
    throw new CredentialUnavailable(`the web identity token file ${c.tokenFile} cannot be read`);
  }
  // The pod's own projected token: a secret from the moment it is read (STS may quote what it was sent).
  rememberDerivedSecrets([token]);
  const form = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: c.roleArn,
    RoleSessionName: `llm-fallback-${now()}`,
    WebIdentityToken: token,
    DurationSeconds: String(SESSION_SECONDS),
  });
  let response: Response;
  try {
    response = await fetch(`${c.stsURL}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', accept: 'application/xml' },
      body: form.toString(),
      signal,
    });
  } catch (error) {
    throw new CredentialUnavailable(`STS AssumeRoleWithWebIdentity at ${c.stsURL} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  if (!response.ok) {
    const code = tag(text, 'Code') ?? `HTTP ${response.status}`;
    throw new CredentialUnavailable(`STS AssumeRoleWithWebIdentity refused: ${code}: ${tag(text, 'Message') ?? ''}`.trim());
  }
  const accessKeyId = tag(text, 'AccessKeyId');
  const secretAccessKey = tag(text, 'SecretAccessKey');
  const sessionToken = tag(text, 'SessionToken');
  const expiration = Date.parse(tag(text, 'Expiration') ?? '');
  if (!accessKeyId || !secretAccessKey || !sessionToken || Number.isNaN(expiration))
    throw new CredentialUnavailable('STS AssumeRoleWithWebIdentity answered without complete credentials');
  rememberDerivedSecrets([accessKeyId, secretAccessKey, sessionToken]);
  return { value: { accessKeyId, secretAccessKey, sessionToken }, expiresAt: expiration };
}

// STS answers in XML; the four fields read here are leaf elements with text only.
function tag(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return match?.[1]?.trim();
}
