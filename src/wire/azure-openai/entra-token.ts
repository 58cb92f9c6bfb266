// Microsoft Entra access tokens for Azure OpenAI through AKS workload identity: the pod's
// federated service-account token (read from its file on every exchange: the kubelet rotates
// it) is the client assertion of a client-credentials grant at Entra's token endpoint, scope
// https://cognitiveservices.azure.com/.default. Tokens are cached per identity until shortly
// before they expire and reported to the redactor the moment they are received; the federated
// token is reported the moment it is read.
import { shownInMessage } from '../translation-helpers.ts';
import { readFile } from 'node:fs/promises';
import { rememberDerivedSecrets } from '../../core/credentials.ts';
import type { AzureCredentialSource } from '../../core/types.ts';
import { CredentialUnavailable } from '../errors.ts';
import { ExpiringCache, type Expiring } from '../expiring-cache.ts';

export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';
const EXCHANGE_TIMEOUT_MS = 10_000;

const tokens = new ExpiringCache<string>();

/** A valid Entra access token for the identity (one exchange at a time per identity). */
export function entraAccessToken(source: AzureCredentialSource, now: () => number = Date.now): Promise<string> {
  // Shared by every attempt waiting for it: its own time limit, not one attempt's.
  return tokens.get(JSON.stringify([source.tokenURL, source.clientId, source.tokenFile]), () =>
    exchange(source, AbortSignal.timeout(EXCHANGE_TIMEOUT_MS), now),
  );
}

async function exchange(source: AzureCredentialSource, signal: AbortSignal, now: () => number): Promise<Expiring<string>> {
  let assertion: string;
  try {
    assertion = (await readFile(source.tokenFile, 'utf8')).trim();
  } catch {
    throw new CredentialUnavailable(`the federated token file ${source.tokenFile} cannot be read`);
  }
  // The pod's own projected token: a secret from the moment it is read (a token endpoint may quote the assertion it was sent).
  rememberDerivedSecrets([assertion]);
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: source.clientId,
    scope: COGNITIVE_SERVICES_SCOPE,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  let response: Response;
  try {
    response = await fetch(source.tokenURL, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal,
    });
  } catch (error) {
    throw new CredentialUnavailable(`the Entra token endpoint ${source.tokenURL} cannot be reached: ${error instanceof Error ? error.message : String(error)}`);
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = await response.json();
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: reported below
  }
  if (!response.ok)
    throw new CredentialUnavailable(
      `the Entra token endpoint refused (HTTP ${response.status}): ${shownInMessage(body['error'] ?? '')} ${shownInMessage(body['error_description'] ?? '').split('\n')[0] ?? ''}`.trim(),
    );
  const token = body['access_token'];
  const expiresIn = Number(body['expires_in']);
  if (typeof token !== 'string' || token === '' || !Number.isFinite(expiresIn))
    throw new CredentialUnavailable('the Entra token endpoint answered without an access_token and expires_in');
  rememberDerivedSecrets([token]);
  return { value: token, expiresAt: now() + expiresIn * 1000 };
}
