// Child processes for the benchmark: spawned pinned to a core, tracked by PID, and
// always stopped by PID (also on error or Ctrl-C). Nothing here binds beyond 127.0.0.1.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

const running = new Set<Proc>();

/** Absolute path of a command on PATH (or in the usual sbin folders), if any. */
export function which(name: string): string | undefined {
  try {
    const out = execFileSync('sh', ['-c', `command -v ${name} || ls /usr/sbin/${name} /sbin/${name} 2>/dev/null`], { encoding: 'utf8' })
      .trim()
      .split('\n')[0];
    return out ? out : undefined;
  } catch {
    return undefined;
  }
}

export function cpuCount(): number {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    return 1;
  }
}

let pinning: boolean | undefined;
/** Whether processes can be pinned to cores 0 and 1 (taskset present and at least 2 cores). */
export function canPin(): boolean {
  pinning ??= which('taskset') !== undefined && cpuCount() >= 2;
  return pinning;
}

/** Pins every thread of this process to one core (the load generator's). */
export function pinSelf(core: number): void {
  if (!canPin()) return;
  execFileSync('taskset', ['-a', '-c', '-p', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** Output goes to logFile; with pipeStdout, stdout is a pipe (child.stdout) and only stderr goes there. */
export function spawnPinned(
  name: string,
  core: number | undefined,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; logFile: string; cwd?: string; pipeStdout?: boolean },
): Proc {
  const fd = openSync(options.logFile, 'a');
  const pinned = core !== undefined && canPin();
  const stdio: ['ignore', 'pipe' | number, number] = ['ignore', options.pipeStdout ? 'pipe' : fd, fd];
  // taskset execs the command, so the PID we get is the server's own PID.
  const child = pinned
    ? spawn('taskset', ['-c', String(core), command, ...args], { env: options.env ?? process.env, stdio, cwd: options.cwd })
    : spawn(command, args, { env: options.env ?? process.env, stdio, cwd: options.cwd });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  const proc: Proc = { name, pid: child.pid, child, logFile: options.logFile, exited };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** SIGTERM, then SIGKILL after graceMs if it has not exited. */
export async function stop(proc: Proc, graceMs = 5000): Promise<void> {
  if (!running.has(proc)) return;
  try {
    // A paused process (withPaused) would hold SIGTERM until it runs again.
    process.kill(proc.pid, 'SIGCONT');
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    running.delete(proc);
    return;
  }
  const gate = new AbortController();
  const timedOut = await Promise.race([proc.exited.then(() => false), delay(graceMs, true, { signal: gate.signal }).catch(() => false)]);
  gate.abort();
  if (timedOut) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const gate2 = new AbortController();
    await Promise.race([proc.exited, delay(2000, undefined, { signal: gate2.signal }).catch(() => undefined)]);
    gate2.abort();
  }
  running.delete(proc);
}

/**
 * Runs `measure` with `procs` stopped (SIGSTOP) and lets them go on afterwards (SIGCONT), also
 * on error: a proxy measured on core 0 then has the core to itself, whatever its neighbours
 * (the other proxies, idle but alive on the same core) would do meanwhile. In the last full
 * run before this, the floor measured 99 µs per request and ~10,000 RPS at c=32 with every
 * other proxy beside it, against 66–68 µs and 12,000–15,000 RPS with llm-fallback, Portkey or
 * nothing beside it (docs/bench/findings.md); which neighbour did it was not pinned down.
 */
export async function withPaused<T>(procs: readonly Proc[], measure: () => Promise<T>): Promise<T> {
  const paused: Proc[] = [];
  try {
    for (const proc of procs) {
      if (!running.has(proc)) continue;
      process.kill(proc.pid, 'SIGSTOP');
      paused.push(proc);
    }
    // The signal is delivered asynchronously: measure only once every one of them has stopped.
    for (const proc of paused) await stopped(proc.pid);
    return await measure();
  } finally {
    for (const proc of paused) {
      try {
        process.kill(proc.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
  }
}

/** Resolves once the process is stopped (state T in /proc/PID/stat) or gone; at most ~2 s. */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    // The state follows the command name, which is in parentheses and may hold spaces.
    if (stat.charAt(stat.lastIndexOf(')') + 2) === 'T') return;
    await delay(1);
  }
  throw new Error(`process ${pid} did not stop within 2 s of SIGSTOP`);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stop(p)));
}

/** Last resort on exit: SIGKILL whatever is still tracked, by PID. */
export function killAllSync(): void {
  for (const proc of running) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

export function isRunning(proc: Proc): boolean {
  return running.has(proc);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits (bounded) until a TCP port on 127.0.0.1 accepts connections, or the process dies. */
export async function waitForPort(port: number, proc: Proc | undefined, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < until && i < 10_000; i++) {
    if (proc && !running.has(proc)) throw new Error(`${proc.name} exited before listening (see ${proc.logFile})`);
    if (await canConnect(port)) return;
    await delay(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export interface Memory {
  rssMB: number;
  peakMB: number;
}

/** VmRSS and VmHWM (peak RSS) of a process, from /proc/<pid>/status. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMB: kb('VmRSS') / 1024, peakMB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, seconds) a process has used so far, from /proc/<pid>/stat. The
 * difference across a load run divided by the requests served is what one request costs the
 * process: much steadier than latency on a shared VM, and independent of how long the cores
 * take to wake up.
 */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

// USER_HZ: 100 on every Linux architecture Node supports.
const CLOCK_TICKS_PER_SECOND = 100;

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The flags every benchmark gives `llm-fallback serve` besides its config: loopback ports, no credentials folder, the log level. */
export function serveFlags(port: number, adminPort: number, credentialsDir: string, logLevel = 'info'): string[] {
  return ['--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--credentials-dir', credentialsDir, '--log-level', logLevel];
}
