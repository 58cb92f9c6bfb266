// Every other /v1/* request, passed unchanged to --default-upstream (e.g. GET /v1/models).
import type { Request, RequestHandler, Response } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Logger } from '../observability/logger.ts';
import { openAIError } from './openai-errors.ts';

export function passThrough(target: string, logger: Logger): RequestHandler {
  return createProxyMiddleware<Request, Response>({
    target: target.replace(/\/v1\/?$/, '') + '/v1',
    changeOrigin: true,
    proxyTimeout: 120_000,
    on: {
      error: (error, _req, res) => {
        logger.warn({ err: error.message, target }, 'pass-through to the default upstream failed');
        if ('headersSent' in res && !res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify(openAIError(502, `the default upstream could not be reached: ${error.message}`, 'upstream_unreachable', 'server_error').body));
        }
      },
    },
  });
}
