// OAuth2 access tokens for Vertex AI, cached per identity and renewed before they expire:
//   a service-account key: a JWT (RS256, signed with `jose`, imported on first use) exchanged
//   at the key's token_uri by the JWT bearer grant (RFC 7523), scope cloud-platform;
//   GKE workload identity: the metadata server's token for the pod's service account.
// Every signed assertion is reported to the redactor before it is sent, every access token
// the moment it is received.
import { shownInMessage } from '../translation-helpers.ts';
import { createHash } from 'node:crypto';
import { rememberDerivedSecrets } from '../../core/credentials.ts';
import type { GcpCredentialSource } from '../../core/types.ts';
import { CredentialUnavailable } from '../errors.ts';
import { ExpiringCache, type Expiring } from '../expiring-cache.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const ASSERTION_SECONDS = 3600;
const EXCHANGE_TIMEOUT_MS = 10_000;

const tokens = new ExpiringCache<string>();

/** A valid access token for the source: the cached one, or a new one (one exchange at a time per identity). */
export async function googleAccessToken(source: GcpCredentialSource, _signal: AbortSignal, now: () => number = Date.now): Promise<string> {
  // A service account's tokens are keyed by its key itself (hashed), so a replaced key never reuses the old key's token.
  const key =
    source.kind === 'serviceAccount'
      ? JSON.stringify([source.clientEmail, source.tokenURI, createHash('sha256').update(source.privateKey).digest('hex')])
      : source.metadataURL;
  // The exchange is shared by every attempt waiting for it, so it runs under its own time limit, not one attempt's.
  return tokens.get(key, () => {
    const signal = AbortSignal.timeout(EXCHANGE_TIMEOUT_MS);
    return source.kind === 'serviceAccount' ? jwtBearerGrant(source, signal, now) : metadataToken(source.metadataURL, signal, now);
  });
}

/** Forgets every cached token (tests). */
export function clearGoogleTokens(): void {
  tokens.clear();
}

async function jwtBearerGrant(
  source: Extract<GcpCredentialSource, { kind: 'serviceAccount' }>,
  signal: AbortSignal,
  now: () => number,
): Promise<Expiring<string>> {
  const { SignJWT, importPKCS8 } = await import('jose');
  let assertion: string;
  try {
    const key = await importPKCS8(source.privateKey, 'RS256');
    const iat = Math.floor(now() / 1000);
    assertion = await new SignJWT({ scope: CLOUD_PLATFORM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(source.privateKeyId ? { kid: source.privateKeyId } : {}) })
      .setIssuer(source.clientEmail)
      .setAudience(source.tokenURI)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_SECONDS)
      .sign(key);
  } catch (error) {
    throw new CredentialUnavailable(`the service-account private key cannot sign: ${error instanceof Error ? error.message : String(error)}`);
  }
  // The signed assertion is a bearer credential at the token endpoint until it expires: an
  // endpoint that quotes it in a refusal must not put it in a caller's error or the log.
  rememberDerivedSecrets([assertion]);
  const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  return exchange(source.tokenURI, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString(), signal }, now);
}

function metadataToken(url: string, signal: AbortSignal, now: () => number): Promise<Expiring<string>> {
  return exchange(url, { method: 'GET', headers: { 'metadata-flavor': 'Google' }, signal }, now);
}

async function exchange(url: string, init: RequestInit, now: () => number): Promise<Expiring<string>> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new CredentialUnavailable(`the token endpoint ${url} cannot be reached: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  if (!response.ok)
    throw new CredentialUnavailable(
      `the token endpoint ${url} refused (HTTP ${response.status}): ${shownInMessage(record['error'] ?? '')} ${shownInMessage(record['error_description'] ?? '')}`.trim(),
    );
  const token = record['access_token'];
  const expiresIn = record['expires_in'];
  if (typeof token !== 'string' || token === '' || typeof expiresIn !== 'number')
    throw new CredentialUnavailable(`the token endpoint ${url} answered without an access_token and expires_in`);
  rememberDerivedSecrets([token]);
  return { value: token, expiresAt: now() + expiresIn * 1000 };
}
