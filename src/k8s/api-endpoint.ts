// Where the sidecar's API server is and how it authenticates, without @kubernetes/client-node
// (its index loads every generated API model, undici, js-yaml and the cloud auth plugins:
// ~44 MB of idle memory in every pod, docs/bench/findings.md):
//
// - in-cluster: KUBERNETES_SERVICE_HOST/PORT from the options' environment, the mounted
//   service account's `ca.crt`, and its `token`, read again every minute and on a 401
//   (projected tokens rotate; the kubelet swaps the file);
// - `--kubeconfig FILE`: the current context's cluster (`server`, `certificate-authority`
//   and `-data`, `insecure-skip-tls-verify`, `tls-server-name`) and user (`token`,
//   `tokenFile`, client certificate and key, `username`/`password`).
//
// A user this does not cover (`exec` and `auth-provider` plugins: EKS, GKE and AKS local
// kubeconfigs) or a cluster behind a `proxy-url` is handed to client-node's KubeConfig,
// imported only then, whose request options (TLS, agent, Authorization) are applied to ours.
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { rememberDerivedSecrets } from '../core/credentials.ts';
import { inClusterServer, KubeAccessError, serviceAccountFiles, SERVICE_ACCOUNT_DIR, type KubeConfigSources } from './kube-access.ts';

/** How often a token file is read again at the latest: client-node's and client-go's period. */
export const TOKEN_REREAD_MS = 60_000;

export interface ApiEndpoint {
  /** The API server's base URL (`https://10.0.0.1:443`; a path prefix, as some proxies use, is kept). */
  readonly server: string;
  /** Where the credentials came from. */
  readonly via: 'in-cluster' | 'kubeconfig' | 'client-node';
  /** TLS options and the Authorization header for one request. */
  requestOptions(): Promise<RequestOptions>;
  /** The API server answered 401: read the credentials again; true when they changed (worth one retry). */
  unauthorized(): boolean;
}

export interface EndpointOptions {
  /** Token files are read again after this long; default one minute. */
  tokenRereadMs?: number;
  now?: () => number;
}

/** A token file that rotates: read again when older than `maxAgeMs` or when the server refused it. */
export class RotatingToken {
  readonly #file: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #value = '';
  #readAt = Number.NEGATIVE_INFINITY;

