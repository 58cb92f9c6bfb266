// Express is loaded on the first request that needs it, not at start: the probes, /metrics and
// the chain routes are answered without it (it costs every sidecar ~8 MB of idle memory,
// docs/bench/findings.md). Checked in a fresh process (a test process has Express loaded long
// before): what the module cache holds after each kind of request, that the answers Express
// used to give are given the same way without it, and that a request arriving while Express
// loads (a pass-through POST) keeps its body.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');

// The child: the proxy in-process (as `serve --config` runs it), then requests in order, each
// followed by whether Express is in the module cache. One JSON line on stdout.
const CHILD = `
import { createRequire } from 'node:module';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
const root = process.argv[1];
const defaultUpstream = process.argv[2];
const { parseServeOptions } = await import(root + 'src/config/options.ts');
const { KnownSecrets } = await import(root + 'src/observability/known-secrets.ts');
const { createLogger } = await import(root + 'src/observability/logger.ts');
const { startServe } = await import(root + 'src/serve.ts');
const cache = createRequire(root + 'package.json').cache;
const expressLoaded = () => Object.keys(cache).some((file) => file.includes(path.sep + path.join('node_modules', 'express') + path.sep));
const dir = await mkdtemp(path.join(tmpdir(), 'llmfb-express-'));
await writeFile(path.join(dir, 'chains.yaml'), JSON.stringify({
  apiVersion: 'llmfallback.io/v1alpha1', kind: 'FallbackChain', metadata: { name: 'c' },
  spec: { providers: [{ name: 'p', baseURL: 'http://127.0.0.1:9/v1', apiKey: { env: 'K' } }], steps: [{ provider: 'p', model: 'm' }] },
}));
const options = parseServeOptions(['--config', dir, '--port', '0', '--admin-port', '0', '--credentials-dir', path.join(dir, 'none'), '--default-upstream', defaultUpstream], { K: 'sk-test' });
const secrets = new KnownSecrets();
const server = await startServe(options, { logger: createLogger('silent', undefined, secrets), secrets });
const steps = [['start', null, expressLoaded()]];
async function call(name, url, init) {
  const res = await fetch(url, init);
  const body = await res.text();
  steps.push([name, { status: res.status, type: res.headers.get('content-type'), length: res.headers.get('content-length'), body }, expressLoaded()]);
}
await call('healthz', server.adminUrl + '/healthz');
await call('readyz', server.adminUrl + '/readyz?verbose=1');
await call('readyz HEAD', server.adminUrl + '/readyz', { method: 'HEAD' });
await call('metrics', server.adminUrl + '/metrics');
await call('browser', server.adminUrl + '/readyz', { headers: { origin: 'https://evil.example' } });
await call('chain', server.apiUrl + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"c","messages":[]}' });
await call('pass-through', server.apiUrl + '/v1/files', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'kept while Express loads' });
await call('readyz/', server.adminUrl + '/readyz/');
await call('config', server.adminUrl + '/config');
await server.drain();
process.stdout.write(JSON.stringify(steps) + '\\n');
`;

type Step = [name: string, answer: { status: number; type: string | null; length: string | null; body: string } | null, expressLoaded: boolean];

let upstream: Server;
let steps: Map<string, { answer: Step[1]; expressLoaded: boolean }>;

before(async () => {
  // The default upstream: echoes the body it was sent.
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`));
  }).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const { port } = upstream.address() as AddressInfo;
  const { stdout } = await execFileAsync(NODE, ['--input-type=module', '-e', CHILD, ROOT, `http://127.0.0.1:${port}/v1`], { cwd: ROOT });
  steps = new Map((JSON.parse(stdout) as Step[]).map(([name, answer, expressLoaded]) => [name, { answer, expressLoaded }]));
});

after(async () => {
  upstream?.close();
  if (upstream) await once(upstream, 'close');
});

test('probes, /metrics, refusals and chain routes are answered without loading Express', () => {
  for (const name of ['start', 'healthz', 'readyz', 'readyz HEAD', 'metrics', 'browser', 'chain']) {
    assert.equal(steps.get(name)?.expressLoaded, false, `Express loaded by ${name}`);
  }
});

test('the probes answer as Express did: JSON in UTF-8 with a length, HEAD without a body, any query', () => {
  assert.deepEqual(steps.get('healthz')?.answer, { status: 200, type: 'application/json; charset=utf-8', length: '15', body: '{"status":"ok"}' });
  const ready = '{"ready":true,"configVersion":1,"chains":1}';
  assert.deepEqual(steps.get('readyz')?.answer, { status: 200, type: 'application/json; charset=utf-8', length: String(ready.length), body: ready });
  assert.deepEqual(steps.get('readyz HEAD')?.answer, { status: 200, type: 'application/json; charset=utf-8', length: String(ready.length), body: '' });
  const metrics = steps.get('metrics')?.answer;
  assert.equal(metrics?.status, 200);
  assert.equal(metrics?.type, 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(metrics?.body ?? '', /^llm_fallback_config_reloads_total\{result="applied"\} 1$/m);
  const browser = steps.get('browser')?.answer;
  assert.equal(browser?.status, 403);
  assert.equal((JSON.parse(browser?.body ?? '{}') as { error: { code: string } }).error.code, 'cross_site_request');
});

test('the first request for another route loads Express; one waiting for it keeps its body', () => {
  assert.deepEqual(steps.get('pass-through')?.answer?.body, 'POST /v1/files kept while Express loads');
  assert.equal(steps.get('pass-through')?.expressLoaded, true);
  // Spelling variants of the probes are Express's (non-strict routing), answered the same.
  assert.deepEqual(steps.get('readyz/')?.answer?.body, '{"ready":true,"configVersion":1,"chains":1}');
  const config = steps.get('config')?.answer;
  assert.equal(config?.status, 200);
  assert.equal((JSON.parse(config?.body ?? '{}') as { chains: Array<{ name: string }> }).chains[0]?.name, 'c');
});
