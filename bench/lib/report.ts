// The benchmark's results: their JSON shape, the markdown tables and the SVG chart.
import type { E2eMemory } from './e2e-memory.ts';
import type { Measured } from './stats.ts';
import { LIMITS, targetChecks } from './targets.ts';

export type { Measured };

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  pinned: boolean;
}

export interface Settings {
  mode: 'full' | 'quick';
  runs: number;
  latencySeconds: number;
  throughputSeconds: number;
  upstreamLatencyMs: number;
  loadGenerator: string;
  streamTtfbRequests: number;
  slowStream: { chunks: number; intervalMs: number; levels: number[]; spreadMs: number };
  note: string;
  /** Every run started each proxy afresh (absent in results from before: all runs measured one process per case). */
  freshProcessPerRun?: boolean;
  /** Each measurement of a run was split into this many slices, the cases taking turns (absent: 1). */
  slices?: number;
  /**
   * The warm-up before each run: passes over the cases, each of c=32 then c=1 for this long, requests whose callers go
   * away (`abandoned`; absent from results from before they were sent) and sequential streams (absent: one pass of c=32).
   */
  warmUp?: { passes: number; seconds: number; streams: number; abandoned?: number };
  /** What the request-path llm-fallback ran (relative to the repository), e.g. dist/bundle/llm-fallback.mjs. */
  llmFallbackEntry?: string;
}

export interface CaseResult {
  id: string;
  label: string;
  available: boolean;
  reason?: string;
  version?: string;
  notes: string[];
  latencyC1?: { p50us: Measured; p99us: Measured; addedP50us: Measured; addedP99us: Measured };
  c32?: { rps: Measured; p99us: Measured; rpsRatioToDirect: Measured };
  c128?: { rps: Measured; p99us: Measured; rpsRatioToDirect: Measured };
  /** The process's CPU time (user + system) per request during the c=32 run, µs. */
  cpuPerRequestUs?: Measured;
  errors: { requests: number; socketErrors: number; non2xx: number };
  /**
   * VmRSS once ready (before the warm-up), VmRSS after the request runs (c=1, c=32, c=128, stream TTFB, fallback),
   * VmHWM at that point (the same load for every case: issue 16's "RSS under load"), and VmHWM at the end
   * (after the slow-stream ramp, whose top level differs by case).
   */
  memory?: { idleMB: number | null; afterLoadMB: number | null; peakAfterRequestsMB?: number | null; peakMB: number | null };
  streamTtfb?: { p50us: Measured; p99us: Measured; addedP50us: Measured; failed: number };
  streams?: { sustained: Measured; limitedBy?: string; levels: LevelResult[][] };
  fallback503?: { p50us: Measured; p99us: Measured; addedP50us: Measured } | { unavailable: string };
  fallbackOpen?: { p50us: Measured; p99us: Measured; addedP50us: Measured } | { unavailable: string };
}

export interface LevelResult {
  streams: number;
  ok: number;
  failed: number;
  ttfbP99ms: number | null;
  durationP99ms: number | null;
  passed: boolean;
  firstError?: string;
}

/** One of issue 16's targets, judged on one run's figures. */
export interface TargetCheck {
  target: string;
  /** llm-fallback's figure. */
  ours: string;
  /** What it is held against: the Node floor's or the bare server's figure in the same run, or today's ratio. */
  reference: string;
  /** The ratio or difference the target bounds. */
  comparison: string;
  /** null: not measured in this run (why: in `reference` or `comparison`). */
  passed: boolean | null;
}

export type StartupCaseId = 'bare' | 'config' | 'kubernetes';

/** Spawn to ready and idle RSS of one kind of process, `runs` starts (bench/lib/startup.ts). */
export interface StartupCase {
  id: StartupCaseId;
  label: string;
  available: boolean;
  reason?: string;
  /** Spawn to /readyz 200 (the bare server: to its first 200), ms. */
  readyMs?: Measured;
  /** Kubernetes mode: from the API server's first byte to the sidecar to /readyz 200, ms. */
  afterApiMs?: Measured;
  /** User + system CPU time until ready, ms. */
  cpuMs?: Measured;
  /** VmRSS one second after ready, MB. */
  idleRssMB?: Measured;
  /**
   * Of that, private anonymous memory (heap, native allocations), MB: what each pod adds. The
   * rest is the node binary's pages, shared by every container of the same image on a node.
   */
  idleAnonMB?: Measured;
}

