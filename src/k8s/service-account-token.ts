// The pod's service-account token as the Kubernetes client's credential. It is read from its
// file and re-read every minute, as client-go does (the kubelet rotates a projected token),
// and every token read is reported to the redactor at once: the token is the pod's identity,
// and an API server or proxy error that quotes the request's Authorization header must not
// put it in a log line. client-node's own token-file provider gives the token to no one.
import { readFile } from 'node:fs/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import type { KubeConfig, User } from '@kubernetes/client-node';
import { rememberDerivedSecrets } from '../core/credentials.ts';

/** The authProvider name of a user whose token is read by RememberedTokenFile (config.path: the file). */
export const TOKEN_FILE_PROVIDER = 'llm-fallback-token-file';
const REREAD_MS = 60_000;

type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];

export class RememberedTokenFile implements Authenticator {
  readonly #now: () => number;
  #token = '';
  #readAt = Number.NEGATIVE_INFINITY;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  isAuthProvider(user: User): boolean {
    return tokenFileOf(user) !== undefined;
  }

  // client-node passes https (or WebSocket) request options; both take headers as a record.
  async applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const file = tokenFileOf(user);
    if (file === undefined) return;
    if (this.#now() - this.#readAt > REREAD_MS) {
      const token = (await readFile(file, 'utf8')).trim();
      rememberDerivedSecrets([token]);
      this.#token = token;
      this.#readAt = this.#now();
    }
    if (this.#token === '') return;
    const headers: OutgoingHttpHeaders = opts.headers === undefined || Array.isArray(opts.headers) ? {} : (opts.headers as OutgoingHttpHeaders);
    headers['Authorization'] = `Bearer ${this.#token}`;
    opts.headers = headers;
  }
}

/** The token file of a user of this provider; client-node types authProvider as any. */
function tokenFileOf(user: User): string | undefined {
  const provider: unknown = user.authProvider;
  if (typeof provider !== 'object' || provider === null) return undefined;
  const { name, config } = provider as { name?: unknown; config?: unknown };
  if (name !== TOKEN_FILE_PROVIDER || typeof config !== 'object' || config === null) return undefined;
  const file: unknown = (config as Record<string, unknown>)['path'];
  return typeof file === 'string' ? file : undefined;
}
