// `npm run bundle`: the command line as one ES module, dist/bundle/llm-fallback.mjs, which the
// image runs (`npm start` and `node src/cli.ts` still run the sources). A dozen files instead
// of the ~340 modules `serve --config` loads: no module resolution, fewer reads and compiles
// (docs/bench/findings.md, "Start time and idle memory"). What only some commands or routes
// load (the Kubernetes client and the controller, Express, the OpenTelemetry SDK, the
// pass-through) is imported dynamically in the sources and stays so: esbuild puts it in
// chunks next to the entry (dist/bundle/chunks/), read only by the processes that use it.
// Every package is bundled, so the image needs no node_modules; their licences are collected
// in dist/bundle/THIRD-PARTY-LICENSES.txt.
//
// The code is written without whitespace or comments (names are kept, so stack traces still
// name their functions): V8 holds the source of every loaded module as a string, and the
// modules `serve` loads at start were 1.9 MB of it; without whitespace they are ~0.7 MB
// smaller in every pod (docs/bench/findings.md, "tenth sitting"). `--readable` writes the
// bundle as before, one line per statement with each module's path above it, for profiles.
//
//   node scripts/bundle.ts [--outdir dist/bundle] [--readable]
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Metafile, type Plugin } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE_ENTRY = 'llm-fallback.mjs';
export const LICENSES_FILE = 'THIRD-PARTY-LICENSES.txt';

/**
 * A plugin that, in the files `filter` matches, replaces the text `from` with `to` once, and
 * fails the build when a file no longer has `from` (a changed source or package version), so
 * that a rewrite can never silently stop applying.
 */
function rewrite(name: string, filter: RegExp, from: string, to: string, loader: 'js' | 'ts'): Plugin {
  return {
    name,
    setup(builder) {
      builder.onLoad({ filter }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes(from)) throw new Error(`${args.path} no longer has "${from}": update scripts/bundle.ts`);
        return { contents: source.replace(from, to), loader };
      });
    },
  };
}

/**
 * src/core/node-http.ts, src/core/yaml.ts, src/observability/prom.ts and src/upstream/undici-pool.ts load with a `require`
 * made by `createRequire(import.meta.url)` (why: their own comments). esbuild bundles only
 * calls to the free `require`, so in the bundle that line is dropped: prom-client's and undici's
 * files and yaml are then bundled (yaml evaluated at its first require), and `require('node:http')`
 * stays a CommonJS load of the built-in (the banner's require), as in the sources.
 */
const bundledRequire = rewrite(
  'bundled-require',
  /[\\/]src[\\/](core[\\/](node-http|yaml)|observability[\\/]prom|upstream[\\/]undici-pool)\.ts$/,
  'const require = createRequire(import.meta.url);',
  '',
  'ts',
);

/**
 * undici's connection (lib/dispatcher/client.js) requires its HTTP/2 half at load, and that
 * loads Node's `node:http2`: ~8 ms of a start's CPU with the image's flags, under which Node's
 * own modules load about twice as slowly as without them, and ~2 MB of idle RSS
 * (docs/bench/findings.md, "Start time, twelfth sitting"). The sidecar's upstream pool is made
 * with `allowH2: false` (src/upstream/http.ts), so an HTTP/2 connection is never made and the
 * HTTP/2 half is not needed; in the bundle it is required at the first HTTP/2 connection
 * instead, were one ever made. test/integration/bundle-start.test.ts checks that a started
 * bundle has not loaded it.
 */
const lazyHttp2 = rewrite(
  'lazy-undici-http2',
  /[\\/]node_modules[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/,
  "const connectH2 = require('./client-h2.js')",
  "const connectH2 = (client, socket) => require('./client-h2.js')(client, socket)",
  'js',
);

export async function bundle(outdir: string, { readable = false }: { readable?: boolean } = {}): Promise<void> {
  const { metafile } = await build({
    entryPoints: { [path.basename(BUNDLE_ENTRY, '.mjs')]: path.join(ROOT, 'src', 'cli.ts') },
    absWorkingDir: ROOT,
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // The bundled CommonJS packages (express, pino, prom-client…) call require() for Node's
    // built-ins; an ES module has no require of its own.
    banner: { js: "import { createRequire as __llmFallbackCreateRequire } from 'node:module'; const require = __llmFallbackCreateRequire(import.meta.url);" },
    plugins: [bundledRequire, lazyHttp2],
    legalComments: 'none',
    minifyWhitespace: !readable,
    metafile: true,
    logLevel: 'warning',
  });
  await writeFile(path.join(outdir, LICENSES_FILE), await licenses(metafile));
}

/** Each bundled package's name, version, licence and licence text (the text ships with the code). */
async function licenses(metafile: Metafile): Promise<string> {
  const packageDirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1]) packageDirs.add(path.resolve(ROOT, match[1]));
  }
  const sections: string[] = [];
  for (const dir of [...packageDirs].sort()) {
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
    const file = readdirSync(dir).find((name) => /^(licen[cs]e|copying)(\.|$)/i.test(name));
    const text = file && existsSync(path.join(dir, file)) ? (await readFile(path.join(dir, file), 'utf8')).trim() : '(no licence file in the package)';
    sections.push(`${pkg.name}@${pkg.version} (${pkg.license ?? 'licence not declared'})\n\n${text}`);
  }
  return `Packages bundled into llm-fallback.mjs and its chunks:\n\n${sections.join(`\n\n${'-'.repeat(78)}\n\n`)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, readable: { type: 'boolean' } }, strict: true });
  const outdir = path.resolve(values.outdir ?? path.join(ROOT, 'dist', 'bundle'));
  await bundle(outdir, { readable: values.readable ?? false });
  console.log(`wrote ${path.relative(process.cwd(), path.join(outdir, BUNDLE_ENTRY))}`);
}
