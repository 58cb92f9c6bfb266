// The AWS credentials a Bedrock attempt signs with: the provider's static key pair, or IRSA
// session credentials from STS AssumeRoleWithWebIdentity (an unsigned POST of the pod's
// projected service-account token), cached until shortly before they expire. Every session
// credential is reported to the redactor the moment it is received.
import { readFile } from 'node:fs/promises';
import { rememberDerivedSecrets } from '../../core/credentials.ts';
import type { AwsCredentialSource } from '../../core/types.ts';
import { CredentialUnavailable } from '../errors.ts';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Session credentials are renewed this long before they expire (an attempt in flight must not outlive them). */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
const SESSION_SECONDS = 3600;

interface Cached { credentials: AwsCredentials; expiresAt: number }
// Keyed by role, token file and STS endpoint: one session per identity, shared by every chain that uses it.
const sessions = new Map<string, Promise<Cached>>();

/** The credentials to sign an attempt with; session credentials are fetched once and reused until near expiry. */
export async function awsCredentials(source: AwsCredentialSource, signal: AbortSignal, now: () => number = Date.now): Promise<AwsCredentials> {
  const c = source.credentials;
  // The resolved source itself (the same object for the config snapshot's life: the signer cache keys on it).
  if (c.kind === 'static') return c;
  const key = JSON.stringify([c.roleArn, c.tokenFile, c.stsURL]);
  const cached = sessions.get(key);
  if (cached) {
    const session = await cached.catch(() => undefined);
    if (session && session.expiresAt - REFRESH_BEFORE_EXPIRY_MS > now()) return session.credentials;
    if (sessions.get(key) === cached) sessions.delete(key);
  }
  let pending = sessions.get(key);
  if (!pending) {
    // One exchange at a time per identity; its failure is not cached (the next attempt tries again).
    pending = assumeRoleWithWebIdentity(c, signal, now);
    sessions.set(key, pending);
    pending.catch(() => sessions.get(key) === pending && sessions.delete(key));
  }
  return (await pending).credentials;
}

/** Forgets every cached session (tests). */
export function clearAwsSessions(): void {
  sessions.clear();
}

async function assumeRoleWithWebIdentity(c: Extract<AwsCredentialSource['credentials'], { kind: 'webIdentity' }>, signal: AbortSignal, now: () => number): Promise<Cached> {
  let token: string;
  try {
    // Read on every exchange: the kubelet rotates the projected token.
    token = (await readFile(c.tokenFile, 'utf8')).trim();
  } catch {
    throw new CredentialUnavailable(`the web identity token file ${c.tokenFile} cannot be read`);
  }
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
    response = await fetch(`${c.stsURL}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', accept: 'application/xml' }, body: form.toString(), signal });
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
  if (!accessKeyId || !secretAccessKey || !sessionToken || Number.isNaN(expiration)) throw new CredentialUnavailable('STS AssumeRoleWithWebIdentity answered without complete credentials');
  rememberDerivedSecrets([accessKeyId, secretAccessKey, sessionToken]);
  return { credentials: { accessKeyId, secretAccessKey, sessionToken }, expiresAt: expiration };
}

// STS answers in XML; the four fields read here are leaf elements with text only.
function tag(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return match?.[1]?.trim();
}
