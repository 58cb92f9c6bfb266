// The premise of src/core/abort-signal-layout.ts, checked in V8 itself, with the image's flags:
// code optimised while no AbortSignal had aborted is deoptimised by the first abort, and not
// once the signals are settled, whatever the reason's type. If a Node upgrade made the first
// case pass without settling, the settling would be dead weight: the first test says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IMAGE_FLAGS } from '../../bench/lib/image-flags.ts';
import { settleAbortSignalLayout } from '../../src/core/abort-signal-layout.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MODULE = pathToFileURL(path.join(ROOT, 'src/core/abort-signal-layout.ts')).href;

/**
 * Optimises a function that reads signals as the request path does (through an owner's getter,
 * the flag, then the reason), aborts one fresh signal per reason given, and prints whether the
 * function was still optimised after each.
 */
function optimisedAfterAborts(settle: boolean, reasons: string[]): boolean[] {
  const script = `
    const { settleAbortSignalLayout } = await import(${JSON.stringify(MODULE)});
    if (${settle}) settleAbortSignalLayout();
    class Scope { controller = new AbortController(); get signal() { return this.controller.signal; } }
    function read(scope) { const s = scope.signal; return s.aborted ? (s.reason instanceof Error ? 1 : 2) : 0; }
    %PrepareFunctionForOptimization(read);
    for (let i = 0; i < 20; i++) read(new Scope());
    %OptimizeFunctionOnNextCall(read);
    read(new Scope());
    const optimised = () => (%GetOptimizationStatus(read) & 16) !== 0; // V8's "optimised by TurboFan" bit
    const seen = [optimised()];
    for (const reason of ${JSON.stringify(reasons)}) {
      const c = new AbortController();
      if (reason === 'error') c.abort(new Error('went away'));
      else if (reason === 'default') c.abort();
      else c.abort(reason);
      seen.push(optimised());
    }
    console.log(JSON.stringify(seen));`;
  const run = spawnSync(NODE, [...IMAGE_FLAGS, '--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim()) as boolean[];
}

test("unsettled, the process's first abort deoptimises code that read signals", () => {
  assert.deepEqual(optimisedAfterAborts(false, ['error']), [true, false]);
});

test('settled, aborts with an Error, with the default DOMException or with a string deoptimise nothing', () => {
  assert.deepEqual(optimisedAfterAborts(true, ['error', 'default', 'a string']), [true, true, true, true]);
});

test('settling is idempotent and leaves new signals unaborted', () => {
  settleAbortSignalLayout();
  settleAbortSignalLayout();
  assert.equal(new AbortController().signal.aborted, false);
});
