// The admin port: metrics, probes and the active configuration (keys never shown). In a pod
// it listens on the pod IP for the kubelet and Prometheus, so /config, which shows the
// whole configuration, is served to loopback peers only; and every answer passes the known
// secrets' redactor.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ConfigStore } from '../chain/store.ts';
import { redactURL } from '../core/credentials.ts';
import type { Chain } from '../core/types.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import { describeTarget, effectiveOrder } from '../observability/route-view.ts';
import type { KnownSecrets } from '../observability/known-secrets.ts';
import type { Metrics } from '../observability/metrics.ts';
import { browserRefusal, loopbackOnlyRefusal, type Refusal } from './request-guard.ts';

export interface AdminDeps {
  store: ConfigStore;
  breakers: BreakerRegistry;
  metrics: Metrics;
  secrets: KnownSecrets;
  /** Host names a loopback peer may use besides localhost and IP literals (DNS rebinding). */
  allowedHosts: readonly string[];
  /** False while draining on SIGTERM. */
  accepting: () => boolean;
  /** The embedded demo upstream's URL, when it serves the examples (shown in /config so nobody mistakes it for a provider). */
  demoUpstream?: string;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const allowedHosts = new Set(deps.allowedHosts);
  app.use((req: Request, res: Response, next: NextFunction) => {
    const refused = browserRefusal({ headers: req.headers, peer: req.socket.remoteAddress }, allowedHosts);
    if (refused) refuse(res, refused);
    else next();
  });
  app.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    const snapshot = deps.store.current;
    if (!deps.accepting()) res.status(503).json({ ready: false, reason: 'draining' });
    else if (!snapshot) res.status(503).json({ ready: false, reason: 'no valid configuration loaded yet' });
    else res.json({ ready: true, configVersion: snapshot.version, chains: snapshot.chains.size });
  });
  app.get('/config', (req: Request, res: Response) => {
    const refused = loopbackOnlyRefusal({ headers: req.headers, peer: req.socket.remoteAddress }, '/config');
    if (refused) {
      refuse(res, refused);
      return;
    }
    const snapshot = deps.store.current;
    if (!snapshot) {
      res.status(503).json({ error: 'no configuration loaded yet' });
      return;
    }
    const body = JSON.stringify({
      ...(deps.demoUpstream
        ? { demoUpstream: { url: deps.demoUpstream, note: 'embedded in this process for the bundled examples only; not a provider' } }
        : {}),
      version: snapshot.version,
      loadedAt: snapshot.loadedAt.toISOString(),
      chains: [...snapshot.chains.values()].map((c) => describeChain(c, deps.breakers)),
    });
    // Last line of defence: a key a chain author wrote where it does not belong (a model name, a URL path).
    res.type('application/json').send(deps.secrets.redact(body));
  });
  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(deps.metrics.registry.contentType).send(deps.secrets.redact(await deps.metrics.registry.metrics()));
  });
  return app;
}

function refuse(res: Response, refusal: Refusal): void {
  res.status(refusal.status).json({ error: { message: refusal.message, type: 'invalid_request_error', code: refusal.code } });
}

/** A chain as an operator needs to see it: every setting, the key's source, never the key or URL credentials. */
export function describeChain(chain: Chain, breakers: BreakerRegistry): Record<string, unknown> {
  return {
    name: chain.name,
    namespace: chain.namespace ?? null,
    model: chain.model,
    source: chain.source,
    policy: { ...chain.policy, retryOn: [...chain.policy.retryOn], fallbackOn: [...chain.policy.fallbackOn] },
    circuitBreaker: chain.breaker,
    maxCostPerRequestUSD: chain.maxCostPerRequestUSD ?? null,
    steps: chain.steps.map((s) => ({
      provider: s.provider.name,
      api: s.provider.api,
      baseURL: redactURL(s.provider.baseURL),
      apiKey: {
        source: s.provider.keySource,
        present: s.provider.apiKey !== undefined,
        problem: s.provider.keyProblem ?? null,
        problemCode: s.provider.keyProblemCode ?? null,
      },
      headers: Object.keys(s.provider.headers),
      secretHeaders: s.provider.secretHeaders ?? [],
      model: s.model,
      retries: s.retries,
      timeouts: s.timeouts,
      price: s.price ?? null,
      circuit: breakers.state(s.target) ?? 'closed',
      ...describeTarget(s, breakers),
    })),
    effectiveOrder: effectiveOrder(chain, breakers),
  };
}
