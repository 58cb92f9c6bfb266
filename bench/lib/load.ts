// Load generation: wrk (C, microsecond latencies) when available, autocannon (npm)
// otherwise; and a small node:http client for what neither measures: time to the
// first stream event, and many concurrent slow streams.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { canPin } from './procs.ts';

export interface Target {
  /** Full URL of the chat completions endpoint. */
  url: string;
  /** The request body's model. */
  model: string;
  headers: Record<string, string>;
}

export interface LoadResult {
  rps: number;
  p50us: number;
  p90us: number;
  p99us: number;
  requests: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
  /** How long the load ran (the load generator's own measure). */
  seconds: number;
  /**
   * wrk's latency (µs) at every 0.1 % from 0.1 to 100: enough to pool runs measured in slices
   * into one distribution (bench/lib/slices.ts). Absent from autocannon's results.
   */
  quantiles?: number[];
}

/**
 * How many latency quantiles wrk reports (one per 0.1 %). The last is its largest latency:
 * wrk's percentile(100) answers 0 (it looks for rank count + 1, which no histogram reaches).
 */
export const QUANTILE_COUNT = 1000;

export type LoadGenerator = 'wrk' | 'autocannon';

export function requestBody(model: string, stream: boolean): string {
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
    max_tokens: 32,
    ...(stream ? { stream: true } : {}),
  });
}

/** The request's headers after Host, in one fixed order: Content-Type, then the target's own; each line ends in CRLF. */
function headerLines(target: Target): string {
  return Object.entries({ 'Content-Type': 'application/json', ...target.headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/**
 * The wrk script for a target: one request, sent as is on every connection, its headers in one
 * fixed order (Host, Content-Type, the target's own, Content-Length). wrk's own `wrk.format`
 * lists them from a Lua table, whose order changes from one wrk process to the next (LuaJIT
 * seeds its string hash per process): each slice's new wrk then sent a new order, so Node built
 * the proxy's headers object in a new layout, and a proxy whose code reads the headers was
 * deoptimised and compiled again at the slice's first request. No client of a sidecar changes
 * its header order from one connection to the next (docs/bench/findings.md, "sixteenth
 * sitting"). Defining `wrk.format` (not a global `request`) keeps the request static in wrk.
 */
export function wrkScript(target: Target): string {
  const body = requestBody(target.model, false);
  const fixed = headerLines(target);
  return `local body = ${luaString(body)}
wrk.format = function()
  return "POST " .. wrk.path .. " HTTP/1.1\\r\\nHost: " .. wrk.headers["Host"] .. "\\r\\n" .. ${luaString(fixed)} .. "Content-Length: " .. #body .. "\\r\\n\\r\\n" .. body
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
  local q = {}
  for i = 1, ${QUANTILE_COUNT - 1} do q[i] = string.format('%d', latency:percentile(i * 100 / ${QUANTILE_COUNT})) end
  q[${QUANTILE_COUNT}] = string.format('%d', latency.max)
  io.write('WRKQUANTILES ' .. table.concat(q, ',') .. '\\n')
end
`;
}

interface WrkJson {
  requests: number;
  duration_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50: number;
  p90: number;
  p99: number;
}

let scriptCounter = 0;

/** Runs wrk (one thread, pinned to the load core) against a target; non-streaming POSTs. */
export async function runWrk(wrk: string, target: Target, connections: number, seconds: number, scratchDir: string, loadCore: number): Promise<LoadResult> {
  const script = path.join(scratchDir, `wrk-${++scriptCounter}.lua`);
  writeFileSync(script, wrkScript(target));
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, target.url];
  const [command, argv] = canPin() ? ['taskset', ['-c', String(loadCore), wrk, ...args]] : [wrk, args];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text.slice(-500)}`))));
  });
  const lines = out.split('\n');
  const line = lines.find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no result: ${out.slice(-500)}`);
  const r = JSON.parse(line.slice('WRKJSON '.length)) as WrkJson;
  const quantiles = lines
    .find((l) => l.startsWith('WRKQUANTILES '))
    ?.slice('WRKQUANTILES '.length)
    .split(',')
    .map(Number);
  // Slices are pooled from these (slices.ts): a run without them would be joined another way, unnoticed.
  if (!quantiles || quantiles.length !== QUANTILE_COUNT || !quantiles.every(Number.isFinite))
    throw new Error(`wrk printed no latency quantiles: ${out.slice(-500)}`);
  return {
    rps: r.requests / (r.duration_us / 1e6),
    seconds: r.duration_us / 1e6,
    quantiles,
    p50us: r.p50,
    p90us: r.p90,
    p99us: r.p99,
    requests: r.requests,
    errors: r.connect + r.read + r.write + r.timeout,
    non2xx: r.status,
  };
}

