// An upstream that echoes its key escaped twice — a JSON `\u0025` over a URL `%73`, or a JSON
// `\u0026` over an HTML `&#115;` (Go's encoding/json writes `&` that way) — must not get it to
// the caller through the paths that pass an upstream's own bytes on: a stream event as it came,
// a JSON answer as it came. Once the caller parses the JSON, the text reads `%73k-…`, which a
// URL decoder turns into the key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const KEY = 'sk-nested-escape-0123456789abcdefXYZ';
const FORMS: Record<string, string> = {
  'JSON over URL': `\\u002573${KEY.slice(1)}`,
  'JSON over HTML': `\\u0026#115;${KEY.slice(1)}`,
  'JSON over URL, every character': [...KEY].map((c) => `\\u0025${c.charCodeAt(0).toString(16)}`).join(''),
};
const NAMES = Object.keys(FORMS);

/** What a caller could recover: the parsed text, URL- and HTML-decoded. */
function decoded(text: string): string {
  return text
    .replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCharCode(Number(d)));
}

let upstream: Server;
let proxy: ProxyHarness;

before(async () => {
  upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (piece: Buffer) => (text += piece.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as { model: string; stream?: boolean };
      const echo = `echo ${FORMS[NAMES[Number(body.model.slice(1))] as string] ?? ''} end`;
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(
          `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"${echo}"}}]}\n\n` +
            'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"${echo}"},"finish_reason":"stop"}]}`,
      );
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  proxy = await startProxy({
    config: NAMES.map((_, i) => chainYaml({ name: `m${i}`, baseURL, steps: [{ model: `m${i}` }], apiKey: 'K' })).join('\n---\n'),
    env: { K: KEY },
  });
});

after(async () => {
  await proxy.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

async function ask(i: number, stream: boolean): Promise<string> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: `m${i}`, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  if (!stream) return (JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content ?? '';
  const first = text.split('\n\n')[0]?.slice('data: '.length) ?? '';
  return (JSON.parse(first) as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content ?? '';
}

describe('a key echoed under two escapes', () => {
  for (const [i, name] of NAMES.entries()) {
    for (const stream of [true, false]) {
      test(`${name}, ${stream ? 'streamed' : 'JSON'}: redacted`, async () => {
        const content = await ask(i, stream);
        assert.ok(!decoded(content).includes(KEY), `the caller can decode the key from ${JSON.stringify(content)}`);
        assert.match(content, /\[REDACTED\]/);
      });
    }
  }
});
