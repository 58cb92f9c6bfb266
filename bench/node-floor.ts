// The floor for a proxy hop written in Node: the least a model-routing proxy must do, with
// nothing else (no chain, retry, breaker, log line, metric or translation). It reads the
// request body, parses it (a router must see `model`), substitutes the model, sends it to
// the upstream with Node's keep-alive client and pipes the answer back, streams included.
// The benchmark runs it beside llm-fallback with the same node flags, so the distance
// between the two is what llm-fallback's own work costs on this machine.
//
//   node bench/node-floor.ts --port 4100 --upstream http://127.0.0.1:4200/v1 --model bench-ok
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' }, model: { type: 'string' } }, strict: true });
const port = Number(values.port ?? 4100);
const upstream = new URL(`${(values.upstream ?? 'http://127.0.0.1:4200/v1').replace(/\/$/, '')}/chat/completions`);
const model = values.model ?? 'bench-ok';
const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo', maxFreeSockets: 256 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"not JSON"}}');
      return;
    }
    // A slow-stream request keeps its own model; everything else goes to the configured one.
    if (body['model'] !== 'slow-stream') body['model'] = model;
    const payload = Buffer.from(JSON.stringify(body));
    const outgoing = http.request(
      upstream,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length), authorization: 'Bearer sk-bench-not-a-secret' },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/json' });
        answer.pipe(res);
      },
    );
    outgoing.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end();
    });
    // The caller hung up before the answer ended: close the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    outgoing.end(payload);
  });
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  agent.destroy();
});
