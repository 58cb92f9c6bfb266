// prom-client's classes, required file by file. Its index also loads the Pushgateway (which
// requires node:https, so all of TLS), the cluster aggregator and Summary's t-digest, none
// of which the sidecar uses: ~5 MB of resident memory in every pod (docs/bench/findings.md).
// The types are the package's own; only the loading differs.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
export const Counter = require('prom-client/lib/counter') as typeof Prom.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;
export const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof Prom.collectDefaultMetrics;

/** One of prom-client's default metrics: registers its series, read when the registry is. */
type ProcessMetric = (registry: Prom.Registry, config: { prefix: string }) => void;

// prom-client's default metrics but its GC histogram (nodejs_gc_duration_seconds). That one
// observes 'gc' performance entries, and while anything does, Node builds every collection's
// entry with a pair of util.deprecate wrappers per detail field (its old accessors, DEP0152):
// closures, a Map and a prototype change per scavenge, ~35 a second at c=1, long-lived enough
// to be promoted: half of what the request path left in the old space once the connection
// cap's tables were gone (docs/bench/findings.md, "Targets, sixteenth sitting"). The heap,
// event-loop, CPU, handle and file-descriptor series are kept, under the same names.
const PROCESS_METRICS: readonly ProcessMetric[] = [
  require('prom-client/lib/metrics/processCpuTotal') as ProcessMetric,
  require('prom-client/lib/metrics/processStartTime') as ProcessMetric,
  require('prom-client/lib/metrics/osMemoryHeap') as ProcessMetric,
  require('prom-client/lib/metrics/processOpenFileDescriptors') as ProcessMetric,
  require('prom-client/lib/metrics/processMaxFileDescriptors') as ProcessMetric,
  require('prom-client/lib/metrics/eventLoopLag') as ProcessMetric,
  require('prom-client/lib/metrics/processResources') as ProcessMetric,
  require('prom-client/lib/metrics/processHandles') as ProcessMetric,
  require('prom-client/lib/metrics/processRequests') as ProcessMetric,
  require('prom-client/lib/metrics/heapSizeAndUsed') as ProcessMetric,
  require('prom-client/lib/metrics/heapSpacesSizeAndUsed') as ProcessMetric,
  require('prom-client/lib/metrics/version') as ProcessMetric,
];

/** The process's own series (prom-client's default metrics without the GC histogram), their names prefixed. */
export function collectProcessMetrics(registry: Prom.Registry, prefix: string): void {
  for (const metric of PROCESS_METRICS) metric(registry, { prefix });
}
