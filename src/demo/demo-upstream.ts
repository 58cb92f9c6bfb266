// The embedded demo upstream: a small OpenAI-compatible server inside the proxy's own process,
// started only when `serve` serves the bundled examples/ (so `npm ci && npm start` shows a
// fallback with nothing else running). It is not a provider and never serves a real chain:
// it answers "Hello from <model>" for chat completions (plain and streamed) and embeddings,
// and a model named `fault:503` fails its first request with 503 (the demo-flaky chain).
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import type { AddressInfo } from 'node:net';

export interface DemoUpstream {
  /** Base URL, `http://127.0.0.1:PORT/v1`. */
  url: string;
  close(): Promise<void>;
}

/** What the examples' `${DEMO_UPSTREAM_URL}` expands to when the demo upstream serves them. */
export const DEMO_UPSTREAM_VARIABLE = 'DEMO_UPSTREAM_URL';

export async function startDemoUpstream(): Promise<DemoUpstream> {
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    readJson(req).then(
      (body) => answer(req, res, body, seen),
      () => send(res, 400, { error: { message: 'the demo upstream reads JSON bodies only', type: 'invalid_request_error', code: null, param: null } }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function answer(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, seen: Map<string, number>): void {
  const path = (req.url ?? '').split('?')[0];
  const model = typeof body['model'] === 'string' ? body['model'] : 'demo';
  if (req.method === 'GET' && path === '/v1/models') {
    return send(res, 200, { object: 'list', data: [{ id: 'demo-model', object: 'model', created: 0, owned_by: 'llm-fallback-demo' }] });
  }
  if (req.method !== 'POST') return send(res, 404, error(`no route ${req.method ?? ''} ${path ?? ''} on the demo upstream`));
  const count = (seen.get(model) ?? 0) + 1;
  seen.set(model, count);
  if (model.startsWith('fault:503') && count === 1) {
    return send(res, 503, { error: { message: 'The demo upstream fails the first request for this model.', type: 'server_error', code: null, param: null } });
  }
  if (path === '/v1/embeddings') {
    return send(res, 200, {
      object: 'list',
      model,
      data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
  }
  if (path !== '/v1/chat/completions') return send(res, 404, error(`no route POST ${path ?? ''} on the demo upstream`));
  const text = `Hello from ${model}`;
  const id = `chatcmpl-demo-${count}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 };
  if (body['stream'] !== true) {
    return send(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage,
    });
  }
  const chunk = (delta: Record<string, unknown>, finish: string | null, withUsage = false): string =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }], ...(withUsage ? { usage } : {}) })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunk({ role: 'assistant', content: '' }, null));
  for (const word of text.split(/(?<= )/)) res.write(chunk({ content: word }, null));
  res.write(chunk({}, 'stop'));
  const options = body['stream_options'];
  if (typeof options === 'object' && options !== null && (options as Record<string, unknown>)['include_usage'] === true) {
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}

function error(message: string): unknown {
  return { error: { message, type: 'invalid_request_error', code: null, param: null } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Demo traffic only: anything large is not for this server.
    if (size > 1024 * 1024) throw new Error('too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  return parsed as Record<string, unknown>;
}
