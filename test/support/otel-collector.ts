// A real OpenTelemetry Collector (built by scripts/otelcol.sh from the Go module proxy, cached
// outside the repo) on 127.0.0.1: its otlp receiver takes what the proxy exports (OTLP/HTTP
// protobuf), its otlphttp exporter re-exports what it decoded as OTLP/JSON to a listener of
// this harness, where tests read the spans. So a span counts only if a collector accepted it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type AttrValue = string | number | boolean;

export interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind number: 1 internal, 2 server, 3 client. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, AttrValue>;
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  events: Array<{ name: string; attributes: Record<string, AttrValue> }>;
  resource: Record<string, AttrValue>;
}

export interface Collector {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for the proxy. */
  endpoint: string;
  spans: ExportedSpan[];
  /** Every OTLP/JSON body the collector re-exported, as text: for "nothing of X anywhere" checks. */
  raw: string[];
  /** Resolves with the spans of a trace once `done` says they are all there. */
  trace(traceId: string, done: (spans: ExportedSpan[]) => boolean): Promise<ExportedSpan[]>;
  close(): Promise<void>;
}

let binary: Promise<string> | undefined;

/** scripts/otelcol.sh: builds on a cold cache (about a minute), answers at once when cached. */
export function otelcolBinary(): Promise<string> {
  binary ??= promisify(execFile)('bash', [path.join(repoRoot, 'scripts', 'otelcol.sh')], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => {
    const line = stdout.trim().split('\n').at(-1) ?? '';
    if (!line.startsWith('OTELCOL=')) throw new Error(`scripts/otelcol.sh printed no binary path:\n${stdout}`);
    return line.slice('OTELCOL='.length);
  });
  return binary;
}

export async function startCollector(): Promise<Collector> {
  const bin = await otelcolBinary();
  const spans: ExportedSpan[] = [];
  const raw: string[] = [];
  const waiters = new Set<() => void>();
  const sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (req.url === '/v1/traces') {
        raw.push(text);
        spans.push(...parseExport(text));
        for (const wake of waiters) wake();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const sinkPort = await listen(sink);
  const receiverPort = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'llmfb-otelcol-'));
  const config = path.join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${receiverPort}`,
      'exporters:',
      '  debug:',
      '    verbosity: basic',
      '  otlphttp:',
      `    endpoint: http://127.0.0.1:${sinkPort}`,
      '    encoding: json',
      '    compression: none',
      '    retry_on_failure:',
      '      enabled: false',
      'service:',
      '  telemetry:',
      '    logs:',
      '      level: info',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [debug, otlphttp]',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  await ready(child);
  return {
    endpoint: `http://127.0.0.1:${receiverPort}`,
    spans,
    raw,
    trace: (traceId, done) =>
      new Promise((resolve) => {
        const check = (): void => {
          const found = spans.filter((s) => s.traceId === traceId);
          if (done(found)) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      sink.closeAllConnections();
      sink.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The collector logs "Everything is ready" once its receiver listens; it exiting first is an error. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer): void => {
      log += chunk.toString('utf8');
      if (log.includes('Everything is ready')) {
        child.stderr?.off('data', onData);
        // Keep draining its log so the pipe never fills.
        child.stderr?.resume();
        resolve();
      }
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`otelcol exited (${code}) before it was ready:\n${log}`)));
  });
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  const port = await listen(probe);
  probe.close();
  await once(probe, 'close');
  return port;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttr {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: OtlpAttr[];
  status?: { code?: number; message?: string };
  events?: Array<{ name: string; attributes?: OtlpAttr[] }>;
}
interface OtlpExport {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpAttr[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

function parseExport(text: string): ExportedSpan[] {
  const body = JSON.parse(text) as OtlpExport;
  const out: ExportedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          startMs: Number(BigInt(s.startTimeUnixNano) / 1_000_000n),
          endMs: Number(BigInt(s.endTimeUnixNano) / 1_000_000n),
          attributes: attrs(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
          resource,
        });
      }
    }
  }
  return out;
}

function attrs(list: OtlpAttr[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}