  constructor(file: string, maxAgeMs = TOKEN_REREAD_MS, now: () => number = Date.now) {
    this.#file = file;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  current(): string {
    if (this.#now() - this.#readAt >= this.#maxAgeMs) this.#read();
    return this.#value;
  }

  /** Reads the file now; true when the token changed. */
  reread(): boolean {
    const before = this.#value;
    this.#read();
    return this.#value !== before;
  }

  #read(): void {
    try {
      this.#value = readFileSync(this.#file, 'utf8').trim();
      // The pod's identity: an API server or proxy error quoting the Authorization header must not reach a log.
      if (this.#value !== '') rememberDerivedSecrets([this.#value]);
    } catch {
      // Mid-swap or gone for a moment: keep the last token; a refusal makes the next request read again.
    }
    this.#readAt = this.#now();
  }
}

interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

type Authorization = { kind: 'none' } | { kind: 'static'; header: string } | { kind: 'token-file'; token: RotatingToken };

/** The endpoint for `serve --kubernetes`: the kubeconfig file if given, else the pod's service account. */
export async function loadApiEndpoint(sources: KubeConfigSources, options: EndpointOptions = {}): Promise<ApiEndpoint> {
  if (sources.kubeconfigPath !== undefined) return fromKubeconfig(sources.kubeconfigPath, options);
  const server = inClusterServer(sources.env);
  const { tokenFile, caFile } = serviceAccountFiles(sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, existsSync);
  const tls: Tls = { ca: readFileSync(caFile), rejectUnauthorized: true };
  return ownEndpoint(server, 'in-cluster', tls, { kind: 'token-file', token: new RotatingToken(tokenFile, options.tokenRereadMs, options.now) });
}

function ownEndpoint(server: string, via: ApiEndpoint['via'], tls: Tls, authorization: Authorization): ApiEndpoint {
  return {
    server,
    via,
    requestOptions: async () => {
      const header =
        authorization.kind === 'static' ? authorization.header : authorization.kind === 'token-file' ? `Bearer ${authorization.token.current()}` : undefined;
      return { ...tls, headers: header ? { authorization: header } : {} };
    },
    unauthorized: () => authorization.kind === 'token-file' && authorization.token.reread(),
  };
}

type Json = Record<string, unknown>;

function record(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function text(entry: Json | undefined, key: string): string | undefined {
  const value = entry?.[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The `cluster`/`user`/`context` body of the named entry of a kubeconfig list. */
function named(config: Json, list: string, name: string | undefined, body: string): Json | undefined {
  const entries = config[list];
  if (name === undefined || !Array.isArray(entries)) return undefined;
  return record(entries.map(record).find((entry) => entry?.['name'] === name)?.[body]);
}

/** The user fields this client implements; anything else (exec, auth-provider) goes to client-node. */
const OWN_USER_FIELDS = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'username',
  'password',
]);

async function fromKubeconfig(file: string, options: EndpointOptions): Promise<ApiEndpoint> {
  const fail = (message: string): KubeAccessError => new KubeAccessError(`--kubeconfig ${file}: ${message}`);
  let config: Json | undefined;
  try {
    config = record(parseYaml(readFileSync(file, 'utf8')));
  } catch (error) {
    throw fail((error as Error).message);
  }
  if (!config) throw fail('not a kubeconfig (no mapping at the top)');
  const context = named(config, 'contexts', text(config, 'current-context'), 'context');
  const cluster = named(config, 'clusters', text(context, 'cluster'), 'cluster');
  const server = text(cluster, 'server');
  if (!cluster || !server) throw fail('the current context names no cluster');
  const user = named(config, 'users', text(context, 'user'), 'user') ?? {};
  const ownFields = Object.keys(user).every((key) => OWN_USER_FIELDS.has(key) || user[key] === null || user[key] === undefined);
  if (!ownFields || text(cluster, 'proxy-url')) return viaClientNode(file, fail);

  // Relative file names in a kubeconfig are relative to the file's own folder.
  const dir = path.dirname(path.resolve(file));
  const bytes = (entry: Json, fileKey: string): Buffer | undefined => {
    const data = text(entry, `${fileKey}-data`);
    if (data) return Buffer.from(data, 'base64');
    const name = text(entry, fileKey);
    if (!name) return undefined;
    try {
      return readFileSync(path.resolve(dir, name));
    } catch (error) {
      throw fail(`${fileKey}: ${(error as Error).message}`);
    }
  };
  const servername = text(cluster, 'tls-server-name');
  const ca = bytes(cluster, 'certificate-authority');
  const cert = bytes(user, 'client-certificate');
  const key = bytes(user, 'client-key');
  const tls: Tls = {
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(servername ? { servername } : {}),
  };
  return ownEndpoint(server.replace(/\/+$/, ''), 'kubeconfig', tls, userAuthorization(user, dir, options));
}

function userAuthorization(user: Json, dir: string, options: EndpointOptions): Authorization {
  const token = text(user, 'token');
  if (token) {
    rememberDerivedSecrets([token]);
    return { kind: 'static', header: `Bearer ${token}` };
  }
  const tokenFile = text(user, 'tokenFile');
  if (tokenFile) return { kind: 'token-file', token: new RotatingToken(path.resolve(dir, tokenFile), options.tokenRereadMs, options.now) };
  const username = text(user, 'username');
  if (username) {
    const password = text(user, 'password') ?? '';
    rememberDerivedSecrets([password]);
    return { kind: 'static', header: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  }
  return { kind: 'none' };
}

/** exec / auth-provider users and proxies: client-node's KubeConfig, loaded only for them. */
async function viaClientNode(file: string, fail: (message: string) => KubeAccessError): Promise<ApiEndpoint> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (error) {
    throw fail((error as Error).message);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw fail('the current context names no cluster');
  return {
    server: server.replace(/\/+$/, ''),
    via: 'client-node',
    requestOptions: async () => {
      // TLS, the Authorization header from the plugin (cached by client-node until it expires) and an agent (proxy-url).
      const options: RequestOptions = {};
      await kc.applyToHTTPSOptions(options);
      return options;
    },
    // The plugin decides when its credential is stale; nothing to read again here.
    unauthorized: () => false,
  };
}