export interface StartupResults {
  runs: number;
  entry: string;
  compileCache: boolean;
  nodeFlags: string[];
  pinned: boolean;
  cases: StartupCase[];
}

export interface ProfileLine {
  selfPercent: number;
  fn: string;
  where: string;
}

export interface Results {
  date: string;
  machine: Machine;
  settings: Settings;
  cases: CaseResult[];
  /** Start to ready and idle RSS (bench/lib/startup.ts); absent when not run (--no-startup, or --cases asked for none). */
  startup?: StartupResults;
  /** The sidecar's cgroup memory in a real pod, from the last `npm run e2e` on this machine; null when there was none. */
  e2eMemory?: E2eMemory | null;
  /** Issue 16's targets (bench/lib/targets.ts); the markdown judges them again from the figures, so an older results.json re-renders with today's table. */
  targets: TargetCheck[];
  /** `files`: the profiles summed, one per run's process; `file`: the one profile of results from before. */
  profile?: { files?: string[]; file?: string; top: ProfileLine[]; byArea: Array<{ area: string; selfPercent: number }> };
}

const fmt = (value: number | null | undefined, digits = 0, unit = ''): string =>
  value === null || value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(digits)}${unit}`;

const ms = (us: number | null | undefined): string => (us === null || us === undefined ? '–' : fmt(us / 1000, 2));

function fallbackCell(f: CaseResult['fallback503']): string {
  if (!f) return '–';
  if ('unavailable' in f) return `n/a (${f.unavailable})`;
  const added = f.addedP50us.median;
  const signed = added === null ? '–' : `${added < 0 ? '−' : '+'}${ms(Math.abs(added))}`;
  return `${signed} ms (p50 ${ms(f.p50us.median)}, p99 ${ms(f.p99us.median)})`;
}

/** How each run warmed its processes up; nothing for results from before it was recorded. */
function warming(warmUp: Settings['warmUp']): string {
  if (!warmUp) return '';
  const passes = warmUp.passes === 1 ? 'one pass' : `${warmUp.passes} passes`;
  const abandoned = warmUp.abandoned ? `, ${warmUp.abandoned} requests whose callers go away` : '';
  return `; the warm-up: ${passes} over the cases, each of c=32 then c=1 for ${warmUp.seconds} s${abandoned}, ${warmUp.streams} streams and the fallback chains`;
}

/** How a run's measurements were split (bench/lib/slices.ts); nothing when they were not. */
function slicing(slices: number | undefined): string {
  if (slices === undefined || slices <= 1) return '';
  return `, each taken in ${slices} slices that the cases take in turns (a round of slices takes under a minute, so every case meets nearly the same moments of the host; c=1 and c=32 in every slice first, then c=128, streams and fallback; a run's figure joins its slices: their requests, time and CPU added up, latency percentiles of all their requests)`;
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const s = r.settings;
  const lines: string[] = [];
  lines.push('# llm-fallback benchmarks', '');
  if (s.note) lines.push(`> ${s.note}`, '');
  lines.push(
    `- Date: ${r.date}`,
    `- Machine: ${m.nproc} cores, ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}; load average at start ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(' / ')}, at end ${m.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' / ')}`,
    `- Layout: ${m.pinned ? 'each proxy pinned to core 0 (`taskset -c 0`); mock upstream, load generator and stream clients on core 1' : 'NOT pinned (taskset missing or fewer than 2 cores): numbers are not comparable to pinned runs'}`,
    `- Mode: ${s.mode}; ${s.runs} run(s) per measurement, ${s.freshProcessPerRun ? `each with every proxy started afresh and warmed up (a fresh process per run and case${warming(s.warmUp)})` : 'all in one process per case'}, medians quoted; ${s.latencySeconds} s per latency run, ${s.throughputSeconds} s per throughput run${slicing(s.slices)}; load generator: ${s.loadGenerator}; mock upstream latency ${s.upstreamLatencyMs} ms`,
    `- Reproduce: \`npm run bench${s.mode === 'quick' ? ' -- --quick' : ''}\``,
  );
  if (s.llmFallbackEntry) lines.push(`- llm-fallback on the request path: \`node ${s.llmFallbackEntry} serve\``);
  lines.push('');

  lines.push('## Non-streaming: hop cost and throughput', '');
  lines.push(
    '| case | p50 @c=1 (ms) | p99 @c=1 (ms) | added p50 | added p99 | RPS @c=32 | p99 @c=32 (ms) | RPS @c=128 | p99 @c=128 (ms) | RPS vs direct @c=32 | CPU per request @c=32 | RSS after load | peak RSS |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of r.cases) {
    if (!c.available) {
      lines.push(`| ${c.label} | unavailable: ${c.reason ?? ''} ||||||||||||`);
      continue;
    }
    const l = c.latencyC1;
    const direct = c.id === 'direct';
    lines.push(
      `| ${c.label} | ${ms(l?.p50us.median)} | ${ms(l?.p99us.median)} | ${direct ? '(baseline)' : `${fmt(l?.addedP50us.median)} µs`} | ${direct ? '(baseline)' : `${fmt(l?.addedP99us.median)} µs`} | ${fmt(c.c32?.rps.median)} | ${ms(c.c32?.p99us.median)} | ${fmt(c.c128?.rps.median)} | ${ms(c.c128?.p99us.median)} | ${fmt(c.c32?.rpsRatioToDirect.median, 2)}× | ${fmt(c.cpuPerRequestUs?.median, 0, ' µs')} | ${fmt(c.memory?.afterLoadMB, 1, ' MB')} | ${fmt(c.memory?.peakMB, 1, ' MB')} |`,
    );
  }
  lines.push(
    '',
    "CPU per request is the process's user + system time during the c=32 run (/proc/<pid>/stat) divided by the requests it served: what one request costs it, steadier than latency on a shared VM. RSS is the proxy process's VmRSS (after the load runs) and VmHWM (peak) from /proc/<pid>/status; for the direct case both are the mock upstream's.",
    '',
  );
  const perRun = r.cases.filter((c) => c.available && c.id !== 'direct' && c.cpuPerRequestUs && c.cpuPerRequestUs.runs.length > 1);
  if (s.freshProcessPerRun && perRun.length > 0) {
    lines.push(
      `Each run's process, in run order (what a request costs a process moves with the host's moments, a third either way over minutes, for every case: docs/bench/findings.md, "Targets, thirteenth sitting" and "fourteenth sitting"): ${perRun
        .map(
          (c) =>
            `${c.label} ${c.cpuPerRequestUs?.runs.map((v) => fmt(v, 0)).join(' / ') ?? ''} µs CPU per request, ${c.c32?.rps.runs.map((v) => fmt(v, 0)).join(' / ') ?? ''} RPS at c=32`,
        )
        .join('; ')}.`,
      '',
    );
  }

  lines.push('## Streaming', '');
  lines.push(
    `Time to the first event at concurrency 1 (${s.streamTtfbRequests} sequential streams of ${'a fast mock stream'}), and the largest number of concurrent slow streams (${s.slowStream.chunks} chunks, one every ${s.slowStream.intervalMs} ms, started over ${s.slowStream.spreadMs} ms) served with no error, p99 time-to-first-event ≤ 500 ms and p99 stream time ≤ 1.5× its nominal length. Levels tried: ${s.slowStream.levels.join(', ')}.`,
    '',
  );
  lines.push('| case | TTFB p50 (ms) | TTFB p99 (ms) | added TTFB p50 | concurrent streams sustained |');
  lines.push('|---|---|---|---|---|');
  for (const c of r.cases) {
    if (!c.available) continue;
    const t = c.streamTtfb;
    const direct = c.id === 'direct';
    const sustained = c.streams ? `${fmt(c.streams.sustained.median)}${c.streams.limitedBy ? ` (${c.streams.limitedBy})` : ''}` : '–';
    lines.push(
      `| ${c.label} | ${ms(t?.p50us.median)} | ${ms(t?.p99us.median)} | ${direct ? '(baseline)' : `${fmt(t?.addedP50us.median)} µs`} | ${sustained} |`,
    );
  }
  lines.push('');

  lines.push('## Fallback', '');
  lines.push(
    "Added time at concurrency 1 compared with the same proxy's one-step chain: first step answers 503 and the second succeeds; and the same with the first step's circuit already open (skipped without a request).",
    '',
  );
  lines.push('| case | first step 503 → second step | first step circuit open |');
  lines.push('|---|---|---|');
  for (const c of r.cases) {
    if (!c.available || c.id === 'direct' || c.id === 'nginx' || c.id === 'node-floor') continue;
    lines.push(`| ${c.label} | ${fallbackCell(c.fallback503)} | ${fallbackCell(c.fallbackOpen)} |`);
  }
  lines.push('');

  lines.push(...startupSection(r.startup), ...memorySection(r), ...targetsSection(r));

  const notes = r.cases.flatMap((c) => c.notes.map((n) => `- ${c.label}: ${n}`));
  if (notes.length > 0) lines.push('## Notes', '', ...notes, '');
  if (r.profile) {
    const files = r.profile.files ?? (r.profile.file ? [r.profile.file] : []);
    lines.push(
      '## CPU profile of llm-fallback',
      '',
      `${files.length > 1 ? `Profiles of the ${files.length} runs' processes, summed` : 'Profile'}: ${files.map((f) => `\`${f}\``).join(', ')} (whole run; percentages of busy samples, idle excluded).`,
      '',
    );
    lines.push('| self % | where the time goes |', '|---|---|');
    for (const a of r.profile.byArea) lines.push(`| ${a.selfPercent.toFixed(1)} | ${a.area} |`);
    lines.push('', '| self % | function | where |', '|---|---|---|');
    for (const p of r.profile.top) lines.push(`| ${p.selfPercent.toFixed(1)} | ${p.fn} | ${p.where} |`);
    lines.push('');
  }
  lines.push('Raw numbers (every run): [results.json](results.json). Chart: [chart.svg](chart.svg).', '');
  return lines.join('\n');
}

