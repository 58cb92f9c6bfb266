// Where the sidecar's API server is and how it authenticates, without @kubernetes/client-node
// (its index loads every generated API model, undici, js-yaml and the cloud auth plugins:
// ~44 MB of idle memory in every pod, docs/bench/findings.md):
//
// - in-cluster: KUBERNETES_SERVICE_HOST/PORT from the options' environment, the mounted
//   service account's `ca.crt`, and its `token`, read again every minute and on a 401
//   (projected tokens rotate; the kubelet swaps the file);
// - `--kubeconfig FILE`: the current context's cluster (`server`, `certificate-authority`
//   and `-data`, `insecure-skip-tls-verify`, `tls-server-name`) and user (`token`,
//   `tokenFile`, client certificate and key, `username`/`password`), read as JSON when it is
//   JSON (src/k8s/kubeconfig-text.ts).
//
// CA, client certificate and key files are read again on the token's one-minute period and
// after a certificate verification failure (a rotated cluster CA needs no restart). Refused,
// as client-go refuses them: an http:// server given credentials (they would cross the network
// in cleartext) unless `insecure-skip-tls-verify: true` says verification is knowingly off
// (test harnesses), that flag together with a CA, and a client certificate without its key.
//
// A user this does not cover (`exec` and `auth-provider` plugins: EKS, GKE and AKS local
// kubeconfigs) or a cluster behind a `proxy-url` is handed to client-node's KubeConfig,
// imported only then, whose request options (TLS, agent, Authorization) are applied to ours.
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { rememberDerivedSecrets } from '../core/credentials.ts';
import { inClusterServer, KubeAccessError, serviceAccountFiles, SERVICE_ACCOUNT_DIR, type KubeConfigSources } from './kube-access.ts';
import { readKubeconfigText } from './kubeconfig-text.ts';

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
  /** The server's certificate failed verification: the next request reads the CA and certificate files again. */
  tlsRejected(): void;
}

export interface EndpointOptions {
  /** Token, CA and client certificate files are read again after this long; default one minute. */
  tokenRereadMs?: number;
  now?: () => number;
}

/**
 * A file that rotates (a projected token, a CA bundle): read again when older than `maxAgeMs`,
 * or at once when its content was refused; while it is missing the last content stays.
 */
export class RotatingFile {
  readonly #file: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #onRead: (content: Buffer) => void;
  #value: Buffer | undefined;
  #readAt = Number.NEGATIVE_INFINITY;

  constructor(file: string, maxAgeMs = TOKEN_REREAD_MS, now: () => number = Date.now, onRead: (content: Buffer) => void = () => {}) {
    this.#file = file;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
    this.#onRead = onRead;
  }

  /** The first read, which must succeed (it throws the file system's error). */
  load(): this {
    this.#accept(readFileSync(this.#file));
    return this;
  }

  current(): Buffer | undefined {
    if (this.#now() - this.#readAt >= this.#maxAgeMs) this.#read();
    return this.#value;
  }

  /** Reads the file now; true when its content changed. */
  reread(): boolean {
    const before = this.#value;
    this.#read();
    return this.#value !== undefined && (before === undefined || !this.#value.equals(before));
  }

  /** The next current() reads the file again. */
  expire(): void {
    this.#readAt = Number.NEGATIVE_INFINITY;
  }

  #read(): void {
    try {
      this.#accept(readFileSync(this.#file));
    } catch {
      // Mid-swap (the kubelet's ..data symlink) or gone for a moment: keep the last content.
      this.#readAt = this.#now();
    }
  }

  #accept(content: Buffer): void {
    this.#value = content;
    this.#readAt = this.#now();
    this.#onRead(content);
  }
}

/** A token file that rotates: read again when older than `maxAgeMs` or when the server refused it. */
export class RotatingToken {
  readonly #file: RotatingFile;

  constructor(file: string, maxAgeMs = TOKEN_REREAD_MS, now: () => number = Date.now) {
    this.#file = new RotatingFile(file, maxAgeMs, now, (content) => {
      // The pod's identity: an API server or proxy error quoting the Authorization header must not reach a log.
      const token = content.toString('utf8').trim();
      if (token !== '') rememberDerivedSecrets([token]);
    });
  }

  current(): string {
    return this.#file.current()?.toString('utf8').trim() ?? '';
  }

  /** Reads the file now; true when the token changed. */
  reread(): boolean {
    const before = this.current();
    this.#file.reread();
    return this.current() !== before;
  }
}

