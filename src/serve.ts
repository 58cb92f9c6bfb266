// `llm-fallback serve`: wires config, engine, API and admin servers together, and
// owns their lifecycle (reload on change, drain on SIGTERM).
import { once } from 'node:events';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, fileConfigSource, type ConfigSource, type Rejection } from './chain/config-source.ts';
import { ConfigStore, targetsOf } from './chain/store.ts';
import { EXAMPLES_DIR, type ServeOptions } from './config/options.ts';
import { settleAbortSignalLayout } from './core/abort-signal-layout.ts';
import { onDerivedSecrets, urlSecrets } from './core/credentials.ts';
import { releaseStartMemory } from './core/start-memory.ts';
import { DEMO_UPSTREAM_VARIABLE, startDemoUpstream, type DemoUpstream } from './demo/demo-upstream.ts';
import type { Chain } from './core/types.ts';
import { BreakerRegistry } from './engine/breakers.ts';
import { systemClock, type Clock } from './engine/clock.ts';
import { routeRows } from './observability/route-view.ts';
import type { KnownSecrets } from './observability/known-secrets.ts';
import type { Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { startTracing } from './observability/tracing.ts';
import { createAdminApp } from './server/admin.ts';
import { createApiApp } from './server/app.ts';
import { BodyBudget } from './server/body-budget.ts';
import { limitedServer } from './server/limited-server.ts';
import type { CapEvents } from './server/connection-cap.ts';

export { ConfigError };

/**
 * The caller's idle connections are kept longer than most HTTP clients keep them (httpx 5 s;
 * undici two seconds, Node agents with a timeout one second, less than the `Keep-Alive:
 * timeout` announced here), so the caller closes first: a request written into a connection
 * the sidecar is closing at that moment is lost to a reset the caller has to retry. At
 * --max-connections a new connection takes the place of the one idle longest.
 */
const API_IDLE_KEEP_ALIVE_MS = 65_000;
/** Probes and scrapes come seconds apart: Node's default. */
const ADMIN_IDLE_KEEP_ALIVE_MS = 5_000;

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
  /** Learns every credential the config loads; the logger was built with it, so log lines are redacted. */
  secrets: KnownSecrets;
  clock?: Clock;
  random?: () => number;
  metrics?: Metrics;
}

