// bench/lib/procs.ts withPaused: the neighbours of a measured proxy are stopped while it is
// measured and run again afterwards, also when the measurement fails.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { spawnPinned, stop, withPaused, type Proc } from '../../bench/lib/procs.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'bench-paused-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The process state letter of /proc/PID/stat: T when stopped. */
function state(proc: Proc): string {
  const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

function idleNode(name: string): Proc {
  return spawnPinned(name, undefined, process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { logFile: path.join(scratch, `${name}.log`) });
}

test('neighbours are stopped during the measurement and continued after it, also after a failure', async () => {
  const a = idleNode('a');
  const b = idleNode('b');
  try {
    const seen = await withPaused([a, b], async () => [state(a), state(b)]);
    assert.deepEqual(seen, ['T', 'T']);
    assert.notEqual(state(a), 'T');
    assert.notEqual(state(b), 'T');
    await assert.rejects(
      withPaused([a], async () => {
        assert.equal(state(a), 'T');
        throw new Error('measurement failed');
      }),
      /measurement failed/,
    );
    assert.notEqual(state(a), 'T');
  } finally {
    await stop(a);
    await stop(b);
  }
});

test('a paused process can still be stopped', async () => {
  const a = idleNode('c');
  await withPaused([a], async () => {
    await stop(a, 2000);
  });
  await a.exited;
});
