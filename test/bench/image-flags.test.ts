// The benchmarks start Node with the image's flags (bench/lib/image-flags.ts) so that what they
// measure is what a pod runs: the list must be the Dockerfile's NODE_OPTIONS followed by the
// node flags of its ENTRYPOINT, word for word, and Node must accept NODE_OPTIONS as the image
// sets it (it refuses most V8 flags there, and would not start at all).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_FLAGS } from '../../bench/lib/image-flags.ts';
import { assignments, parseDockerfile } from '../support/dockerfile.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The image's NODE_OPTIONS and the node flags of its ENTRYPOINT, as the Dockerfile gives them. */
async function imageStart(): Promise<{ nodeOptions: string; entrypoint: string[]; entrypointFlags: string[] }> {
  const { instructions } = parseDockerfile(await readFile(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const options = instructions.filter((i) => i.op === 'ENV').flatMap((i) => assignments(i.args).get('NODE_OPTIONS') ?? []);
  assert.equal(options.length, 1, 'one ENV sets NODE_OPTIONS');
  const entrypoints = instructions.filter((i) => i.op === 'ENTRYPOINT');
  assert.equal(entrypoints.length, 1, 'one ENTRYPOINT');
  const entrypoint = JSON.parse(entrypoints[0]?.args ?? '[]') as string[];
  return { nodeOptions: options[0] ?? '', entrypoint, entrypointFlags: entrypoint.slice(1).filter((word) => word.startsWith('--')) };
}

test("the benchmarks' node flags are the image's NODE_OPTIONS and its ENTRYPOINT's node flags", async () => {
  const { nodeOptions, entrypoint, entrypointFlags } = await imageStart();
  assert.equal(entrypoint[0], 'node');
  assert.deepEqual(IMAGE_FLAGS, [...nodeOptions.split(/\s+/).filter(Boolean), ...entrypointFlags]);
});

test('Node starts with the NODE_OPTIONS and the node flags the image gives it', async () => {
  const { nodeOptions, entrypointFlags } = await imageStart();
  const run = spawnSync(process.execPath, [...entrypointFlags, '-e', 'process.exit(0)'], {
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
});