function startupSection(startup: StartupResults | undefined): string[] {
  if (!startup) return [];
  const lines = ['## Start and idle memory', ''];
  lines.push(
    `${startup.runs} start(s) of each, ${startup.pinned ? 'pinned to core 0' : 'NOT pinned'}, node flags \`${startup.nodeFlags.join(' ')}\` (the image's NODE_OPTIONS); the sidecar is \`${startup.entry}\` ${startup.compileCache ? 'with a compile cache made as the Dockerfile makes it' : 'without a compile cache'}, log at info. Start to ready: spawn to \`/readyz\` 200 (the bare server: to its first 200); idle RSS: VmRSS one second after ready. \`serve --kubernetes\` runs against the tests' kube-apiserver + etcd with a token and CA kubeconfig, through a relay that notes the API server's first byte to the sidecar. Medians; every run in results.json.`,
    '',
    '| process | start to ready | after the API server first answers | CPU until ready | idle RSS | of which private (anonymous) |',
    '|---|---|---|---|---|---|',
  );
  for (const c of startup.cases) {
    if (!c.available) {
      lines.push(`| ${c.label} | unavailable: ${c.reason ?? ''} |||||`);
      continue;
    }
    lines.push(
      `| ${c.label} | ${fmt(c.readyMs?.median, 0, ' ms')} | ${c.afterApiMs ? fmt(c.afterApiMs.median, 0, ' ms') : '–'} | ${fmt(c.cpuMs?.median, 0, ' ms')} | ${fmt(c.idleRssMB?.median, 1, ' MB')} | ${fmt(c.idleAnonMB?.median, 1, ' MB')} |`,
    );
  }
  lines.push(
    '',
    "Idle RSS counts the pages of the node binary a process has touched (most of a bare server's RSS): they are file-backed and shared by every container of the same image on a node. The private column is the anonymous part (`Anonymous:` of /proc/<pid>/smaps_rollup: V8's heap and native allocations), what each further pod adds.",
  );
  lines.push('');
  return lines;
}

