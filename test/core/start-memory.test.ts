// Once `serve` is ready it asks V8, once, for a collection that reduces memory
// (src/core/start-memory.ts). Checked on the function's call and in real `serve` processes,
// with and without --expose-gc: the collection must shrink V8's heap (a regular major one
// would not give back the grown new space), and without the flag nothing is called.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { releaseStartMemory, START_MEMORY_OUTCOME } from '../../src/core/start-memory.ts';
import { childEnv } from '../support/child-env.ts';
import { chainYaml } from '../support/proxy-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const CLI = path.join(ROOT, 'src/cli.ts');

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-start-memory-'));
  await writeFile(path.join(dir, 'chains.yaml'), chainYaml({ name: 'c', baseURL: 'http://127.0.0.1:9/v1', steps: [{ model: 'm' }] }));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('asks for one synchronous last-resort major collection; without the collector, does nothing', () => {
  const calls: unknown[] = [];
  const gc = ((options?: unknown) => void calls.push(options)) as NodeJS.GCFunction;
  const released = releaseStartMemory(gc);
  assert.deepEqual(calls, [{ type: 'major', flavor: 'last-resort', execution: 'sync' }]);
  assert.equal(released.outcome, START_MEMORY_OUTCOME.released);
  assert.deepEqual(releaseStartMemory(undefined), { outcome: START_MEMORY_OUTCOME.unavailable });
});

/** Starts `serve`, returns its "start memory" debug line (the process is then stopped). */
async function startMemoryLine(nodeFlags: string[]): Promise<Record<string, unknown>> {
  const env = childEnv({ keepNodeOptions: false });
  const args = [
    ...nodeFlags,
    CLI,
    'serve',
    '--config',
    dir,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--credentials-dir',
    path.join(dir, 'none'),
    '--log-level',
    'debug',
  ];
  const child = spawn(NODE, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout });
    const order: string[] = [];
    for await (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      order.push(String(entry['msg']));
      if (entry['msg'] === 'start memory') {
        // After the server said it serves: ready first, then the collection.
        assert.ok(order.includes('llm-fallback serving'), order.join(' | '));
        return entry;
      }
    }
    throw new Error(`serve ended without a "start memory" line: ${order.join(' | ')}`);
  } finally {
    child.kill('SIGKILL');
  }
}

test('serve --expose-gc gives back the memory of its start once it is ready', { timeout: 60_000 }, async () => {
  const line = await startMemoryLine(['--expose-gc', '--max-semi-space-size=4']);
  assert.equal(line['outcome'], START_MEMORY_OUTCOME.released);
  const heap = line['heapTotalMB'] as { before: number; after: number };
  // The start grows the new space to its maximum (2 × 4 MB here); the collection shrinks it
  // back to its first size, besides what it frees in the old space.
  assert.ok(heap.after <= heap.before - 4, `V8's heap ${heap.before} -> ${heap.after} MB`);
});

test('serve without --expose-gc calls nothing and says so', { timeout: 60_000 }, async () => {
  const line = await startMemoryLine([]);
  assert.equal(line['outcome'], START_MEMORY_OUTCOME.unavailable);
  assert.equal(line['heapTotalMB'], undefined);
});
