// The `llm-fallback` CLI as a real child process: exit codes and messages of `validate`
// and of usage errors, `serve` refusing an invalid config, and `serve` starting, serving
// and draining an in-flight request on SIGTERM before exiting 0.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { childEnv } from '../support/child-env.ts';
import { chainYaml } from '../support/proxy-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const CLI = path.join(ROOT, 'src/cli.ts');

let up: FaultUpstream;
let dir: string;
const children = new Set<ChildProcess>();

before(async () => {
  up = await startFaultUpstream();
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-cli-'));
});

after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await up?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Helpers

function start(args: string[], env: NodeJS.ProcessEnv = childEnv()): ChildProcess {
  const child = spawn(NODE, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  return child;
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Finished> {
  const child = start(args);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function file(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, text);
  return p;
}

type Json = Record<string, unknown>;

/** Lines of a child's stdout as they come; waitFor resolves on the first (past or future) match. */
function lineReader(child: ChildProcess): { lines: string[]; waitFor(match: (line: string) => boolean): Promise<string> } {
  const lines: string[] = [];
  const waiters: Array<{ match: (l: string) => boolean; resolve: (l: string) => void }> = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    lines,
    waitFor: (match) => {
      const found = lines.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

function jsonLine(line: string): Json | undefined {
  try {
    return JSON.parse(line) as Json;
  } catch {
    return undefined;
  }
}

const withMsg =
  (msg: string) =>
  (line: string): boolean =>
    jsonLine(line)?.['msg'] === msg;

const USAGE_HEAD = /usage: llm-fallback <command>/;

const TWO_BAD_DOCS = `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: one}
spec:
  providers: [{name: p, api: grpc, baseURL: http://127.0.0.1:9/v1}]
  steps: [{provider: p, model: m, retires: 3}]
---
apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: two}
spec:
  providers: [{name: p, baseURL: http://127.0.0.1:9/v1}]
  steps: [{provider: ghost, model: m}]
`;

// ---------------------------------------------------------------------------

describe('exit codes and messages', () => {
  test('validate, usage errors and an invalid serve config', { timeout: 60_000 }, async () => {
    const good = await file('good.yaml', chainYaml({ name: 'alpha', baseURL: 'http://127.0.0.1:9/v1', steps: [{ model: 'a' }, { model: 'b' }] }));
    const bad = await file('bad.yaml', TWO_BAD_DOCS);
    const invalidDir = path.join(dir, 'invalid');
    await file('invalid/chains.yaml', TWO_BAD_DOCS);
    const localKeys = await file(
      'local-keys.yaml',
      `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: local-keys}
spec:
  providers:
    - {name: env, baseURL: "http://127.0.0.1:9/v1", apiKey: {env: HOME}}
    - {name: file, baseURL: "http://127.0.0.1:9/v1", apiKey: {file: /var/run/secrets/kubernetes.io/serviceaccount/token}}
  steps: [{provider: env, model: m}, {provider: file, model: m}]
`,
    );
    const secretKeys = await file(
      'secret-keys.yaml',
      `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: secret-keys}
spec:
  providers:
    - name: p
      baseURL: "\${NOT_EXPANDED_IN_KUBERNETES}"
      apiKey: {secretKey: openai}
      headers: {api-key: {valueFrom: {secretKey: azure}}}
  steps: [{provider: p, model: m}]
`,
    );
    const traversal = await file(
      'traversal.yaml',
      `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata: {name: traversal}
spec:
  providers: [{name: p, baseURL: "http://127.0.0.1:9/v1", apiKey: {secretKey: ../token}}]
  steps: [{provider: p, model: m}]
`,
    );

    const cases: Array<{ name: string; args: string[]; code: number; stdout?: RegExp[]; stderr?: RegExp[]; stderrLines?: string[] }> = [
      // A valid file: exit 0, one "ok" line naming the source and the chain.
      { name: 'validate valid', args: ['validate', good], code: 0, stdout: [/^ok good\.yaml#1 FallbackChain\/alpha \(model alpha, 2 steps\)$/m] },
      // Three problems in two documents: exit 1, one stderr line per problem with file,
      // document number, field path and reason, then the count.
      {
        name: 'validate invalid',
        args: ['validate', bad],
        code: 1,
        stderrLines: [
          `${bad} (document 1) /spec/providers/0/api: must be one of "openai", "anthropic", "gemini", "openai-responses", "azure-openai", "bedrock", "vertex"`,
          `${bad} (document 1) /spec/steps/0/retires: unknown field`,
          `${bad} (document 2) /spec/steps/0/provider: step names provider "ghost", which spec.providers does not declare`,
          '3 problem(s)',
        ],
      },
      // --kubernetes: the rules of `serve --kubernetes` and the controller (issue 12, finding 1):
      // apiKey.env / apiKey.file are refused with the reason, ${VAR} is not expanded.
      {
        name: 'validate --kubernetes refuses local credentials',
        args: ['validate', '--kubernetes', localKeys],
        code: 1,
        stderrLines: [
          `${localKeys} (document 1) /spec/providers/0/apiKey/env: local_credentials_refused: apiKey.env is refused in Kubernetes: a FallbackChain may only use keys of the mounted credentials Secret (secretKey); the sidecar flag --allow-local-credentials allows file and env`,
          `${localKeys} (document 1) /spec/providers/1/apiKey/file: local_credentials_refused: apiKey.file is refused in Kubernetes: a FallbackChain may only use keys of the mounted credentials Secret (secretKey); the sidecar flag --allow-local-credentials allows file and env`,
          '2 problem(s)',
        ],
      },
      // The same file is fine for `serve --config`, and for sidecars that allow local credentials.
      { name: 'validate without --kubernetes', args: ['validate', localKeys], code: 0, stdout: [/^ok local-keys\.yaml#1 FallbackChain\/local-keys/m] },
      {
        name: 'validate --kubernetes --allow-local-credentials',
        args: ['validate', '--kubernetes', '--allow-local-credentials', localKeys],
        code: 0,
        stdout: [/^ok local-keys\.yaml#1/m],
      },
      // A chain with only Secret keys passes; a secretKey that walks out of the Secret does not.
      { name: 'validate --kubernetes with secretKey', args: ['validate', '--kubernetes', secretKeys], code: 0, stdout: [/^ok secret-keys\.yaml#1/m] },
      {
        name: 'validate --kubernetes with a traversing secretKey',
        args: ['validate', '--kubernetes', traversal],
        code: 1,
        stderr: [/\/spec\/providers\/0\/apiKey\/secretKey: must match pattern/],
      },
      // A file that does not exist is a problem of its own, not a crash.
      { name: 'validate missing file', args: ['validate', path.join(dir, 'nope.yaml')], code: 1, stderr: [/nope\.yaml: cannot read file: /] },
      // No files: a usage error (exit 2) with the usage text.
      { name: 'validate without files', args: ['validate'], code: 2, stderr: [/validate needs at least one FILE/, USAGE_HEAD] },
      // A bad flag value: usage error naming the flag and the allowed values.
      { name: 'bad log level', args: ['serve', '--log-level', 'nope'], code: 2, stderr: [/--log-level: "nope" is not one of trace, debug, info/, USAGE_HEAD] },
      // A mistyped flag: usage error, not a stack trace.
      { name: 'unknown flag', args: ['serve', '--prot', '4000'], code: 2, stderr: [/Unknown option '--prot'/, USAGE_HEAD] },
      // An unknown command: usage error.
      { name: 'unknown command', args: ['frobnicate'], code: 2, stderr: [/unknown command "frobnicate"/, USAGE_HEAD] },
      // serve with a config that does not validate: exit 1 with every reason, nothing served.
      {
        name: 'serve invalid config',
        args: ['serve', '--port', '0', '--admin-port', '0', '--config', invalidDir, '--credentials-dir', path.join(dir, 'none')],
        code: 1,
        stderr: [
          /configuration is invalid:/,
          /\(document 1\) \/spec\/steps\/0\/retires: unknown field/,
          /\(document 2\) \/spec\/steps\/0\/provider: step names provider "ghost"/,
        ],
      },
    ];

    for (const c of cases) {
      const out = await run(c.args);
      assert.equal(out.code, c.code, `${c.name}: exit code (stderr: ${out.stderr})`);
      for (const re of c.stdout ?? []) assert.match(out.stdout, re, c.name);
      for (const re of c.stderr ?? []) assert.match(out.stderr, re, c.name);
      if (c.stderrLines) assert.deepEqual(out.stderr.split('\n').filter(Boolean), c.stderrLines, c.name);
      if (c.code !== 0) assert.doesNotMatch(out.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    }
  });
});

describe('serve', () => {
  test('starts, serves, and on SIGTERM finishes the in-flight request before exiting 0', { timeout: 60_000 }, async () => {
    const model = 'fault:slow-first-token-500#cli';
    const configDir = path.join(dir, 'serve');
    await file('serve/chains.yaml', chainYaml({ name: 'slow', baseURL: up.url, steps: [{ model }] }));

    const child = start(['serve', '--port', '0', '--admin-port', '0', '--config', configDir, '--credentials-dir', path.join(dir, 'none')]);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // 'close', not 'exit': it comes after stdout has been read to the end.
    const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const out = lineReader(child);

    const serving = jsonLine(await out.waitFor(withMsg('llm-fallback serving'))) ?? {};
    const api = String(serving['api']);
    const admin = String(serving['admin']);
    assert.match(api, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(serving['chains'], ['slow']);
    const ready = await fetch(`${admin}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as Json)['configVersion'], 1);

    const inflight = fetch(`${api}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'cli-inflight' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await up.waitForRequest(model);
    assert.ok(child.kill('SIGTERM'));
    await out.waitFor(withMsg('draining'));

    const res = await inflight;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-llm-fallback-model'), model);
    const body = (await res.json()) as Json;
    assert.equal(body['object'], 'chat.completion');

    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, stderr);
    // The request was still in flight when the drain began, and was logged as a success.
    const msgs = out.lines.map((l) => jsonLine(l)?.['msg']);
    const requestLine = out.lines.map((l) => jsonLine(l)).find((l) => l?.['msg'] === 'request' && l['requestId'] === 'cli-inflight');
    assert.equal(requestLine?.['outcome'], 'success');
    assert.ok(msgs.indexOf('draining') < msgs.indexOf('request'), 'SIGTERM arrived while the request was in flight');
    assert.equal(msgs.at(-1), 'stopped');
  });
});

describe('npm start: the bundled examples with nothing else running', () => {
  test('the demo chain falls over from its broken step to the embedded demo upstream; /config says what that upstream is', { timeout: 60_000 }, async () => {
    const env = childEnv();
    delete env['DEMO_UPSTREAM_URL'];
    // No --config: the examples, as `npm start` serves them.
    const child = start(['serve', '--port', '0', '--admin-port', '0'], env);
    const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const out = lineReader(child);
    const demoLine = jsonLine(await out.waitFor((l) => String(jsonLine(l)?.['msg'] ?? '').startsWith('embedded demo upstream'))) ?? {};
    assert.match(String(demoLine['url']), /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const serving = jsonLine(await out.waitFor(withMsg('llm-fallback serving'))) ?? {};
    const api = String(serving['api']);
    const admin = String(serving['admin']);

    const call = (model: string, stream = false): Promise<Response> =>
      fetch(`${api}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
      });
    const res = await call('demo');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-llm-fallback-attempts'), 'broken/gpt-4o-mini=connection, local/demo-model=ok');
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.equal(body.choices[0]?.message.content, 'Hello from demo-model');
    const streamed = await (await call('demo', true)).text();
    assert.match(streamed, /"content":"Hello "/);
    assert.match(streamed, /data: \[DONE\]/);
    // demo-flaky: the first request for its first step's model fails with 503, the retry answers.
    const flaky = await call('demo-flaky');
    assert.equal(flaky.status, 200);
    assert.match(flaky.headers.get('x-llm-fallback-attempts') ?? '', /=serverError.*=ok/);

    const config = (await (await fetch(`${admin}/config`)).json()) as Json;
    assert.deepEqual(config['demoUpstream'], { url: demoLine['url'], note: 'embedded in this process for the bundled examples only; not a provider' });

    assert.ok(child.kill('SIGTERM'));
    const [code] = await exited;
    assert.equal(code, 0);
  });

  test('a config folder of your own never gets the demo upstream', { timeout: 60_000 }, async () => {
    const configDir = path.join(dir, 'own');
    await file('own/chains.yaml', chainYaml({ name: 'own', baseURL: up.url, steps: [{ model: 'fault:ok' }] }));
    const child = start(['serve', '--port', '0', '--admin-port', '0', '--config', configDir, '--credentials-dir', path.join(dir, 'none')]);
    const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const out = lineReader(child);
    const serving = jsonLine(await out.waitFor(withMsg('llm-fallback serving'))) ?? {};
    const config = (await (await fetch(`${String(serving['admin'])}/config`)).json()) as Json;
    assert.equal(config['demoUpstream'], undefined);
    assert.equal(
      out.lines.some((l) => jsonLine(l)?.['msg']?.toString().startsWith('embedded demo upstream') ?? false),
      false,
    );
    assert.ok(child.kill('SIGTERM'));
    await exited;
  });
});