/** The bench's own memory figures beside the sidecar's in a real pod (the last `npm run e2e`). */
function memorySection(r: Results): string[] {
  const lines = ['## Memory: this run and a real pod', ''];
  lines.push(
    "A benchmark process is not a pod: RSS here is the process's (/proc/<pid>/status); in a pod the container's cgroup also counts page cache, and the image runs with a memory limit. The pod's figures are what the last `npm run e2e` on this machine read from the sidecar container's cgroup.",
    '',
    '| process | idle | under load | peak under load |',
    '|---|---|---|---|',
  );
  for (const id of ['llm-fallback', 'node-floor']) {
    const c = r.cases.find((x) => x.id === id && x.available);
    if (!c?.memory) continue;
    lines.push(
      `| ${c.label} (this run) | ${fmt(c.memory.idleMB, 1, ' MB')} RSS once ready | ${fmt(c.memory.afterLoadMB, 1, ' MB')} RSS after the request runs | ${fmt(c.memory.peakAfterRequestsMB, 1, ' MB')} (after the slow streams: ${fmt(c.memory.peakMB, 1, ' MB')}) |`,
    );
  }
  for (const c of r.startup?.cases ?? []) {
    if (c.available) lines.push(`| ${c.label} (start, this run) | ${fmt(c.idleRssMB?.median, 1, ' MB')} RSS 1 s after ready | – | – |`);
  }
  const e = r.e2eMemory;
  if (e) {
    lines.push(
      `| llm-fallback sidecar in a pod (\`npm run e2e\`, ${e.measuredAt}) | cgroup usage ${fmt(e.idle.usageMiB, 1, ' MiB')}, rss ${fmt(e.idle.rssMiB, 1, ' MiB')} | after ${e.requests} requests (${e.loadMs} ms): usage ${fmt(e.afterLoad.usageMiB, 1, ' MiB')}, rss ${fmt(e.afterLoad.rssMiB, 1, ' MiB')} | ${fmt(e.afterLoad.peakMiB, 1, ' MiB')} (limit ${fmt(e.afterLoad.limitMiB, 0, ' MiB')}) |`,
    );
  } else if (e === null) {
    lines.push('| llm-fallback sidecar in a pod | no e2e run on this machine | | |');
  } // undefined: a results.json from before the bench read the e2e's figures

  lines.push('');
  return lines;
}

