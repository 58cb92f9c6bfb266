// The exporter never holds up or fails a request: a collector that never answers fills the
// bounded queue and spans are dropped (counted), a collector that is not there fails exports
// (counted, logged once); every request is answered all the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

let up: FaultUpstream;
let blackHole: Server;
const held = new Set<Socket>();

before(async () => {
  up = await startFaultUpstream();
  // Takes every export request and never answers it.
  blackHole = createServer(() => {});
  blackHole.on('connection', (socket) => held.add(socket));
  blackHole.listen(0, '127.0.0.1');
  await once(blackHole, 'listening');
});

after(async () => {
  for (const socket of held) socket.destroy();
  blackHole?.close();
  await up?.close();
});

const config = (upstream: string) => chainYaml({ name: 'c', baseURL: upstream, steps: [{ model: 'fault:503#limits' }, { model: 'fault:ok#limits' }] });

async function burst(proxy: ProxyHarness, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fetch(`${proxy.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'c', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.text();
      return res.status;
    }),
  );
}

async function dropped(proxy: ProxyHarness, reason: string): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const match = new RegExp(`^llm_fallback_trace_spans_dropped_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

test(
  'a collector that never answers: the queue stays bounded, what does not fit is dropped and counted, requests are served',
  { timeout: 30_000 },
  async () => {
    const proxy = await startProxy({
      config: config(up.url),
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`,
        OTEL_BSP_MAX_QUEUE_SIZE: '4',
        OTEL_BSP_EXPORT_TIMEOUT: '300',
        OTEL_EXPORTER_OTLP_TIMEOUT: '300',
      },
    });
    try {
      // 20 requests, 3 spans each, while the first export hangs.
      const statuses = await burst(proxy, 20);
      assert.deepEqual(new Set(statuses), new Set([200]));
      assert.ok((await dropped(proxy, 'queue_full')) > 0, 'spans beyond the queue were counted as dropped');
    } finally {
      await proxy.close();
    }
  },
);

test('no collector at all: exports fail, are counted and logged once; requests are served', { timeout: 30_000 }, async () => {
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  await once(closed, 'close');
  const proxy = await startProxy({
    config: config(up.url),
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_EXPORTER_OTLP_TIMEOUT: '500' },
  });
  try {
    assert.deepEqual(await burst(proxy, 3), [200, 200, 200]);
    await proxy.waitForLog((l) => l.msg?.startsWith('span export failed') === true);
    assert.ok((await dropped(proxy, 'export_failed')) > 0);
    assert.deepEqual(await burst(proxy, 3), [200, 200, 200]);
    assert.equal(proxy.logs.filter((l) => l.msg?.startsWith('span export failed') === true).length, 1, 'logged once while it keeps failing');
  } finally {
    await proxy.close();
  }
});
