// The sidecar's memory in a real pod, as the last `npm run e2e` read it from the container's
// cgroup: written by test/e2e/cluster.e2e.ts, shown by `npm run bench` beside its own figures
// (a benchmark process is not a pod: no cgroup accounting of page cache, no image layout).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface E2eMemory {
  measuredAt: string;
  /** After the e2e's earlier steps, before the load: what an idle pod's sidecar holds. */
  idle: { usageMiB: number; rssMiB: number };
  afterLoad: { usageMiB: number; rssMiB: number; peakMiB: number; limitMiB: number };
  requests: number;
  loadMs: number;
}

/** Outside the repository, beside the cluster's other state: a measurement of this machine, not a source file. */
export const E2E_MEMORY_FILE = path.join(os.homedir(), '.cache', 'llm-fallback', 'e2e-sidecar-memory.json');

export function writeE2eMemory(memory: E2eMemory, file = E2E_MEMORY_FILE): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(memory, null, 2)}\n`);
}

/** The last e2e's figures, or undefined when no e2e has run on this machine. */
export function readE2eMemory(file = E2E_MEMORY_FILE): E2eMemory | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as E2eMemory;
  } catch {
    return undefined;
  }
}