/** TLS options whose CA and client certificate files are read again as they rotate. */
interface Tls {
  ca?: Bytes;
  cert?: Bytes;
  key?: Bytes;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Inline `-data` bytes, or a file read again as it rotates. */
type Bytes = Buffer | RotatingFile;

const bytesOf = (source: Bytes): Buffer | undefined => (source instanceof RotatingFile ? source.current() : source);

type Authorization = { kind: 'none' } | { kind: 'static'; header: string } | { kind: 'token-file'; token: RotatingToken };

/** The endpoint for `serve --kubernetes`: the kubeconfig file if given, else the pod's service account. */
export async function loadApiEndpoint(sources: KubeConfigSources, options: EndpointOptions = {}): Promise<ApiEndpoint> {
  if (sources.kubeconfigPath !== undefined) return fromKubeconfig(sources.kubeconfigPath, options);
  const server = inClusterServer(sources.env);
  const { tokenFile, caFile } = serviceAccountFiles(sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, existsSync);
  const tls: Tls = { ca: new RotatingFile(caFile, options.tokenRereadMs, options.now).load(), rejectUnauthorized: true };
  return ownEndpoint(server, 'in-cluster', tls, { kind: 'token-file', token: new RotatingToken(tokenFile, options.tokenRereadMs, options.now) });
}

function ownEndpoint(server: string, via: ApiEndpoint['via'], tls: Tls, authorization: Authorization): ApiEndpoint {
  return {
    server,
    via,
    requestOptions: async () => {
      const header =
        authorization.kind === 'static' ? authorization.header : authorization.kind === 'token-file' ? `Bearer ${authorization.token.current()}` : undefined;
      const ca = tls.ca && bytesOf(tls.ca);
      const cert = tls.cert && bytesOf(tls.cert);
      const key = tls.key && bytesOf(tls.key);
      return {
        rejectUnauthorized: tls.rejectUnauthorized,
        ...(tls.servername ? { servername: tls.servername } : {}),
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        headers: header ? { authorization: header } : {},
      };
    },
    unauthorized: () => authorization.kind === 'token-file' && authorization.token.reread(),
    tlsRejected: () => {
      for (const source of [tls.ca, tls.cert, tls.key]) if (source instanceof RotatingFile) source.expire();
    },
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
    config = record(readKubeconfigText(file));
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
  const bytes = (entry: Json, fileKey: string): Bytes | undefined => {
    const data = text(entry, `${fileKey}-data`);
    if (data) return Buffer.from(data, 'base64');
    const name = text(entry, fileKey);
    if (!name) return undefined;
    try {
      return new RotatingFile(path.resolve(dir, name), options.tokenRereadMs, options.now).load();
    } catch (error) {
      throw fail(`${fileKey}: ${(error as Error).message}`);
    }
  };
  const servername = text(cluster, 'tls-server-name');
  const ca = bytes(cluster, 'certificate-authority');
  const cert = bytes(user, 'client-certificate');
  const key = bytes(user, 'client-key');
  const skipVerify = cluster['insecure-skip-tls-verify'] === true;
  // client-go's refusals: a CA nobody would check, and half a client identity.
  if (skipVerify && ca) throw fail('insecure-skip-tls-verify: true and a certificate-authority together: verify with the CA, or drop it');
  if (Boolean(cert) !== Boolean(key)) throw fail(`${cert ? 'client-certificate without client-key' : 'client-key without client-certificate'}`);
  const authorization = userAuthorization(user, dir, options);
  if (/^http:\/\//i.test(server) && (authorization.kind !== 'none' || cert) && !skipVerify)
    throw fail(
      `the server ${server} is plain http: its credentials would cross the network in cleartext (use https; a test harness sets insecure-skip-tls-verify: true)`,
    );
  const tls: Tls = {
    rejectUnauthorized: !skipVerify,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(servername ? { servername } : {}),
  };
  return ownEndpoint(server.replace(/\/+$/, ''), 'kubeconfig', tls, authorization);
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
    // The plugin decides when its credential is stale; client-node reads its files on every request.
    unauthorized: () => false,
    tlsRejected: () => {},
  };
}
