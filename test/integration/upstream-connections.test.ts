// A failed attempt whose error answer was read to its end leaves its keep-alive connection in
// the pool: the requests after it reuse it rather than opening new ones (an upstream in trouble
// should not also be handed a reconnect per failure). The fallback step, sent at once, may get a
// second connection: undici's pool takes a connection back a turn of the event loop after its
// answer ended (it first checks that the upstream did not close it meanwhile). Two connections
// then serve every request. Fails with 10 when the upstream client does not keep connections
// alive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';

let up: FaultUpstream;
let proxy: ProxyHarness;

before(async () => {
  up = await startFaultUpstream();
  const chain = chainYaml({
    name: 'reuse',
    baseURL: up.url,
    steps: [{ model: 'fault:503#reuse-primary', retries: 0 }, { model: 'fault:ok#reuse-fallback' }],
    // Never opens here: every request meets the 503 first.
    circuitBreaker: { failureThreshold: 1000, windowSeconds: 30, cooldownSeconds: 1 },
  });
  proxy = await startProxy({ config: `${chain}\n` });
});

after(async () => {
  await up?.close();
  await proxy?.close();
});

test('sequential requests that each fall back after a 503 reuse their upstream connections, with no new one per failure', async () => {
  up.reset();
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'reuse', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.text();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-llm-fallback-model'), 'fault:ok#reuse-fallback');
  }
  assert.equal(up.requestsFor('fault:503#reuse-primary').length, 5);
  assert.equal(up.requestsFor('fault:ok#reuse-fallback').length, 5);
  assert.ok(up.connectionsAccepted() <= 2, `${up.connectionsAccepted()} connections for 10 requests`);
});
