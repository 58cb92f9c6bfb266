// An upstream whose whole stream arrives with its response headers, and fails on its first
// event (an error event) or in a held answer: the attempt is over before Node has emitted the
// response's 'end'. Giving it up must not cut the connection then: Node's keep-alive handling,
// run on that 'end', takes the socket's error listener away, and an abort raised on the socket
// at that moment is an uncaught exception (the test runner fails the file on one). Every
// request falls back to the next step and is answered; nothing is thrown.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const ERROR_FIRST = 'data: {"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}\n\n';
const good = (model: string): string =>
  `data: {"id":"c1","object":"chat.completion.chunk","model":"${model}","choices":[{"index":0,"delta":{"content":"fine"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n`;
// Held (commit after 5 events), then an error event: the answer fails before anything was sent.
const HELD_THEN_ERROR = `data: {"id":"c1","object":"chat.completion.chunk","model":"held","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n${ERROR_FIRST}`;

let upstream: Server;
let proxy: ProxyHarness;

before(async () => {
  upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (piece: Buffer) => (text += piece.toString()));
    req.on('end', () => {
      const model = String((JSON.parse(text) as { model?: unknown }).model);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // One write with the headers: the proxy reads the whole stream at once.
      res.end(model === 'error-first' ? ERROR_FIRST : model === 'held' ? HELD_THEN_ERROR : good(model));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  const breaker = { failureThreshold: 1000 };
  proxy = await startProxy({
    config: [
      chainYaml({ name: 'error-first', baseURL, steps: [{ model: 'error-first' }, { model: 'next' }], circuitBreaker: breaker }),
      chainYaml({
        name: 'held',
        baseURL,
        steps: [{ model: 'held' }, { model: 'next' }],
        circuitBreaker: breaker,
        policy: { stream: { commit: 'tokens', tokens: 5 } },
      }),
    ].join('\n---\n'),
  });
});

after(async () => {
  await proxy?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

async function ask(model: string): Promise<string> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  return res.text();
}

describe('a stream that failed before Node emitted its end', () => {
  for (const chain of ['error-first', 'held']) {
    test(`${chain}: every request falls back and is answered, nothing uncaught`, async () => {
      for (let i = 0; i < 40; i++) assert.match(await ask(chain), /"model":"next"[\s\S]*data: \[DONE\]/);
    });
  }
});
