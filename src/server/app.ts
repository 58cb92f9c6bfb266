// The API the app calls: the chain routes of every caller codec in the wire registry
// (OpenAI's, Anthropic's /v1/messages…), pass-through for the rest of /v1, and errors in the
// caller's shape (the codec claiming the path: Anthropic's on /v1/messages, OpenAI's
// elsewhere) for everything that goes wrong before a chain runs.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type { CallerCodec } from '../wire/codec.ts';
import { CALLER_ROUTES, callerForPath } from '../wire/registry.ts';
import { chainHandler, sendError, type ChainRoute, type HandlerDeps } from './chain-handler.ts';
import { openAIError } from './openai-errors.ts';
import type { ConfigSnapshot } from '../chain/store.ts';
import { statelessMessage, STATEFUL_REQUEST_CODE } from '../wire/openai-responses/request.ts';
import { sendText } from './http-io.ts';
import { listModels, retrieveModel, type ModelsReply } from './models.ts';
import { browserRefusal, contentTypeRefusal, type Refusal } from './request-guard.ts';

export interface AppOptions {
  /** Base URL (ending in /v1 or not) that other /v1/* requests go to, unchanged. */
  defaultUpstream?: string;
  /** Host names a loopback peer may use besides localhost and IP literals (DNS rebinding). */
  allowedHosts: readonly string[];
}

/**
 * The API server's request listener. The chain routes are looked up by exact path before
 * Express sees the request: they run on every request and read their own body, so the
 * router and body-parser would only add work. Express serves everything else (and the
 * chain routes' spelling variants, with the same handlers); it is loaded on the first
 * request that needs it, like the admin port's (src/server/admin.ts says why). A request
 * waiting for it is not read meanwhile, so its body is kept for the pass-through.
 */
export async function createApiApp(deps: HandlerDeps, options: AppOptions): Promise<RequestListener> {
  const routes = new Map<string, ChainRoute>(CALLER_ROUTES.map((route) => [route.path, guarded(chainHandler(route, deps), deps, route.caller)]));
  // http-proxy-middleware is loaded only when there is a default upstream (~2 MB of RSS otherwise).
  const passThrough = options.defaultUpstream ? (await import('./pass-through.ts')).passThrough(options.defaultUpstream, deps.logger) : undefined;
  let app: Promise<RequestListener> | undefined;
  const allowedHosts = new Set(options.allowedHosts);
  return (req, res) => {
    const path = pathOf(req.url);
    // Before anything else, on every path (the pass-through too): no browser may drive the proxy.
    const refused = browserRefusal({ headers: req.headers, peer: req.socket.remoteAddress }, allowedHosts);
    if (refused) {
      refuse(res, refused, callerForPath(path), deps);
      return;
    }
    const route = req.method === 'POST' ? routes.get(path) : undefined;
    if (route) {
      void route(req, res);
      return;
    }
    // In flight until its answer is over, so a drain waits for it (a pass-through request
    // to the default upstream can take minutes).
    deps.inflight.enter();
    res.once('close', () => deps.inflight.leave());
    app ??= expressApp(routes, passThrough, options, deps);
    app.then(
      (serve) => serve(req, res),
      // Not expected (the module is part of the build); the caller gets an answer in its shape all the same.
      (error: unknown) =>
        sendError(
          res,
          openAIError(500, `internal error in llm-fallback: ${error instanceof Error ? error.message : String(error)}`, 'internal_error', 'server_error'),
          callerForPath(path),
          deps.secrets,
        ),
    );
  };
}

async function expressApp(
  routes: Map<string, ChainRoute>,
  passThrough: RequestHandler | undefined,
  options: AppOptions,
  deps: HandlerDeps,
): Promise<RequestListener> {
  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const [path, route] of routes) app.post(path, (req: Request, res: Response) => void route(req, res));
  // Without a default upstream the chains are the models; with one, its own list is passed through as before.
  if (!passThrough) {
    app.get('/v1/models', (req: Request, res: Response) => models(req, res, deps, (snapshot, anthropic) => listModels(snapshot, anthropic)));
    app.get('/v1/models/:id', (req: Request, res: Response) =>
      models(req, res, deps, (snapshot, anthropic) => retrieveModel(snapshot, String(req.params['id']), anthropic)),
    );
  }
  // A stored response (retrieve, delete, cancel, input items) needs state the sidecar does not keep.
  app.all(/^\/v1\/responses\/.+/, (req: Request, res: Response) => {
    sendError(
      res,
      openAIError(
        400,
        statelessMessage(`${req.method} ${req.path} reads a response stored on the server`),
        STATEFUL_REQUEST_CODE,
        'invalid_request_error',
        'response_id',
      ),
      callerForPath(req.path),
      deps.secrets,
    );
  });
  if (passThrough) app.use('/v1', passThrough);
  app.use((req: Request, res: Response) => {
    sendError(
      res,
      openAIError(
        404,
        `no route for ${req.method} ${req.path}: chains serve POST ${routeList()}${options.defaultUpstream ? '' : ' and GET /v1/models, and no default upstream is configured for anything else'}`,
        'not_found',
      ),
      callerForPath('/'),
      deps.secrets,
    );
  });
  return (req, res) => {
    app(req, res);
  };
}

/** "/v1/chat/completions, /v1/completions, /v1/embeddings and /v1/messages" */
function routeList(): string {
  const paths = CALLER_ROUTES.map((route) => route.path);
  return paths.length > 1 ? `${paths.slice(0, -1).join(', ')} and ${paths[paths.length - 1]}` : (paths[0] ?? '');
}

/** GET /v1/models…: Anthropic's shape for Anthropic clients (they send anthropic-version), OpenAI's otherwise. */
function models(req: Request, res: Response, deps: HandlerDeps, reply: (snapshot: ConfigSnapshot, anthropic: boolean) => ModelsReply): void {
  const anthropic = req.headers['anthropic-version'] !== undefined;
  const snapshot = deps.store.current;
  if (!snapshot) {
    sendError(res, openAIError(503, 'no configuration loaded yet', 'not_ready', 'server_error'), callerForPath(anthropic ? '/v1/messages' : '/'), deps.secrets);
    return;
  }
  const { status, body } = reply(snapshot, anthropic);
  sendText(res, status, {}, 'application/json', JSON.stringify(body), deps.secrets.redactor);
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function refuse(res: ServerResponse, refusal: Refusal, caller: CallerCodec, deps: HandlerDeps): void {
  sendError(res, openAIError(refusal.status, refusal.message, refusal.code), caller, deps.secrets);
}

/**
 * A chain route: JSON bodies only (a page cannot send one cross-site without a preflight).
 * A bug in a handler answers 500 in the caller's shape (when nothing was sent yet) and is
 * logged, never crashes the sidecar.
 */
function guarded(route: ChainRoute, deps: HandlerDeps, caller: CallerCodec): ChainRoute {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const refused = contentTypeRefusal(req.headers);
    if (refused) {
      refuse(res, refused, caller, deps);
      return;
    }
    try {
      await route(req, res);
    } catch (error) {
      deps.logger.error({ err: error instanceof Error ? error.message : String(error), url: req.url }, 'request failed inside the proxy');
      if (!res.headersSent) sendError(res, openAIError(500, 'internal error in llm-fallback', 'internal_error', 'server_error'), caller, deps.secrets);
      else res.destroy();
    }
  };
}
