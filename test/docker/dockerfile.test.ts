// The Dockerfile, checked without a Docker engine (none runs here): the base image is pinned to
// an exact Node 24 release, the build is multi-stage and the runtime gets only the bundle and
// its compile cache (made as the runtime's user, with its flags), it runs as a numeric non-root
// user with the bundled CLI as ENTRYPOINT, every COPY source exists and survives .dockerignore,
// and the bundle laid out as the image lays it out (dist/bundle/, package.json, examples/, and
// no node_modules) runs `--help`, `validate`, `inject` and `serve`, finds examples/, loads the
// controller's and Kubernetes mode's chunks, and carries no TypeScript sources or source maps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assignments, parseDockerfile } from '../support/dockerfile.ts';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const node = process.execPath;

function expand(value: string, args: Map<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => args.get(a ?? b ?? '') ?? '');
}

/** Files and folders a COPY from the context names (flags and the destination removed). */
function copySources(args: string): { from?: string; sources: string[] } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: rest.slice(0, -1) };
}

/** A .dockerignore matcher good enough for the plain patterns used here: the last pattern that matches decides (`!` re-includes). */
function dockerIgnored(patterns: string[], file: string): boolean {
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const p = pattern.replace(/^!/, '').replace(/^\/+/, '').replace(/\/+$/, '');
    const regex = new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}(/.*)?$`,
    );
    if (regex.test(file)) ignored = !negated;
  }
  return ignored;
}

const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const { instructions, argDefaults } = parseDockerfile(dockerfile);
const ignorePatterns = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const froms = instructions.filter((i) => i.op === 'FROM');
const stageNames = froms.map((f) => /\bAS\s+(\S+)/i.exec(f.args)?.[1]);
const finalStage = froms.length - 1;
const final = instructions.filter((i) => i.stage === finalStage);

describe('Dockerfile', () => {
  test('multi-stage: a build stage and the runtime', () => {
    assert.deepEqual(stageNames, ['build', undefined]);
  });

  test('every external base image is node 24 pinned to an exact x.y.z tag (never latest)', () => {
    for (const from of froms) {
      const image = expand(from.args.split(/\s+/)[0] ?? '', argDefaults);
      if (stageNames.includes(image)) continue;
      assert.match(image, /^node:24\.\d+\.\d+-[a-z]+(-slim)?(@sha256:[0-9a-f]{64})?$/, `FROM ${image}`);
      assert.doesNotMatch(image, /latest/);
    }
  });

  test('the build runs npm ci, then npm run build (the type check) and npm run bundle; the runtime gets the bundle and no node_modules', () => {
    const runs = instructions.filter((i) => i.stage === stageNames.indexOf('build') && i.op === 'RUN').map((i) => i.args);
    assert.match(runs.join('\n'), /npm ci[^\n]*\n[\s\S]*npm run build && npm run bundle/);
    const fromBuild = final.filter((i) => i.op === 'COPY' && copySources(i.args).from === 'build').map((i) => copySources(i.args).sources);
    assert.deepEqual(fromBuild, [['/app/dist/bundle'], ['/app/compile-cache']]);
    assert.equal(final.filter((i) => i.op === 'COPY' && /node_modules/.test(i.args)).length, 0, 'the bundle holds every package it uses');
    assert.equal(final.filter((i) => i.op === 'RUN').length, 0, 'the runtime stage installs nothing');
  });

  test("the compile cache is made by the ENTRYPOINT's bundle as the runtime's user, with its flags, where the runtime reads it", () => {
    // Node keeps a cache directory per uid (v24.x.y-arch-hash-<uid>): made by another user, the runtime would never read it.
    const build = stageNames.indexOf('build');
    const buildSteps = instructions.filter((i) => i.stage === build);
    const made = buildSteps.findIndex((i) => i.op === 'RUN' && /NODE_COMPILE_CACHE=/.test(i.args));
    assert.ok(made > 0, 'a build step makes the compile cache');
    const madeBy = buildSteps
      .slice(0, made)
      .filter((i) => i.op === 'USER')
      .at(-1)?.args;
    const runtimeUser = final.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.equal(madeBy?.split(':')[0], runtimeUser?.split(':')[0]);
    const env = new Map(final.filter((i) => i.op === 'ENV').flatMap((i) => [...assignments(i.args)]));
    const run = assignments(buildSteps[made]?.args ?? '');
    assert.equal(run.get('NODE_COMPILE_CACHE'), env.get('NODE_COMPILE_CACHE'));
    assert.equal(run.get('NODE_OPTIONS'), env.get('NODE_OPTIONS'));
    const entrypoint = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]') as string[];
    assert.match(buildSteps[made]?.args ?? '', new RegExp(`\\b${entrypoint.join(' ')} help\\b`));
    // Node writes its cache files readable by their owner only; the runtime's copy is root's.
    assert.ok(buildSteps.slice(made).some((i) => i.op === 'RUN' && i.args.includes(`chmod -R a+rX,go-w ${env.get('NODE_COMPILE_CACHE')}`)));
    assert.ok(final.some((i) => i.op === 'COPY' && i.args === `--from=build --chown=0:0 ${env.get('NODE_COMPILE_CACHE')} ./compile-cache`));
    assert.equal(env.get('NODE_COMPILE_CACHE'), '/app/compile-cache');
  });

  test('the runtime runs as a numeric, non-root user', () => {
    const users = final.filter((i) => i.op === 'USER').map((i) => i.args);
    assert.equal(users.length, 1);
    const [uid, gid] = (users[0] ?? '').split(':');
    assert.match(uid ?? '', /^\d+$/);
    assert.notEqual(Number(uid), 0);
    if (gid !== undefined) assert.match(gid, /^\d+$/);
  });

  test('ENTRYPOINT is the CLI in exec form (one image for serve and controller); CMD defaults to serve', () => {
    const entrypoint = final.filter((i) => i.op === 'ENTRYPOINT').map((i) => JSON.parse(i.args) as unknown);
    assert.deepEqual(entrypoint, [
      [
        'node',
        '--preserve-symlinks',
        '--no-concurrent-recompilation',
        '--no-maglev',
        '--liftoff-only',
        '--no-memory-reducer-favors-memory',
        '--expose-gc',
        'dist/bundle/llm-fallback.mjs',
      ],
    ]);
    const cmd = final.filter((i) => i.op === 'CMD').map((i) => JSON.parse(i.args) as unknown);
    assert.deepEqual(cmd, [['serve']]);
  });

  test('every COPY from the build context exists and is not excluded by .dockerignore; every --from names a stage', () => {
    for (const copy of instructions.filter((i) => i.op === 'COPY')) {
      const { from, sources } = copySources(copy.args);
      if (from !== undefined) {
        assert.ok(stageNames.includes(from), `COPY --from=${from} names an earlier stage`);
        assert.ok(stageNames.indexOf(from) < copy.stage);
        continue;
      }
      for (const source of sources) {
        assert.ok(existsSync(path.join(repoRoot, source)), `${source} exists`);
        assert.equal(dockerIgnored(ignorePatterns, source), false, `${source} is not in .dockerignore`);
      }
    }
  });

  test('.dockerignore keeps node_modules, dist, tests and .git out of the build context', () => {
    const rows: Array<{ file: string; ignored: boolean }> = [
      // Proves a host node_modules (other platform, dev deps) never reaches the image.
      { file: 'node_modules/express/package.json', ignored: true },
      // Proves a stale local dist/ never replaces the one built in the image.
      { file: 'dist/src/cli.js', ignored: true },
      { file: 'dist/bundle/llm-fallback.mjs', ignored: true },
      // Proves the build's bundler is sent, and the other scripts are not.
      { file: 'scripts/bundle.ts', ignored: false },
      { file: 'scripts/gen-crd.ts', ignored: true },
      // Proves tests stay out.
      { file: 'test/chart/render.test.ts', ignored: true },
      // Proves the git history stays out.
      { file: '.git/HEAD', ignored: true },
      // Proves the sources the build needs are sent.
      { file: 'src/cli.ts', ignored: false },
      // Proves the lockfile npm ci needs is sent.
      { file: 'package-lock.json', ignored: false },
      // Proves the default serve config is sent.
      { file: 'examples/chat.yaml', ignored: false },
    ];
    for (const row of rows) assert.equal(dockerIgnored(ignorePatterns, row.file), row.ignored, row.file);
  });
});

describe('the image layout, built here (dist/bundle/ as `npm run bundle` makes it, and no node_modules)', () => {
  let image: string;
  const packageJson = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // The script the ENTRYPOINT runs: its first word after `node` that is not a node flag.
  const entry = (): string =>
    (JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]') as string[]).slice(1).find((word) => !word.startsWith('--')) ?? '';

  before(async () => {
    // The runtime stage's /app: dist/bundle/ from the build, package.json, examples/. Under the
    // system's temporary folder, so no node_modules above it would hide a package left out.
    image = await mkdtemp(path.join(tmpdir(), 'llmfb-image-'));
    assert.equal(packageJson.scripts['bundle'], 'node scripts/bundle.ts');
    await execFileAsync(node, [path.join(repoRoot, 'scripts', 'bundle.ts'), '--outdir', path.join(image, 'dist', 'bundle')], { cwd: repoRoot });
    for (const copy of final.filter((i) => i.op === 'COPY' && copySources(i.args).from === undefined)) {
      for (const source of copySources(copy.args).sources) await cp(path.join(repoRoot, source), path.join(image, source), { recursive: true });
    }
  });
  after(async () => {
    if (image) await rm(image, { recursive: true, force: true });
  });

  function files(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? files(full) : [full];
    });
  }

  test('the ENTRYPOINT target exists in the bundle and `--help` runs', async () => {
    assert.ok(existsSync(path.join(image, entry())));
    const { stdout } = await execFileAsync(node, [entry(), '--help'], { cwd: image });
    assert.match(stdout, /^usage: llm-fallback <command>/);
    assert.match(stdout, /controller --tls-cert-file/);
  });

  test('`validate` runs from the bundle on the copied examples', async () => {
    const { stdout } = await execFileAsync(node, [entry(), 'validate', 'examples/chat.yaml'], { cwd: image });
    assert.match(stdout, /^ok .*FallbackChain\/chat/);
  });

  test("`serve` with no --config serves the image's examples/ (package.json found from dist/bundle) and answers /readyz", async () => {
    const child = spawn(node, [entry(), 'serve', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0'], {
      cwd: image,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      const serving = new Promise<{ admin: string; config: string }>((resolve, reject) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          const line = out.split('\n').find((l) => l.includes('"llm-fallback serving"'));
          if (line) resolve(JSON.parse(line) as { admin: string; config: string });
        });
        child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
      });
      const { admin, config } = await serving;
      assert.equal(config, path.join(image, 'examples'));
      const ready = await fetch(`${admin}/readyz`);
      assert.equal(ready.status, 200);
      // The lazily loaded chunk (Express) is found from the bundle too.
      assert.equal((await fetch(`${admin}/config`)).status, 200);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });

  test('`inject`, `controller` and Kubernetes mode load their chunks from the bundle', async () => {
    const pod = path.join(image, 'pod.yaml');
    await writeFile(pod, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n    - name: app\n      image: app:1\n');
    const { stdout } = await execFileAsync(node, [entry(), 'inject', '-f', pod], { cwd: image });
    assert.match(stdout, /name: llm-fallback/);
    // Without a cluster both stop at the first thing they need from one, after loading their code.
    const env = { ...process.env, KUBECONFIG: path.join(image, 'no-kubeconfig') };
    const controller = await execFileAsync(node, [entry(), 'controller', '--tls-cert-file', pod, '--tls-key-file', pod, '--kubeconfig', env.KUBECONFIG], {
      cwd: image,
      env,
    }).then(
      () => assert.fail('controller started without a cluster'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(controller.code, 1);
    assert.match(controller.stderr, /^controller: /);
    assert.doesNotMatch(controller.stderr, /Cannot find (module|package)/);
    const watcher = await execFileAsync(node, [entry(), 'serve', '--kubernetes', '--kubeconfig', env.KUBECONFIG, '--port', '0', '--admin-port', '0'], {
      cwd: image,
      env,
    }).then(
      () => assert.fail('serve --kubernetes started without a cluster'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(watcher.code, 1);
    assert.doesNotMatch(watcher.stderr, /Cannot find (module|package)/);
  });

  test("dist/ holds the bundle only: JavaScript modules and the bundled packages' licences, no TypeScript, no source maps", () => {
    const all = files(path.join(image, 'dist')).map((f) => path.relative(image, f));
    assert.ok(all.includes(entry()));
    assert.ok(all.includes('dist/bundle/THIRD-PARTY-LICENSES.txt'));
    assert.deepEqual(
      all.filter((f) => !/^dist\/bundle\/(chunks\/)?[\w-]+\.mjs$/.test(f) && f !== 'dist/bundle/THIRD-PARTY-LICENSES.txt'),
      [],
    );
  });

  test('the bundle imports only Node built-ins and its own chunks', () => {
    const builtins = new Set(builtinModules);
    const outside = new Set<string>();
    for (const file of files(path.join(image, 'dist')).filter((f) => f.endsWith('.mjs'))) {
      const text = readFileSync(file, 'utf8');
      // esbuild's output: static imports start a line and end with `from "…";`, dynamic ones and
      // the bundled CommonJS code's requires are calls with a literal (strings and comments that
      // mention a package are neither).
      for (const m of text.matchAll(
        /^import\b[^;]*?\bfrom\s*['"]([^'"]+)['"];?$|^import\s*['"]([^'"]+)['"];?$|\bimport\(['"]([^'"]+)['"]\)|\b__require\(['"]([^'"]+)['"]\)/gm,
      )) {
        const spec = m[1] ?? m[2] ?? m[3] ?? m[4] ?? '';
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        outside.add(spec);
      }
    }
    // ws's optional native speed-ups, loaded in a try/catch (the Kubernetes client's watch socket): absent, ws uses JavaScript.
    assert.deepEqual([...outside].sort(), ['bufferutil', 'utf-8-validate']);
    const licences = readFileSync(path.join(image, 'dist', 'bundle', 'THIRD-PARTY-LICENSES.txt'), 'utf8');
    for (const name of ['express', 'pino', 'prom-client', 'opossum', 'yaml', '@kubernetes/client-node'])
      assert.match(licences, new RegExp(`^${name}@\\d`, 'm'));
  });
});
