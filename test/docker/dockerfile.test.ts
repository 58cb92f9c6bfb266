// The Dockerfile, checked without a Docker engine (none runs here): the base image is pinned to
// an exact Node 24 release, the build is multi-stage with production dependencies only in the
// runtime, it runs as a numeric non-root user with the CLI as ENTRYPOINT, every COPY source
// exists and survives .dockerignore, and the build output laid out as the image lays it out
// (dist/, package.json, examples/, node_modules) runs `--help` and `validate`, finds examples/,
// carries no tests, TypeScript sources or source maps, and imports no devDependency.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const node = process.execPath;

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (comments dropped, `\` continuations joined), with their stage index. */
function parseDockerfile(text: string): { instructions: Instruction[]; argDefaults: Map<string, string> } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const instructions: Instruction[] = [];
  const argDefaults = new Map<string, string>();
  let stage = -1;
  for (const line of lines) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const op = (match[1] ?? '').toUpperCase();
    const args = (match[2] ?? '').trim();
    if (op === 'FROM') stage++;
    if (op === 'ARG' && stage === -1) {
      const [name, value] = args.split('=');
      if (name && value !== undefined) argDefaults.set(name, value);
    }
    instructions.push({ op, args, stage });
  }
  return { instructions, argDefaults };
}

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

/** A .dockerignore matcher good enough for the plain patterns used here (no negations). */
function dockerIgnored(patterns: string[], file: string): boolean {
  return patterns.some((pattern) => {
    const p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
    const regex = new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}(/.*)?$`,
    );
    return regex.test(file);
  });
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
  test('multi-stage: a build stage, a production-dependencies stage and the runtime', () => {
    assert.ok(froms.length >= 2);
    assert.deepEqual(stageNames, ['build', 'prod-deps', undefined]);
  });

  test('every external base image is node 24 pinned to an exact x.y.z tag (never latest)', () => {
    for (const from of froms) {
      const image = expand(from.args.split(/\s+/)[0] ?? '', argDefaults);
      if (stageNames.includes(image)) continue;
      assert.match(image, /^node:24\.\d+\.\d+-[a-z]+(-slim)?(@sha256:[0-9a-f]{64})?$/, `FROM ${image}`);
      assert.doesNotMatch(image, /latest/);
    }
  });

  test('the build runs npm ci then npm run build; the runtime gets node_modules from npm ci --omit=dev only', () => {
    const runs = (stage: number): string[] => instructions.filter((i) => i.stage === stage && i.op === 'RUN').map((i) => i.args);
    const build = stageNames.indexOf('build');
    const prod = stageNames.indexOf('prod-deps');
    assert.match(runs(build).join('\n'), /npm ci[^\n]*\n[\s\S]*npm run build/);
    assert.match(runs(prod).join('\n'), /npm ci --omit=dev/);
    const modules = final.filter((i) => i.op === 'COPY' && /node_modules/.test(i.args)).map((i) => copySources(i.args).from);
    assert.deepEqual(modules, ['prod-deps'], 'node_modules comes only from the production-only stage');
    assert.equal(final.filter((i) => i.op === 'RUN').length, 0, 'the runtime stage installs nothing');
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
    assert.deepEqual(entrypoint, [['node', 'dist/src/cli.js']]);
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

describe('the image layout, built here (tsc → dist/ as `npm run build` does)', () => {
  let image: string;
  const packageJson = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };

  before(async () => {
    // The runtime stage's /app: dist/ from the build, package.json, examples/, node_modules.
    image = await mkdtemp(path.join(tmpdir(), 'llmfb-image-'));
    assert.equal(packageJson.scripts['build'], 'tsc -p tsconfig.build.json');
    await execFileAsync(
      path.join(repoRoot, 'node_modules', '.bin', 'tsc'),
      ['-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(image, 'dist')],
      { cwd: repoRoot },
    );
    for (const copy of final.filter((i) => i.op === 'COPY' && copySources(i.args).from === undefined)) {
      for (const source of copySources(copy.args).sources) await cp(path.join(repoRoot, source), path.join(image, source), { recursive: true });
    }
    await symlink(path.join(repoRoot, 'node_modules'), path.join(image, 'node_modules'), 'dir');
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

  test('the ENTRYPOINT target exists in the build output and `--help` runs', async () => {
    assert.ok(existsSync(path.join(image, 'dist', 'src', 'cli.js')));
    const { stdout } = await execFileAsync(node, ['dist/src/cli.js', '--help'], { cwd: image });
    assert.match(stdout, /^usage: llm-fallback <command>/);
    assert.match(stdout, /controller --tls-cert-file/);
  });

  test('`validate` runs from the build output on the copied examples', async () => {
    const { stdout } = await execFileAsync(node, ['dist/src/cli.js', 'validate', 'examples/chat.yaml'], { cwd: image });
    assert.match(stdout, /^ok .*FallbackChain\/chat/);
  });

  test("serve's default config dir resolves to the image's examples/ (package.json found from dist/src/config)", async () => {
    const { stdout } = await execFileAsync(node, [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(path.join(image, 'dist', 'src', 'config', 'options.js'))}); console.log(m.EXAMPLES_DIR);`,
    ]);
    assert.equal(stdout.trim(), path.join(image, 'examples'));
  });

  test('dist/ holds JavaScript and JSON only: no TypeScript, no source maps, no tests', () => {
    const all = files(path.join(image, 'dist')).map((f) => path.relative(image, f));
    assert.ok(all.length > 20);
    assert.deepEqual(
      all.filter((f) => !/\.(js|json)$/.test(f)),
      [],
    );
    assert.deepEqual(
      all.filter((f) => /\.map$|\.test\.|^dist\/(test|bench|scripts)\//.test(f)),
      [],
    );
    assert.ok(all.every((f) => f.startsWith('dist/src/')));
  });

  test('the runtime code imports only production dependencies and node built-ins', () => {
    const builtins = new Set(builtinModules);
    const used = new Set<string>();
    for (const file of files(path.join(image, 'dist')).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1] ?? '';
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec));
      }
    }
    assert.ok(used.size > 3, 'found the imports');
    const notProduction = [...used].filter((p) => !Object.hasOwn(packageJson.dependencies, p));
    assert.deepEqual(notProduction, [], 'imported but not in dependencies (npm ci --omit=dev would leave them out)');
  });
});
