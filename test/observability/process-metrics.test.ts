// The sidecar's process series: prom-client's default metrics, every one but the GC histogram
// (src/observability/prom.ts says why), under the llm_fallback_process_ prefix. The expected
// names come from prom-client itself, so a default metric it adds in a later version fails
// here until it is listed or left out on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Metrics } from '../../src/observability/metrics.ts';

const require = createRequire(import.meta.url);
const PREFIX = 'llm_fallback_process_';
const defaults = require('prom-client/lib/defaultMetrics') as { metricsList: string[] };

/** The series names of one of prom-client's default metrics, by its module's name. */
function seriesOf(metric: string): string[] {
  return (require(`prom-client/lib/metrics/${metric}`) as { metricNames: string[] }).metricNames;
}

test("every default metric of prom-client's but the GC histogram is served, prefixed", async () => {
  const expected = defaults.metricsList
    .filter((metric) => metric !== 'gc')
    .flatMap(seriesOf)
    .map((name) => PREFIX + name)
    .sort();
  assert.ok(expected.length >= 20, `prom-client lists ${expected.length} default series`);
  const served = (await new Metrics().registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((name) => name.startsWith(PREFIX))
    .sort();
  assert.deepEqual(served, expected);
  assert.deepEqual(seriesOf('gc'), ['nodejs_gc_duration_seconds'], 'the one left out is the GC histogram');
  assert.ok(!served.includes(`${PREFIX}nodejs_gc_duration_seconds`));
});

test('without default metrics no process series is served', async () => {
  const served = (await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name);
  assert.deepEqual(
    served.filter((name) => name.startsWith(PREFIX)),
    [],
  );
});
