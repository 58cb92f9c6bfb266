const REDACTED = '[REDACTED]';

/**
 * Replace every known secret (and any recognisable bearer token) in text that leaves
 * the process: upstream error bodies echo keys ("Incorrect API key provided: sk-…").
 */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    // Short strings would blank out ordinary words; real keys are long.
    if (secret.length >= 8) out = out.split(secret).join(REDACTED);
  }
  return out.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, `$1${REDACTED}`);
}
