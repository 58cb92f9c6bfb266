// The bundle the image runs (`npm run bundle`) leaves Node's HTTP/2 module unloaded: undici's
// connection requires its HTTP/2 half at load, and that half loads `node:http2` (~8 ms of every
// start's CPU with the image's flags, and ~2 MB of idle RSS; docs/bench/findings.md, "Start time,
// twelfth sitting"). scripts/bundle.ts makes it load at the first HTTP/2 connection instead, which
// the sidecar never makes (`allowH2: false`). Checked in a real `serve --config` of the bundle
// with the image's flags, through a request answered by an upstream, until it exits on SIGTERM;
// what Node loaded is read from `process.moduleLoadList` as the process exits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { IMAGE_FLAGS } from '../../bench/lib/image-flags.ts';
import { serveFlags } from '../../bench/lib/procs.ts';
import { buildBundle } from '../support/bundle-build.ts';
import { childEnv } from '../support/child-env.ts';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { chainYaml } from '../support/proxy-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');

let dir: string;
let buildDir: string;
let upstream: FaultUpstream;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-bundle-start-'));
  buildDir = await buildBundle('bundle-start-');
  upstream = await startFaultUpstream();
  await mkdir(path.join(dir, 'config'));
  await writeFile(path.join(dir, 'config', 'chains.yaml'), chainYaml({ name: 'c', baseURL: upstream.url, steps: [{ model: 'ok' }] }));
  // Written as the process exits: every built-in module it loaded, from start to drain.
  await writeFile(
    path.join(dir, 'loaded.mjs'),
    `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(path.join(dir, 'loaded.json'))}, JSON.stringify(process.moduleLoadList)));\n`,
  );
});

after(async () => {
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

test('serve --config from the bundle answers through undici without loading node:http2', { timeout: 60_000 }, async () => {
  const args = [
    ...IMAGE_FLAGS,
    '--import',
    path.join(dir, 'loaded.mjs'),
    path.join(buildDir, 'llm-fallback.mjs'),
    'serve',
    '--config',
    path.join(dir, 'config'),
    ...serveFlags(0, 0, path.join(dir, 'none')),
  ];
  const child = spawn(NODE, args, { cwd: dir, env: { ...childEnv({ keepNodeOptions: false }), NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let apiUrl: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry['msg'] === 'llm-fallback serving') {
        apiUrl = String(entry['api']);
        break;
      }
    }
    assert.ok(apiUrl, 'serve said where it serves');
    const answer = await fetch(`${apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'c', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(answer.status, 200, await answer.text());
    assert.equal(upstream.requestsFor('ok').length, 1, 'the answer came from the upstream');
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    const loaded = new Set(JSON.parse(await readFile(path.join(dir, 'loaded.json'), 'utf8')) as string[]);
    assert.ok(loaded.has('NativeModule http'), 'the list names the built-ins loaded');
    assert.equal(loaded.has('NativeModule http2'), false, 'node:http2 was loaded');
  } finally {
    child.kill('SIGKILL');
  }
});
