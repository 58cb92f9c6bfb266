import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from '../../src/observability/prom.ts';
import { TotalledCounter } from '../../src/observability/totalled-counter.ts';

function counter(): { totals: TotalledCounter<'chain' | 'outcome'>; registry: InstanceType<typeof Registry> } {
  const registry = new Registry();
  const totals = new TotalledCounter({ name: 'x_total', help: 'x', labelNames: ['chain', 'outcome'], registers: [registry] });
  return { totals, registry };
}

describe('a totalled counter', () => {
  // Proves additions reach the exposition with their labels in label-name order, summed per series.
  test('a scrape shows every series with its sum', async () => {
    const { totals, registry } = counter();
    totals.add(['a', 'success']);
    totals.add(['a', 'success']);
    totals.add(['a', 'failure'], 2.5);
    totals.add(['b', 'success']);
    const text = await registry.metrics();
    assert.match(text, /^x_total\{chain="a",outcome="success"\} 2$/m);
    assert.match(text, /^x_total\{chain="a",outcome="failure"\} 2.5$/m);
    assert.match(text, /^x_total\{chain="b",outcome="success"\} 1$/m);
  });

  // Proves nothing is counted twice: what a scrape handed over is not handed over again, and
  // later additions are added to it.
  test('scrapes in a row keep totals, and later additions add to them', async () => {
    const { totals, registry } = counter();
    totals.add(['a', 'success'], 3);
    assert.match(await registry.metrics(), /^x_total\{chain="a",outcome="success"\} 3$/m);
    assert.match(await registry.metrics(), /^x_total\{chain="a",outcome="success"\} 3$/m);
    totals.add(['a', 'success']);
    const { values } = await totals.counter.get();
    assert.deepEqual(values, [{ value: 4, labels: { chain: 'a', outcome: 'success' } }]);
  });

  // Proves label values that share a prefix path are still separate series (the per-label maps nest).
  test('series that share leading values stay apart', async () => {
    const registry = new Registry();
    const totals = new TotalledCounter({ name: 'y_total', help: 'y', labelNames: ['a', 'b', 'c'], registers: [registry] });
    totals.add(['1', '2', '3']);
    totals.add(['1', '2', '4']);
    totals.add(['1', '5', '3']);
    const text = await registry.metrics();
    for (const series of ['a="1",b="2",c="3"', 'a="1",b="2",c="4"', 'a="1",b="5",c="3"']) assert.ok(text.includes(`y_total{${series}} 1`), series);
  });

  // Proves a call with the wrong number of label values is refused, as prom-client refuses unknown labels.
  test('the wrong number of label values throws', () => {
    const { totals } = counter();
    assert.throws(() => totals.add(['a']), /x_total: 1 label values for 2 labels/);
  });
});
