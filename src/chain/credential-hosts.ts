// Optional binding of credentials Secret keys to the hosts they may be sent to, decided by
// whoever owns the Secret (not by the chain author). It lives in the Secret itself, as the
// data key `llmfallback.io-allowed-hosts`, because the sidecar sees only the mounted files: a
// Secret's annotations never reach it, and it has (by design) no RBAC on Secrets.
//
//   llmfallback.io-allowed-hosts: |
//     openai: [api.openai.com]
//     azure: ["*.openai.azure.com"]
//     "*": [api.deepseek.com]      # optional: every key not listed above
//
// A key that is listed (or covered by "*") is only used for providers whose baseURL host
// matches one entry: exactly, or as a subdomain of a "*.suffix" entry; ports are not
// compared. Keys not covered are not restricted. A file that cannot be parsed refuses every
// Secret key (fail closed). Pure apart from the one file read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export const ALLOWED_HOSTS_KEY = 'llmfallback.io-allowed-hosts';

export type HostBinding = { kind: 'none' } | { kind: 'bound'; hosts: ReadonlyMap<string, readonly string[]> } | { kind: 'invalid'; problem: string };

/** Reads the binding from the mounted Secret's folder; no file: no binding. */
export function readHostBinding(credentialsDir: string): HostBinding {
  let text: string;
  try {
    text = readFileSync(path.join(credentialsDir, ALLOWED_HOSTS_KEY), 'utf8');
  } catch {
    return { kind: 'none' };
  }
  return parseHostBinding(text);
}

export function parseHostBinding(text: string): HostBinding {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    return { kind: 'invalid', problem: `${ALLOWED_HOSTS_KEY} is not YAML: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { kind: 'invalid', problem: `${ALLOWED_HOSTS_KEY} must be a mapping of Secret key to a list of hosts` };
  const hosts = new Map<string, string[]>();
  for (const [key, value] of Object.entries(raw)) {
    const list: unknown = typeof value === 'string' ? value.split(',') : value;
    if (!Array.isArray(list) || !list.every((h) => typeof h === 'string' && h.trim() !== '')) {
      return { kind: 'invalid', problem: `${ALLOWED_HOSTS_KEY}: "${key}" must list host names` };
    }
    hosts.set(
      key,
      list.map((h: string) => h.trim().toLowerCase()),
    );
  }
  return { kind: 'bound', hosts };
}

/** Why `secretKey` may not be sent to `baseURL`, or undefined when it may. */
export function hostRefusal(binding: HostBinding, secretKey: string, baseURL: string): string | undefined {
  if (binding.kind === 'none') return undefined;
  if (binding.kind === 'invalid') return binding.problem;
  const allowed = binding.hosts.get(secretKey) ?? binding.hosts.get('*');
  if (allowed === undefined) return undefined;
  let host: string;
  try {
    host = new URL(baseURL).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return `baseURL is not a URL, and Secret key "${secretKey}" is bound to ${allowed.join(', ')}`;
  }
  const matches = allowed.some((entry) => (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) : host === entry));
  return matches ? undefined : `Secret key "${secretKey}" may only be sent to ${allowed.join(', ')} (${ALLOWED_HOSTS_KEY}), not to ${host}`;
}
