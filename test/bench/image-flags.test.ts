// The benchmarks start Node with the image's flags (bench/lib/image-flags.ts) so that what they
// measure is what a pod runs: the list must be the Dockerfile's NODE_OPTIONS, word for word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_FLAGS } from '../../bench/lib/image-flags.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test("the benchmarks' node flags are the image's NODE_OPTIONS", async () => {
  const dockerfile = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
  // Instructions, with their continued lines joined.
  const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const options = instructions
    .filter((line) => line.startsWith('ENV '))
    .map((line) => /NODE_OPTIONS="([^"]*)"/.exec(line)?.[1])
    .filter((value) => value !== undefined);
  assert.equal(options.length, 1, 'one ENV sets NODE_OPTIONS');
  assert.deepEqual(IMAGE_FLAGS, (options[0] ?? '').split(/\s+/).filter(Boolean));
});
