// `llm-fallback serve`: wires config, engine, API and admin servers together, and
// owns their lifecycle (reload on change, drain on SIGTERM).
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadChainsFromDir, formatProblem, watchDirs, type LoadOutcome } from './chain/file-source.ts';
import { ConfigStore, targetsOf } from './chain/store.ts';
import type { ServeOptions } from './config/options.ts';
import { BreakerRegistry } from './engine/breakers.ts';
import { systemClock, type Clock } from './engine/clock.ts';
import type { Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { createAdminApp } from './server/admin.ts';
import { createApiApp } from './server/app.ts';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`configuration is invalid:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export interface RunningServer {
  apiUrl: string;
  adminUrl: string;
  store: ConfigStore;
  breakers: BreakerRegistry;
  metrics: Metrics;
  /** Re-reads the config; true when it was applied, false when refused (last good kept). */
  reload(): Promise<boolean>;
  /** Stop accepting, let in-flight requests finish (up to the drain timeout), close everything. */
  drain(): Promise<void>;
}

export interface ServeDeps {
  logger: Logger;
  clock?: Clock;
  random?: () => number;
  metrics?: Metrics;
}

export async function startServe(options: ServeOptions, deps: ServeDeps): Promise<RunningServer> {
  const { logger } = deps;
  const metrics = deps.metrics ?? new Metrics();
  const store = new ConfigStore();
  const breakers = new BreakerRegistry((labels, state) => {
    metrics.setCircuitState(labels, state);
    if (state !== 'closed') logger.warn({ ...labels, state }, 'circuit state changed');
  });
  store.onApply((snapshot) => breakers.retain(targetsOf(snapshot)));

  const load = configLoader(options);
  const first = await load();
  if (!first.ok) {
    metrics.reloads.inc({ result: 'rejected' });
    throw new ConfigError(first.problems.map(formatProblem));
  }
  applyChains(store, first, logger, metrics);

  const reload = async (): Promise<boolean> => {
    const next = await load();
    if (!next.ok) {
      metrics.reloads.inc({ result: 'rejected' });
      logger.error({ problems: next.problems.map(formatProblem) }, 'config change refused; the last good config stays active');
      return false;
    }
    applyChains(store, next, logger, metrics);
    return true;
  };
  const stopWatching = options.configDir
    ? watchDirs([options.configDir, options.credentialsDir], () => void reload())
    : () => {};

  let accepting = true;
  let inflight = 0;
  let idle: (() => void) | undefined;
  const api = createApiApp({
    store, breakers, logger, metrics,
    clock: deps.clock ?? systemClock,
    random: deps.random ?? Math.random,
    inflight: {
      enter: () => void inflight++,
      leave: () => {
        inflight--;
        if (inflight === 0) idle?.();
      },
    },
  }, options);
  const admin = createAdminApp({ store, breakers, metrics, accepting: () => accepting });
  const apiServer = await listen(api.listen(options.port, options.host));
  const adminServer = await listen(admin.listen(options.adminPort, options.host));
  // Streams can last minutes: Node's default request timeout must not cut them.
  apiServer.requestTimeout = 0;
  apiServer.headersTimeout = 60_000;

  const drain = async (): Promise<void> => {
    if (!accepting) return;
    accepting = false;
    stopWatching();
    apiServer.close();
    apiServer.closeIdleConnections();
    if (inflight > 0) {
      const allDone = new Promise<void>((resolve) => (idle = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.drainTimeoutMs)));
      await Promise.race([allDone, timedOut]);
      clearTimeout(timer);
      if (inflight > 0) logger.warn({ inflight }, 'drain timeout reached; closing remaining connections');
    }
    apiServer.closeAllConnections();
    adminServer.close();
    adminServer.closeAllConnections();
    breakers.shutdown();
  };

  const apiUrl = urlOf(apiServer, options.host);
  const adminUrl = urlOf(adminServer, options.host);
  logger.info({ api: apiUrl, admin: adminUrl, chains: [...(store.current?.chains.keys() ?? [])], config: options.configDir ?? 'kubernetes' }, 'llm-fallback serving');
  return { apiUrl, adminUrl, store, breakers, metrics, reload, drain };
}

function configLoader(options: ServeOptions): () => Promise<LoadOutcome> {
  if (options.kubernetes || !options.configDir) {
    return async () => ({ ok: false, problems: [{ file: 'kubernetes', document: 0, path: '', message: 'serve --kubernetes is not available in this build yet; use --config DIR' }] });
  }
  const dir = options.configDir;
  return () => loadChainsFromDir(dir, { env: options.env, credentialsDir: options.credentialsDir });
}

function applyChains(store: ConfigStore, loaded: Extract<LoadOutcome, { ok: true }>, logger: Logger, metrics: Metrics): void {
  const snapshot = store.apply(loaded.chains);
  metrics.reloads.inc({ result: 'applied' });
  for (const chain of loaded.chains) {
    for (const step of chain.steps) {
      if (step.provider.keyProblem) logger.warn({ chain: chain.name, provider: step.provider.name, model: step.model, problem: step.provider.keyProblem }, 'step will be skipped: no API key');
    }
  }
  logger.info({ version: snapshot.version, chains: [...snapshot.chains.keys()] }, 'config applied');
}

async function listen(server: Server): Promise<Server> {
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
  return server;
}

function urlOf(server: Server, host: string): string {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