// autocannon has no bundled types; this is the part of its API used here.
interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p90: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

/** Fallback when wrk is missing. autocannon's latencies have 1 ms resolution. */
export async function runAutocannon(target: Target, connections: number, seconds: number): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const r = await autocannon({
    url: target.url,
    method: 'POST',
    body: requestBody(target.model, false),
    headers: { 'content-type': 'application/json', ...target.headers },
    connections,
    duration: seconds,
    timeout: 10,
  });
  return {
    rps: r.requests.total / r.duration,
    seconds: r.duration,
    p50us: r.latency.p50 * 1000,
    p90us: r.latency.p90 * 1000,
    p99us: r.latency.p99 * 1000,
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

export interface StreamSample {
  ok: boolean;
  ttfbUs: number;
  totalUs: number;
  error?: string;
}

/** One streaming request: time to the first `data:` bytes, time to the end, and whether it ended with [DONE] and no error event. */
export function streamOnce(agent: Agent, target: Target, timeoutMs: number): Promise<StreamSample> {
  const body = requestBody(target.model, true);
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const us = (): number => Number(process.hrtime.bigint() - started) / 1000;
    let ttfbUs = -1;
    let settled = false;
    let tailText = '';
    let sawError = false;
    const finish = (sample: StreamSample): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(sample);
    };
    const req = request(
      target.url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...target.headers },
      },
      (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          res.once('end', () => finish({ ok: false, ttfbUs, totalUs: us(), error: `HTTP ${res.statusCode}` }));
          return;
        }
        res.on('data', (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          if (ttfbUs < 0 && text.includes('data:')) ttfbUs = us();
          if (text.includes('"error"')) sawError = true;
          tailText = (tailText + text).slice(-64);
        });
        res.once('end', () => {
          const done = tailText.includes('data: [DONE]');
          finish({ ok: done && !sawError, ttfbUs, totalUs: us(), error: done ? (sawError ? 'error event' : undefined) : 'no [DONE]' });
        });
        res.once('error', (e) => finish({ ok: false, ttfbUs, totalUs: us(), error: e.message }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, ttfbUs, totalUs: us(), error: `no end within ${timeoutMs} ms` });
    }, timeoutMs);
    req.once('error', (e) => finish({ ok: false, ttfbUs, totalUs: us(), error: e.message }));
    req.end(body);
  });
}

/** Sequential streams over one keep-alive connection (concurrency 1). */
export async function sequentialStreams(target: Target, count: number): Promise<StreamSample[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: StreamSample[] = [];
  try {
    for (let i = 0; i < count; i++) samples.push(await streamOnce(agent, target, 10_000));
  } finally {
    agent.destroy();
  }
  return samples;
}

/**
 * `count` requests whose callers go away, as clients that time out or exit do (wrk's own exit
 * at the end of every load leaves some): each is written whole on a connection of its own,
 * which is then reset (RST, as a process that exits with an answer unread) or closed (FIN) at
 * once, with the proxy's upstream call in flight, or reset once the answer has begun to arrive.
 * A proxy meets each of these for the first time in a process only once, and the first time
 * can deoptimise its request path (docs/bench/findings.md, "Targets, eighteenth sitting").
 * The next request starts `gapMs` later, by when the proxy is done with this one.
 */
export async function abandonedRequests(target: Target, count: number, gapMs = 5): Promise<void> {
  const url = new URL(target.url);
  const body = requestBody(target.model, false);
  const bytes = `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n${headerLines(target)}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  for (let i = 0; i < count; i++) {
    const way = ABANDON_WAYS[i % ABANDON_WAYS.length];
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      socket.setNoDelay(true);
      // A proxy that never answers must not hold the warm-up: the way that waits for a first byte gives up after 10 s.
      socket.setTimeout(10_000, () => socket.destroy());
      socket.once('connect', () => {
        socket.write(bytes);
        if (way === 'reset') socket.resetAndDestroy();
        else if (way === 'close') socket.destroy();
        else socket.once('data', () => socket.resetAndDestroy());
      });
      socket.once('close', () => resolve());
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNREFUSED') reject(error);
      });
    });
    await delay(gapMs);
  }
}

const ABANDON_WAYS = ['reset', 'close', 'resetAfterFirstByte'] as const;

/** `n` slow streams started evenly over `spreadMs`, all awaited (each bounded by timeoutMs). */
export async function concurrentStreams(target: Target, n: number, spreadMs: number, timeoutMs: number): Promise<StreamSample[]> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  try {
    const starts = Array.from(
      { length: n },
      (_, i) =>
        new Promise<StreamSample>((resolve) => {
          setTimeout(() => void streamOnce(agent, target, timeoutMs).then(resolve), (i * spreadMs) / n);
        }),
    );
    return await Promise.all(starts);
  } finally {
    agent.destroy();
  }
}
