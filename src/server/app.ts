// The API the app calls: chain endpoints (OpenAI's and Anthropic's /v1/messages),
// pass-through for the rest of /v1, and errors in the caller's shape (Anthropic's on
// /v1/messages, OpenAI's elsewhere) for everything that goes wrong before a chain runs.
import express, { type NextFunction, type Request, type Response } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { anthropicCaller, openAICaller } from './callers.ts';
import { chainHandler, messagesHandler, sendError, type HandlerDeps } from './chain-handler.ts';
import { openAIError } from './openai-errors.ts';

export interface AppOptions {
  bodyLimitBytes: number;
  /** Base URL (ending in /v1 or not) that other /v1/* requests go to, unchanged. */
  defaultUpstream?: string;
}

export function createApiApp(deps: HandlerDeps, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Parse whatever the content-type says: SDKs always send JSON, curl users often forget the header.
  const json = express.json({ limit: options.bodyLimitBytes, type: () => true, strict: false });
  app.post('/v1/chat/completions', json, chainHandler('chat', deps));
  app.post('/v1/completions', json, chainHandler('completions', deps));
  app.post('/v1/embeddings', json, chainHandler('embeddings', deps));
  app.post('/v1/messages', json, messagesHandler(deps));
  if (options.defaultUpstream) app.use('/v1', passThrough(options.defaultUpstream, deps));
  app.use((req: Request, res: Response) => {
    sendError(res, openAIError(404, `no route for ${req.method} ${req.path}: chains serve POST /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/messages${options.defaultUpstream ? '' : ', and no default upstream is configured for anything else'}`, 'not_found'));
  });
  app.use(bodyErrors(options.bodyLimitBytes));
  return app;
}

function passThrough(target: string, deps: HandlerDeps) {
  return createProxyMiddleware<Request, Response>({
    target: target.replace(/\/v1\/?$/, '') + '/v1',
    changeOrigin: true,
    proxyTimeout: 120_000,
    on: {
      error: (error, _req, res) => {
        deps.logger.warn({ err: error.message, target }, 'pass-through to the default upstream failed');
        if ('headersSent' in res && !res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify(openAIError(502, `the default upstream could not be reached: ${error.message}`, 'upstream_unreachable', 'server_error').body));
        }
      },
    },
  });
}

interface BodyParserError { type?: string; status?: number; message?: string }

function bodyErrors(limit: number) {
  return (error: BodyParserError, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(error);
    const caller = req.path === '/v1/messages' ? anthropicCaller : openAICaller;
    if (error.type === 'entity.too.large') return sendError(res, openAIError(413, `the request body is larger than the limit of ${limit} bytes`, 'body_too_large'), caller);
    if (error.type === 'entity.parse.failed') return sendError(res, openAIError(400, `the request body is not valid JSON: ${error.message ?? ''}`.trim(), 'invalid_json'), caller);
    if (error.type === 'encoding.unsupported' || error.type === 'charset.unsupported') return sendError(res, openAIError(415, error.message ?? 'unsupported encoding', 'unsupported_encoding'), caller);
    if (error.type === 'request.aborted') return;
    sendError(res, openAIError(error.status && error.status < 500 ? error.status : 500, error.message ?? 'internal error', 'internal_error', 'server_error'), caller);
  };
}
