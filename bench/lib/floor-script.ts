// The Node floor (bench/node-floor.ts) as the plain JavaScript a minimal proxy would be.
// Run as .ts, Node strips its types with its bundled TypeScript stripper, whose WebAssembly
// module stays loaded: ~16 MB more RSS idle and under load (VmHWM at c=128: 113 against
// 97 MB as .js; docs/bench/findings.md). A real minimal proxy carries none of that, so the
// floor's memory would flatter every comparison with it. Its CPU per request is the same.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { transformSync } from 'esbuild';

const SOURCE = path.resolve(import.meta.dirname, '..', 'node-floor.ts');

/** Writes the floor, types removed and nothing else changed, into `dir`; its path. */
export function floorScript(dir: string): string {
  const { code } = transformSync(readFileSync(SOURCE, 'utf8'), { loader: 'ts', format: 'esm', target: 'node24', sourcefile: SOURCE });
  const file = path.join(dir, 'node-floor.mjs');
  writeFileSync(file, code);
  return file;
}