function targetsSection(r: Results): string[] {
  const lines = ['## Targets (issue 16)', ''];
  lines.push(
    "Against the Node floor (bench/node-floor.ts) and a bare Node HTTP server measured in this run, with llm-fallback's features on and its log at info; medians. A target is *not measured* when this run lacked its figures (a case not asked for or unavailable).",
    '',
    '| target | llm-fallback | against | ratio / difference | met? |',
    '|---|---|---|---|---|',
  );
  for (const t of targetChecks(r.cases, r.startup))
    lines.push(`| ${t.target} | ${t.ours} | ${t.reference} | ${t.comparison} | ${t.passed === null ? 'not measured' : t.passed ? 'yes' : '**no**'} |`);
  lines.push('');
  return lines;
}

// ---------------------------------------------------------------------------
// SVG chart: four bar panels, drawn by hand.

interface Bar {
  label: string;
  value: number | null;
  color: string;
}

const COLORS: Record<string, string> = { direct: '#9e9e9e', 'llm-fallback': '#1f77b4', portkey: '#d62728', nginx: '#2ca02c', 'node-floor': '#ff7f0e' };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(x: number, y: number, w: number, h: number, title: string, bars: Bar[], digits: number, target?: { value: number; label: string }): string {
  const parts: string[] = [
    `<g transform="translate(${x},${y})">`,
    `<text x="${w / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  const top = 34;
  const bottom = h - 34;
  const left = 10;
  const max = Math.max(1e-9, target?.value ?? 0, ...bars.map((b) => (b.value !== null && Number.isFinite(b.value) ? b.value : 0)));
  const scale = (v: number): number => (v / max) * (bottom - top - 16);
  const slot = (w - 2 * left) / Math.max(1, bars.length);
  const barW = Math.min(70, slot * 0.6);
  parts.push(`<line x1="${left}" y1="${bottom}" x2="${w - left}" y2="${bottom}" stroke="#333"/>`);
  bars.forEach((b, i) => {
    const cx = left + slot * i + slot / 2;
    const valid = b.value !== null && Number.isFinite(b.value);
    const bh = valid ? scale(b.value ?? 0) : 0;
    if (valid) parts.push(`<rect x="${cx - barW / 2}" y="${bottom - bh}" width="${barW}" height="${Math.max(bh, 0.5)}" fill="${b.color}"/>`);
    const text = valid ? (b.value ?? 0).toFixed(digits) : 'n/a';
    parts.push(`<text x="${cx}" y="${bottom - bh - 4}" text-anchor="middle" font-size="11">${esc(text)}</text>`);
    parts.push(`<text x="${cx}" y="${bottom + 15}" text-anchor="middle" font-size="11">${esc(b.label)}</text>`);
  });
  if (target) {
    const ty = bottom - scale(target.value);
    parts.push(`<line x1="${left}" y1="${ty}" x2="${w - left}" y2="${ty}" stroke="#d62728" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${w - left}" y="${ty - 4}" text-anchor="end" font-size="10" fill="#d62728">${esc(target.label)}</text>`);
  }
  parts.push('</g>');
  return parts.join('\n');
}

