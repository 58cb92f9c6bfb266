// The cloud libraries stay off the path of chains that do not use them: loading the whole
// server (every wire unit registered) imports none of @smithy/*, @aws-crypto/* or jose. They
// are imported by the first Bedrock signature, event stream or Vertex token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('importing the server and the wire registry loads no cloud library', () => {
  const probe = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
    await import('./src/serve.ts');
    await import('./src/wire/registry.ts');
    console.log(JSON.stringify(seen));`;
  const seen = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8' })) as string[];
  assert.ok(
    seen.some((url) => url.endsWith('/src/wire/bedrock/upstream.ts')),
    'the probe saw the Bedrock unit load',
  );
  assert.deepEqual(
    seen.filter((url) => /\/node_modules\/(@smithy|@aws-crypto|jose)\//.test(url)),
    [],
  );
});
