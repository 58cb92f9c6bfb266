// Optional binding of credentials Secret keys to the origins they may be sent to, decided by
// whoever owns the Secret (not by the chain author). It lives in the Secret itself, as the
// data key `llmfallback.io-allowed-hosts`, because the sidecar sees only the mounted files: a
// Secret's annotations never reach it, and it has (by design) no RBAC on Secrets.
//
//   llmfallback.io-allowed-hosts: |
//     openai: [api.openai.com]                   # https://api.openai.com:443 only
//     azure: ["*.openai.azure.com"]              # https, port 443, any subdomain
//     gateway: ["https://llm.example.com:8443"]  # https on another port
//     local: ["http://vllm.models.svc:8000"]     # plain http, written out: in-cluster upstreams
//     "*": [api.deepseek.com]                    # optional: every key not listed above
//
// An entry is an origin: scheme, host and port. A bare host means https on port 443, so a
// key bound to a host is never sent over plain http (anyone on the path could read it) or to
// another port of that host (another service) unless the Secret's owner wrote so. A key
// that is listed (or covered by "*") is used only for providers whose baseURL has the
// scheme and port of one entry and its host, exactly or as a subdomain of a "*.suffix"
// entry. Keys not covered are not restricted. A file that cannot be parsed, or an entry
// that is not one of these forms, refuses every Secret key (fail closed). Pure apart from
// the one file read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseYaml } from '../core/yaml.ts';

export const ALLOWED_HOSTS_KEY = 'llmfallback.io-allowed-hosts';

/** One allowed origin; `host` is a suffix (".openai.azure.com") when `wildcard`. */
export interface BoundOrigin {
  scheme: 'https' | 'http';
  host: string;
  wildcard: boolean;
  port: number;
}

export type HostBinding = { kind: 'none' } | { kind: 'bound'; hosts: ReadonlyMap<string, readonly BoundOrigin[]> } | { kind: 'invalid'; problem: string };

const DEFAULT_PORT = { https: 443, http: 80 } as const;
const ENTRY_FORMS = 'host, *.suffix, https://host[:port] or http://host[:port]';

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
  const hosts = new Map<string, BoundOrigin[]>();
  for (const [key, value] of Object.entries(raw)) {
    const list: unknown = typeof value === 'string' ? value.split(',') : value;
    if (!Array.isArray(list) || !list.every((h) => typeof h === 'string' && h.trim() !== '')) {
      return { kind: 'invalid', problem: `${ALLOWED_HOSTS_KEY}: "${key}" must list host names` };
    }
    const origins: BoundOrigin[] = [];
    for (const entry of list as string[]) {
      const origin = parseEntry(entry.trim());
      if (origin === undefined)
        return { kind: 'invalid', problem: `${ALLOWED_HOSTS_KEY}: "${key}" lists "${entry.trim().slice(0, 200)}", which is not one of ${ENTRY_FORMS}` };
      origins.push(origin);
    }
    hosts.set(key, origins);
  }
  return { kind: 'bound', hosts };
}

/**
 * An entry as an origin, or undefined when it is not one of the allowed forms: a path, user
 * information, a query, another scheme, or a port without a scheme ("host:8443" could mean
 * either scheme, so the owner must say which).
 */
function parseEntry(entry: string): BoundOrigin | undefined {
  const explicit = /^(https?):\/\//i.exec(entry);
  let text = entry;
  if (!explicit) {
    // A bare IPv6 address ("::1" or "[::1]"); any other colon is a port.
    const ipv6 = /^\[?([0-9a-f:.]+)\]?$/i.exec(text);
    if (text.includes(':') && ipv6 === null) return undefined;
    text = `https://${ipv6 !== null && text.includes(':') ? `[${ipv6[1] ?? ''}]` : text}`;
  }
  const wildcard = /^(https?:\/\/)\*\./i.test(text);
  let url: URL;
  try {
    // "*" is not a host character: the suffix is parsed as a host of its own.
    url = new URL(wildcard ? text.replace('*.', '') : text);
  } catch {
    return undefined;
  }
  const scheme = url.protocol === 'https:' ? 'https' : url.protocol === 'http:' ? 'http' : undefined;
  if (scheme === undefined || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined;
  if (url.pathname !== '/') return undefined;
  const host = unbracket(url.hostname);
  // "*" alone, or anywhere but a leading "*.", would match nothing: say so rather than refuse silently.
  if (host.includes('*')) return undefined;
  return { scheme, host: wildcard ? `.${host}` : host, wildcard, port: portOf(url, scheme) };
}

/** Why `secretKey` may not be sent to `baseURL`, or undefined when it may. */
export function hostRefusal(binding: HostBinding, secretKey: string, baseURL: string): string | undefined {
  if (binding.kind === 'none') return undefined;
  if (binding.kind === 'invalid') return binding.problem;
  const allowed = binding.hosts.get(secretKey) ?? binding.hosts.get('*');
  if (allowed === undefined) return undefined;
  const bound = allowed.map(describeOrigin).join(', ');
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    return `baseURL is not a URL, and Secret key "${secretKey}" is bound to ${bound}`;
  }
  const scheme = url.protocol === 'https:' ? 'https' : url.protocol === 'http:' ? 'http' : undefined;
  const host = unbracket(url.hostname.toLowerCase());
  const asked = scheme === undefined ? `${url.protocol}//${url.host}` : describeOrigin({ scheme, host, wildcard: false, port: portOf(url, scheme) });
  const matches =
    scheme !== undefined &&
    allowed.some(
      (origin) => origin.scheme === scheme && origin.port === portOf(url, scheme) && (origin.wildcard ? host.endsWith(origin.host) : host === origin.host),
    );
  return matches ? undefined : `Secret key "${secretKey}" may only be sent to ${bound} (${ALLOWED_HOSTS_KEY}), not to ${asked}`;
}

function portOf(url: URL, scheme: 'https' | 'http'): number {
  return url.port === '' ? DEFAULT_PORT[scheme] : Number(url.port);
}

function unbracket(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

function describeOrigin(origin: BoundOrigin): string {
  const host = origin.wildcard ? `*${origin.host}` : origin.host.includes(':') ? `[${origin.host}]` : origin.host;
  return `${origin.scheme}://${host}:${origin.port}`;
}
