// The shipped build for tests that run it as the image does: `scripts/bundle.ts` into a fresh
// folder inside the repository (.tmp/ is git-ignored, beside the other build output).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');

/** Bundles into a new folder named after `prefix` under .tmp/; its path (the entry is `llm-fallback.mjs` in it). The caller removes it. */
export async function buildBundle(prefix: string): Promise<string> {
  await mkdir(path.join(ROOT, '.tmp'), { recursive: true });
  const dir = await mkdtemp(path.join(ROOT, '.tmp', prefix));
  await promisify(execFile)(NODE, [path.join(ROOT, 'scripts', 'bundle.ts'), '--outdir', dir], { cwd: ROOT });
  return dir;
}
