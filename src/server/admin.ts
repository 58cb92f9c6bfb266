// The admin port: metrics, probes and the active configuration (keys never shown).
import express, { type Request, type Response } from 'express';
import type { ConfigStore } from '../chain/store.ts';
import type { Chain } from '../core/types.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import { describeTarget, effectiveOrder } from '../engine/route-view.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface AdminDeps {
  store: ConfigStore;
  breakers: BreakerRegistry;
  metrics: Metrics;
  /** False while draining on SIGTERM. */
  accepting: () => boolean;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    const snapshot = deps.store.current;
    if (!deps.accepting()) res.status(503).json({ ready: false, reason: 'draining' });
    else if (!snapshot) res.status(503).json({ ready: false, reason: 'no valid configuration loaded yet' });
    else res.json({ ready: true, configVersion: snapshot.version, chains: snapshot.chains.size });
  });
  app.get('/config', (_req: Request, res: Response) => {
    const snapshot = deps.store.current;
    if (!snapshot) {
      res.status(503).json({ error: 'no configuration loaded yet' });
      return;
    }
    res.json({
      version: snapshot.version,
      loadedAt: snapshot.loadedAt.toISOString(),
      chains: [...snapshot.chains.values()].map((c) => describeChain(c, deps.breakers)),
    });
  });
  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return app;
}

/** A chain as an operator needs to see it: every setting, the key's source, never the key. */
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
      baseURL: s.provider.baseURL,
      apiKey: { source: s.provider.keySource, present: s.provider.apiKey !== undefined, problem: s.provider.keyProblem ?? null, problemCode: s.provider.keyProblemCode ?? null },
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