export function renderSvg(r: Results): string {
  const W = 980;
  const H = 700;
  const pw = W / 2 - 20;
  const ph = (H - 80) / 2 - 10;
  const avail = r.cases.filter((c) => c.available);
  const color = (id: string): string => COLORS[id] ?? '#555';
  const proxies = avail.filter((c) => c.id !== 'direct');
  const rps: Bar[] = avail.map((c) => ({ label: c.label, value: c.c32?.rps.median ?? null, color: color(c.id) }));
  const added: Bar[] = proxies.map((c) => ({ label: c.label, value: c.latencyC1?.addedP50us.median ?? null, color: color(c.id) }));
  const rss: Bar[] = proxies.map((c) => ({ label: c.label, value: c.memory?.peakAfterRequestsMB ?? null, color: color(c.id) }));
  // Issue 16's targets are relative to the Node floor in the same run: drawn where the floor puts them.
  const floor = avail.find((c) => c.id === 'node-floor');
  const relative = (value: number | null | undefined, at: (v: number) => number, label: (v: number) => string): { value: number; label: string } | undefined =>
    value === null || value === undefined || !Number.isFinite(value) ? undefined : { value: at(value), label: label(at(value)) };
  const rpsTarget = relative(
    floor?.c32?.rps.median,
    (v) => v * LIMITS.rpsRatio,
    (v) => `target ≥ ${v.toFixed(0)} (${LIMITS.rpsRatio}× floor)`,
  );
  const addedTarget = relative(
    floor?.latencyC1?.addedP50us.median,
    (v) => v + LIMITS.addedP50Us,
    (v) => `target ≤ ${v.toFixed(0)} µs (floor + ${LIMITS.addedP50Us})`,
  );
  const rssTarget = relative(
    floor?.memory?.peakAfterRequestsMB,
    (v) => v + LIMITS.rssUnderLoadMB,
    (v) => `target ≤ ${v.toFixed(0)} MB (floor + ${LIMITS.rssUnderLoadMB})`,
  );
  const streams: Bar[] = avail.map((c) => ({ label: c.label, value: c.streams?.sustained.median ?? null, color: color(c.id) }));
  const m = r.machine;
  const line1 = `${r.date.slice(0, 16).replace('T', ' ')} UTC · ${m.nproc} cores, ${m.cpuModel} · Node ${m.node} · ${r.settings.mode} mode, median of ${r.settings.runs} run(s) · ${r.settings.loadGenerator.split(' (')[0] ?? ''}`;
  const line2 = r.settings.note.length > 150 ? `${r.settings.note.slice(0, 147)}…` : r.settings.note;
  const top = 66;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${W / 2}" y="24" text-anchor="middle" font-size="18" font-weight="bold">llm-fallback vs peers (each proxy pinned to one core)</text>
<text x="${W / 2}" y="42" text-anchor="middle" font-size="11" fill="#555">${esc(line1)}</text>
<text x="${W / 2}" y="56" text-anchor="middle" font-size="11" fill="#b00">${esc(line2)}</text>
${panel(10, top, pw, ph, 'Throughput at 32 connections (req/s, higher is better)', rps, 0, rpsTarget)}
${panel(W / 2 + 10, top, pw, ph, 'Added latency p50 at c=1 (µs, lower is better)', added, 0, addedTarget)}
${panel(10, top + ph + 10, pw, ph, 'Peak RSS of the proxy under load (MB, lower is better)', rss, 1, rssTarget)}
${panel(W / 2 + 10, top + ph + 10, pw, ph, 'Concurrent streams sustained (higher is better)', streams, 0)}
</svg>
`;
}
