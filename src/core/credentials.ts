// What counts as a credential in a provider's settings. Every value that can authorise a
// request is treated as a secret, whatever its source: the resolved API key, the
// provider.headers values read from the Secret and those of headers named like credentials
// (Azure's `api-key`, `Authorization`, a gateway's `x-auth-token`; see CREDENTIAL_HEADER), and
// credentials written into baseURL (`https://user:pass@host`, `?key=…`), and AWS key pairs and
// session tokens. Tokens derived at run time (STS session credentials) are remembered where
// they are made (wire/bedrock/aws-credentials.ts). Pure.
import type { Chain, Provider } from './types.ts';
import { REDACTED } from './redact.ts';

/**
 * Header names whose values authorise a request. Not every header value: answers are redacted
 * with the known secrets, and a security review found that treating `anthropic-version:
 * 2023-06-01` or any literal value as a secret blanked that text out of every answer of every
 * chain. A credential in a header with another name is read from the Secret (`valueFrom`).
 */
export const CREDENTIAL_HEADER =
  /(^|[-_])(auth|authorization|key|apikey|token|secret|password|passwd|cookie|credential|credentials|signature|session)([-_]|$)|api-?key/i;

/** Every credential value of the provider (undecoded and URL-decoded, as an upstream may echo either). */
export function providerSecrets(provider: Provider): string[] {
  const values: string[] = [];
  if (provider.apiKey) values.push(provider.apiKey);
  for (const [name, value] of Object.entries(provider.headers)) {
    if (provider.secretHeaders?.includes(name) || CREDENTIAL_HEADER.test(name)) values.push(value);
  }
  values.push(...urlSecrets(provider.baseURL));
  const aws = provider.aws?.credentials;
  if (aws?.kind === 'static') {
    // The key id is not a secret by AWS's rules, but it names the account's key: kept out of logs too.
    values.push(aws.accessKeyId, aws.secretAccessKey);
    if (aws.sessionToken) values.push(aws.sessionToken);
  }
  // A service-account key: the whole file as read, and its private key alone (the part an echo would quote).
  if (provider.gcp?.kind === 'serviceAccount') values.push(provider.gcp.keyJson, provider.gcp.privateKey, provider.gcp.privateKey.replaceAll('\n', '\\n'));
  return values;
}

/** Every credential value of every provider the chains use. */
export function chainSecrets(chains: Iterable<Chain>): string[] {
  const out = new Set<string>();
  for (const chain of chains) for (const step of chain.steps) for (const value of providerSecrets(step.provider)) out.add(value);
  return [...out];
}

/** The user name, password and query values of a URL: each may be a key. */
export function urlSecrets(url: string): string[] {
  const parsed = parseURL(url);
  if (!parsed) return [];
  const values = [parsed.username, parsed.password, ...[...parsed.searchParams.values()]];
  const decoded = [parsed.username, parsed.password].map(safeDecode);
  return [...values, ...decoded].filter((v) => v !== '');
}

/**
 * A URL as /config shows it: the user information and every query value replaced, since
 * either can be a key. A string that does not parse as a URL is not shown at all.
 */
export function redactURL(url: string): string {
  const parsed = parseURL(url);
  if (!parsed) return REDACTED;
  if (parsed.username !== '' || parsed.password !== '') {
    parsed.username = REDACTED;
    parsed.password = '';
  }
  for (const name of new Set(parsed.searchParams.keys())) parsed.searchParams.set(name, REDACTED);
  // URL encodes the brackets of [REDACTED] in the user part and the query; show them plainly.
  return parsed.toString().replaceAll('%5BREDACTED%5D', REDACTED);
}

function parseURL(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------------------
// Derived credentials: tokens made at run time from a configured credential (STS session
// credentials, OAuth access tokens). They authorise requests like a key, so the redactor must
// know them as soon as they exist; the process's KnownSecrets subscribes here (serve.ts).

type DerivedSecretListener = (values: readonly string[]) => void;
const derivedListeners = new Set<DerivedSecretListener>();

/** Reports newly derived credential values to every subscriber (the redactor). */
export function rememberDerivedSecrets(values: readonly string[]): void {
  const present = values.filter((v) => v !== '');
  if (present.length === 0) return;
  for (const listener of derivedListeners) listener(present);
}

/** Subscribes to derived credentials; returns the unsubscribe function. */
export function onDerivedSecrets(listener: DerivedSecretListener): () => void {
  derivedListeners.add(listener);
  return () => derivedListeners.delete(listener);
}
