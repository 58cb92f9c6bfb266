// `npm run bench:startup`: start to ready and idle RSS of the sidecar as the image starts it,
// beside a bare Node HTTP server (bench/lib/startup.ts measures; `npm run bench` runs the same
// cases and reports them against issue 16's targets). It measures what is built: run
// `npm run bundle` (or `npm run build` for --entry dist/src/cli.js) first.
//
//   node bench/startup.ts [--runs 7] [--dist dist] [--cases bare,config,kubernetes] [--entry dist/src/cli.js] [--without-compile-cache]
//
// The sidecar runs as the image runs it: the bundle (dist/bundle/llm-fallback.mjs) with a
// compile cache made as the Dockerfile makes it (`help` run once, then read). --entry measures
// another entry (the unbundled `npm run build` output: dist/src/cli.js), --without-compile-cache
// the start without the cache.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllSync, stopAll } from './lib/procs.ts';
import type { StartupCaseId } from './lib/report.ts';
import { IMAGE_FLAGS } from './lib/image-flags.ts';
import { STARTUP_CASE_IDS, measureStartup } from './lib/startup.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    dist: { type: 'string' },
    cases: { type: 'string' },
    entry: { type: 'string' },
    'without-compile-cache': { type: 'boolean' },
  },
  strict: true,
});
const runs = Number(values.runs ?? 7);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: "${values.runs}" is not a positive whole number`);
const dist = path.resolve(values.dist ?? path.join(ROOT, 'dist'));
const entry = values.entry ? path.resolve(values.entry) : path.join(dist, 'bundle', 'llm-fallback.mjs');
const cases = new Set<StartupCaseId>();
for (const name of (values.cases ?? STARTUP_CASE_IDS.join(',')).split(',')) {
  const id = STARTUP_CASE_IDS.find((c) => c === name.trim());
  if (!id) throw new Error(`--cases: unknown case "${name}" (known: ${STARTUP_CASE_IDS.join(', ')})`);
  cases.add(id);
}
const compileCache = values['without-compile-cache'] !== true;

process.on('exit', killAllSync);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'llm-fallback-startup-'));
try {
  console.log(
    `${runs} runs each, node flags ${IMAGE_FLAGS.join(' ')}, ${path.relative(ROOT, entry)} ${compileCache ? 'with' : 'without'} compile cache, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const results = await measureStartup({ runs, entry, compileCache, cases, scratch, log: (line) => console.log(line) });
  console.log(`pinned to core 0: ${results.pinned}`);
  if (results.cases.some((c) => !c.available)) process.exitCode = 1;
} finally {
  await stopAll();
  rmSync(scratch, { recursive: true, force: true });
}