export async function startServe(options: ServeOptions, deps: ServeDeps): Promise<RunningServer> {
  const { logger } = deps;
  // Before any request-path code is optimised (abort-signal-layout.ts).
  settleAbortSignalLayout();
  const metrics = deps.metrics ?? new Metrics();
  const store = new ConfigStore();
  const breakers = new BreakerRegistry((labels, state) => {
    metrics.setCircuitState(labels, state);
    if (state !== 'closed') logger.warn({ ...labels, state }, 'circuit state changed');
  });
  // Before any request can use a new snapshot, its credentials are known to every redactor.
  store.onApply((snapshot) => deps.secrets.setCurrent(snapshot.secrets));
  // Credentials in --default-upstream's URL reach the pass-through's log lines otherwise.
  if (options.defaultUpstream) deps.secrets.pin(urlSecrets(options.defaultUpstream));
  // Tokens made at run time (STS session credentials, OAuth access tokens) are secrets from the moment they exist.
  const stopDerived = onDerivedSecrets((values) => deps.secrets.remember(values));
  store.onApply((snapshot) => breakers.retain(targetsOf(snapshot)));
  const clock = deps.clock ?? systemClock;
  metrics.trackRoutes(() => routeRows(store.current?.chains.values() ?? [], breakers, clock.now()));

  const demo = await demoUpstreamFor(options, logger);
  const source = await configSource(demo ? { ...options, env: { ...options.env, [DEMO_UPSTREAM_VARIABLE]: demo.url } } : options, logger);
  const onRejected = (rejection: Rejection): void => {
    metrics.reloads.inc({ result: 'rejected' });
    logger.error({ ...rejection }, 'config change refused; the last good config stays active');
  };
  try {
    // The file source applies its first config before it returns; the Kubernetes one returns at
    // once and applies after its first list (/readyz answers 503 until then).
    await source.start((chains) => applyChains(store, chains, logger, metrics), onRejected);
  } catch (error) {
    if (error instanceof ConfigError) metrics.reloads.inc({ result: 'rejected' });
    throw error;
  }
  const reload = (): Promise<boolean> => source.reload();
  const stopWatching = (): void => source.stop();

  const bodyBudget = new BodyBudget(options.bodyBudgetBytes);
  const tracing = await startTracing(options.tracing, { metrics, logger });
  metrics.trackBodyBudget(() => bodyBudget.held);

  let accepting = true;
  let inflight = 0;
  let idle: (() => void) | undefined;
  const api = await createApiApp(
    {
      store,
      breakers,
      logger,
      metrics,
      secrets: deps.secrets,
      bodyLimitBytes: options.bodyLimitBytes,
      bodyBudget,
      bodyTimeoutMs: options.requestTimeoutMs,
      tracing,
      clock,
      random: deps.random ?? Math.random,
      inflight: {
        enter: () => void inflight++,
        leave: () => {
          inflight--;
          if (inflight === 0) idle?.();
        },
      },
    },
    options,
  );
  const admin = createAdminApp({
    store,
    breakers,
    metrics,
    secrets: deps.secrets,
    allowedHosts: options.allowedHosts,
    accepting: () => accepting,
    ...(demo ? { demoUpstream: demo.url } : {}),
  });
  // Node's request timeout covers receiving a request, not answering it: streams of any length are not cut.
  const capEvents = (port: 'api' | 'admin'): CapEvents => ({
    onDrop: () => metrics.rejectedRequests.inc({ code: `max_connections_${port}` }),
    onEvict: () => metrics.connectionsEvicted.inc({ port }),
  });
  const apiServer = await listen(
    limitedServer(api, {
      requestTimeoutMs: options.requestTimeoutMs,
      routesTimeBodies: true,
      idleKeepAliveMs: API_IDLE_KEEP_ALIVE_MS,
      maxConnections: options.maxConnections,
      capEvents: capEvents('api'),
    }).listen(options.port, options.host),
  );
  const adminServer = await listen(
    limitedServer(admin, {
      requestTimeoutMs: options.requestTimeoutMs,
      routesTimeBodies: false,
      idleKeepAliveMs: ADMIN_IDLE_KEEP_ALIVE_MS,
      maxConnections: options.adminMaxConnections,
      capEvents: capEvents('admin'),
    }).listen(options.adminPort, options.adminHost),
  );

  // Once ready (both servers listen and a config is applied: at once with files, after the
  // first list in Kubernetes), the start's memory is given back, on the next turn. A request
  // in flight (a chain's once its body is read, a pass-through's) is not made to wait for the
  // collection: it is then skipped. Not later: a memory-reducing collection after the first
  // requests drops the maps their optimised code embeds, and the next requests recompile it on
  // their own thread (tried at 250 ms after ready: c=1 p99 78-85 ms against 4-7 ms; the ~20 ms
  // it adds to the start is the price; docs/bench/findings.md, "Start time, twelfth sitting").
  let releaseTimer: NodeJS.Timeout | undefined;
  const releaseOnceReady = (): void => {
    if (releaseTimer || !store.current || !accepting) return;
    releaseTimer = setTimeout(() => {
      if (inflight > 0) return logger.debug({ inflight }, 'start memory kept: requests in flight');
      logger.debug(releaseStartMemory(), 'start memory');
    }, 0);
    releaseTimer.unref();
  };
  const drain = async (): Promise<void> => {
    if (!accepting) return;
    accepting = false;
    clearTimeout(releaseTimer);
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
    stopDerived();
    // The spans of the requests just drained go out before the process ends (bounded by the export timeout).
    await tracing.shutdown();
    await demo?.close();
  };

  const apiUrl = urlOf(apiServer, options.host);
  const adminUrl = urlOf(adminServer, options.adminHost === '0.0.0.0' ? '127.0.0.1' : options.adminHost);
  logger.info(
    { api: apiUrl, admin: adminUrl, chains: [...(store.current?.chains.keys() ?? [])], config: options.configDir ?? 'kubernetes' },
    'llm-fallback serving',
  );
  releaseOnceReady();
  store.onApply(releaseOnceReady);
  return { apiUrl, adminUrl, store, breakers, metrics, reload, drain };
}

/**
 * `npm start` with no flags serves the bundled examples/, whose healthy steps call
 * `${DEMO_UPSTREAM_URL}`: unless that is set, a demo upstream in this process answers them, so
 * the first request shows a fallback with nothing else running. Never for any other config.
 */
async function demoUpstreamFor(options: ServeOptions, logger: Logger): Promise<DemoUpstream | undefined> {
  if (options.kubernetes || !options.configDir || path.resolve(options.configDir) !== EXAMPLES_DIR || options.env[DEMO_UPSTREAM_VARIABLE]) return undefined;
  const demo = await startDemoUpstream();
  logger.info(
    { url: demo.url },
    `embedded demo upstream: answers the examples' local steps (not a provider; set ${DEMO_UPSTREAM_VARIABLE} to use another upstream)`,
  );
  return demo;
}

async function configSource(options: ServeOptions, logger: Logger): Promise<ConfigSource> {
  if (options.kubernetes) {
    // Loaded only when needed: a sidecar that reads its chains from files has no use for the
    // watch client (nor, with http upstreams only, for the TLS it loads).
    const { kubernetesConfigSource } = await import('./k8s/chain-watcher.ts');
    return kubernetesConfigSource(options, logger);
  }
  if (!options.configDir) throw new ConfigError(['no configuration source: use --config DIR or --kubernetes']);
  return fileConfigSource(options.configDir, { env: options.env, credentialsDir: options.credentialsDir });
}

function applyChains(store: ConfigStore, chains: Chain[], logger: Logger, metrics: Metrics): void {
  const snapshot = store.apply(chains);
  metrics.reloads.inc({ result: 'applied' });
  for (const chain of chains) {
    for (const step of chain.steps) {
      const { keyProblem, keyProblemCode } = step.provider;
      if (keyProblem)
        logger.warn(
          { chain: chain.name, provider: step.provider.name, model: step.model, problem: keyProblem, problemCode: keyProblemCode },
          'step will be skipped: no API key',
        );
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
