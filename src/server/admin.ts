// The admin port: metrics, probes and the active configuration (keys never shown). In a pod
// it listens on the pod IP for the kubelet and Prometheus, so /config, which shows the
// whole configuration, is served to loopback peers only; and every answer passes the known
// secrets' redactor.
//
// The probes and /metrics are answered on Node's own request and response; Express, which
// serves the rest (/config, every other path, the probes' spelling variants), is loaded on the
// first request that needs it. Loading it at start cost every sidecar ~8 MB of idle memory
// and 30–40 ms of CPU at start (docs/bench/findings.md, "Start time and idle memory"), for
// routes only an operator calls; the kubelet and Prometheus never need it.
import type { RequestListener, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type { ConfigStore } from '../chain/store.ts';
import { redactURL } from '../core/credentials.ts';
import type { Chain } from '../core/types.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import { describeTarget, effectiveOrder } from '../observability/route-view.ts';
import type { KnownSecrets } from '../observability/known-secrets.ts';
import type { Metrics } from '../observability/metrics.ts';
import { sendText } from './http-io.ts';
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

/** A JSON answer: status and body, whoever writes it (Node's response here, Express's in the full app). */
interface Reply {
  status: number;
  body: unknown;
}

export function createAdminApp(deps: AdminDeps): RequestListener {
  const allowedHosts = new Set(deps.allowedHosts);
  let full: Promise<RequestListener> | undefined;
  return (req, res) => {
    // Before anything else, on every path: no browser may read the admin port.
    const refused = browserRefusal({ headers: req.headers, peer: req.socket.remoteAddress }, allowedHosts);
    if (refused) {
      sendJSON(res, refusalReply(refused), deps);
      return;
    }
    const path = req.method === 'GET' || req.method === 'HEAD' ? pathOf(req.url) : undefined;
    if (path === '/healthz') sendJSON(res, HEALTHY, deps);
    else if (path === '/readyz') sendJSON(res, readiness(deps), deps);
    else if (path === '/metrics') void sendMetrics(res, deps);
    else {
      full ??= expressAdminApp(deps);
      full.then(
        (app) => app(req, res),
        // Not expected (the module is part of the build); the operator's request gets an answer all the same.
        (error: unknown) =>
          sendJSON(res, { status: 500, body: { error: `admin routes unavailable: ${error instanceof Error ? error.message : String(error)}` } }, deps),
      );
    }
  };
}

const HEALTHY: Reply = { status: 200, body: { status: 'ok' } };

function readiness(deps: AdminDeps): Reply {
  const snapshot = deps.store.current;
  if (!deps.accepting()) return { status: 503, body: { ready: false, reason: 'draining' } };
  if (!snapshot) return { status: 503, body: { ready: false, reason: 'no valid configuration loaded yet' } };
  return { status: 200, body: { ready: true, configVersion: snapshot.version, chains: snapshot.chains.size } };
}

async function sendMetrics(res: ServerResponse, deps: AdminDeps): Promise<void> {
  let text: string;
  try {
    text = await deps.metrics.registry.metrics();
  } catch (error) {
    sendJSON(res, { status: 500, body: { error: `metrics unavailable: ${error instanceof Error ? error.message : String(error)}` } }, deps);
    return;
  }
  sendText(res, 200, {}, deps.metrics.registry.contentType, text, deps.secrets.redactor);
}

function sendJSON(res: ServerResponse, reply: Reply, deps: AdminDeps): void {
  sendText(res, reply.status, {}, 'application/json', JSON.stringify(reply.body), deps.secrets.redactor);
}

function refusalReply(refusal: Refusal): Reply {
  return { status: refusal.status, body: { error: { message: refusal.message, type: 'invalid_request_error', code: refusal.code } } };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Express, with every admin route: the probes' variants (`/readyz/`, `/READYZ`) answer as the probes do. */
async function expressAdminApp(deps: AdminDeps): Promise<RequestListener> {
  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  const reply = (res: Response, { status, body }: Reply): void => void res.status(status).json(body);
  app.get('/healthz', (_req: Request, res: Response) => reply(res, HEALTHY));
  app.get('/readyz', (_req: Request, res: Response) => reply(res, readiness(deps)));
  app.get('/config', (req: Request, res: Response) => {
    const refused = loopbackOnlyRefusal({ headers: req.headers, peer: req.socket.remoteAddress }, '/config');
    if (refused) {
      reply(res, refusalReply(refused));
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
  return (req, res) => {
    app(req, res);
  };
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
