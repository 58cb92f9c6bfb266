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
