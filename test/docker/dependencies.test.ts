// Dependencies as declared: every runtime dependency is imported by src/ (else it is dead
// weight in every sidecar image), every package src/ imports is a runtime dependency (else the
// image, which installs only those, fails at run time), and what tests, bench and scripts
// import is declared somewhere (dependencies or devDependencies).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const runtime = new Set(Object.keys(pkg.dependencies));
const declared = new Set([...runtime, ...Object.keys(pkg.devDependencies)]);
const builtins = new Set(builtinModules);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|js|mjs)$/.test(entry)) out.push(full);
  }
  return out;
}

// Static `from '…'`, side-effect `import '…'`, dynamic `import('…')` and `require('…')`.
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([@\w./:-]+)['"]/g;

/** The package a specifier names, or undefined for relative paths and Node built-ins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || builtins.has(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

function importsOf(dir: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sourceFiles(path.join(repoRoot, dir))) {
    for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const name = packageOf(match[1] ?? '');
      if (name === undefined) continue;
      found.set(name, [...(found.get(name) ?? []), path.relative(repoRoot, file)]);
    }
  }
  return found;
}

describe('dependencies as declared', () => {
  const fromSrc = importsOf('src');

  test('the import scan sees the packages the design names', () => {
    for (const name of ['express', 'http-proxy-middleware', '@kubernetes/client-node', 'opossum', 'pino', 'prom-client']) {
      assert.ok(fromSrc.has(name), `${name} is imported by src/`);
    }
  });

  test('every runtime dependency is imported by src/', () => {
    const unused = [...runtime].filter((name) => !fromSrc.has(name));
    assert.deepEqual(unused, [], 'runtime dependencies src/ never imports (move them to devDependencies or drop them)');
  });

  test('every package src/ imports is a runtime dependency', () => {
    const missing = [...fromSrc.entries()].filter(([name]) => !runtime.has(name)).map(([name, files]) => `${name} (${files[0] ?? ''})`);
    assert.deepEqual(missing, [], 'packages the image would not install');
  });

  test('every package tests, bench and scripts import is declared', () => {
    const missing: string[] = [];
    for (const dir of ['test', 'bench', 'scripts']) {
      for (const [name, files] of importsOf(dir)) if (!declared.has(name)) missing.push(`${name} (${files[0] ?? ''})`);
    }
    assert.deepEqual(missing, []);
  });
});
