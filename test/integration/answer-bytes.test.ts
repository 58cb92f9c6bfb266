// A non-streaming answer from an upstream of the caller's own format reaches the caller
// byte for byte (no parse-and-reserialise: numbers beyond double precision, key order and
// spacing survive), and is rewritten only when something in it must change (no model).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

// Upstream bodies by the model the proxy asks for.
const BODIES: Record<string, string> = {
  // Spacing, key order and an id that JSON.parse would round (2^64 + 1).
  exact:
    '{ "id": "chatcmpl-1", "object": "chat.completion", "seed": 18446744073709551617, "model": "exact",\n  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],\n  "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4} }',
  // No model in the answer: the proxy names the step's model, so the body is rewritten.
  unnamed: '{"id":"chatcmpl-2","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}',
};

let upstream: Server;
let proxy: ProxyHarness;

before(async () => {
  upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const model = String((JSON.parse(text) as { model?: unknown }).model);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(BODIES[model] ?? '{"error":{"message":"unknown model"}}');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  proxy = await startProxy({
    config: [chainYaml({ name: 'exact', baseURL, steps: [{ model: 'exact' }] }), chainYaml({ name: 'unnamed', baseURL, steps: [{ model: 'unnamed' }] })].join(
      '\n---\n',
    ),
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
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  return res.text();
}

describe('the bytes of a passed-through answer', () => {
  test('unchanged when nothing needs changing', async () => {
    assert.equal(await ask('exact'), BODIES['exact']);
  });

  test('rewritten with the step model when the upstream named none', async () => {
    const body = JSON.parse(await ask('unnamed')) as { model?: unknown; id?: unknown };
    assert.equal(body.model, 'unnamed');
    assert.equal(body.id, 'chatcmpl-2');
  });
});
