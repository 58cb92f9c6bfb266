// A stream from an upstream of the caller's own format reaches the caller event by event as
// the upstream wrote it (no parse-and-reserialise per event), is rewritten only where an
// event needs changing (no model, usage the caller did not ask for, data over several lines,
// a known key in it), and leaves in one write per turn, not one per event. A key the
// upstream echoes is taken out even when the event carrying it came in two pieces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const KEY = 'sk-stream-event-bytes-0123456789abcdef';

// Events with spacing, key order and an integer JSON.parse would round (2^64 + 1).
const EXACT = [
  'data: { "id": "c1", "object": "chat.completion.chunk", "seed": 18446744073709551617, "model": "exact", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "h\\u00e9"}}] }\n\n',
  'data: {"model":"exact","id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"llo"}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"exact","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  'data: [DONE]\n\n',
];

function chunk(content: string, extra = ''): string {
  return `data: {"id":"c1","object":"chat.completion.chunk"${extra},"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}]}\n\n`;
}
const FINISH = 'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n';

// As OpenAI writes a stream with include_usage (which the proxy always asks for): "usage":null
// last in every chunk, then a usage chunk. Then the cases that must be rewritten instead:
// spacing, a second "usage" key and "usage":null inside a string; a nested one is content.
const USAGE_LAST = [
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"h\\u00e9"}}],"usage":null}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"a"}}], "usage": null}\n\n',
  'data: {"id":"c1","usage":{"x":1},"object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"b"}}],"usage":null}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"c"}}],"extra":{"usage":null}}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"d,\\"usage\\":null}"}}],"usage":null}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n',
  'data: [DONE]\n\n',
];

let upstream: Server;
let proxy: ProxyHarness;

/** The upstream's stream by the model the proxy asks for; written at once unless it says otherwise. */
function serve(model: string, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (model === 'exact') return void res.end(EXACT.join(''));
  if (model === 'unnamed') return void res.end(chunk('hi') + FINISH + 'data: [DONE]\n\n');
  if (model === 'usage') return void res.end(chunk('hi', ',"model":"m","usage":null') + FINISH + 'data: [DONE]\n\n');
  if (model === 'usage-last') return void res.end(USAGE_LAST.join(''));
  if (model === 'lines')
    return void res.end('data: {"id":"c1","object":"chat.completion.chunk","model":"m",\ndata: "choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n' + FINISH);
  if (model === 'many') {
    let text = '';
    for (let i = 0; i < 8; i++) text += chunk(`t${i}`, ',"model":"m"');
    return void res.end(text + FINISH + 'data: [DONE]\n\n');
  }
  if (model === 'split-key') {
    // The key JSON-escaped (as an echo may write it), and cut in two across writes: the second
    // half is sent once the first has left, so the proxy reads the event in two pieces.
    const escaped = `\\u0073${KEY.slice(1)}`;
    const event = chunk('', ',"model":"m"').replace('"content":""', `"content":"echo ${escaped} end"`);
    const cut = event.indexOf(escaped) + 10;
    res.write(chunk('a', ',"model":"m"') + event.slice(0, cut), () => setImmediate(() => res.end(event.slice(cut) + FINISH + 'data: [DONE]\n\n')));
    return;
  }
  res.end('data: {"error":{"message":"unknown model"}}\n\n');
}

before(async () => {
  upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (piece: Buffer) => (text += piece.toString()));
    req.on('end', () => serve(String((JSON.parse(text) as { model?: unknown }).model), res));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  const models = ['exact', 'unnamed', 'usage', 'usage-last', 'lines', 'many', 'split-key'];
  proxy = await startProxy({
    config: models.map((name) => chainYaml({ name, baseURL, steps: [{ model: name }], apiKey: 'EVENT_BYTES_KEY' })).join('\n---\n'),
    env: { EVENT_BYTES_KEY: KEY },
  });
});

after(async () => {
  await proxy?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

function body(model: string): string {
  return JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
}

async function ask(model: string): Promise<string> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(model) });
  assert.equal(res.status, 200);
  return res.text();
}

/** The data of each event of an SSE text. */
function events(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) =>
      e
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n'),
    );
}

/** The response as it came off the socket: the sizes of its chunks (chunked encoding), in order. */
async function chunkSizes(model: string): Promise<number[]> {
  const url = new URL(proxy.baseURL);
  const socket = connect(Number(url.port), url.hostname);
  const payload = body(model);
  socket.write(
    `POST ${url.pathname}/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`,
  );
  let raw = '';
  for await (const piece of socket) raw += (piece as Buffer).toString('latin1');
  const rest = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const sizes: number[] = [];
  for (let at = 0; ;) {
    const lineEnd = rest.indexOf('\r\n', at);
    const size = Number.parseInt(rest.slice(at, lineEnd), 16);
    if (size === 0) return sizes;
    sizes.push(size);
    at = lineEnd + 2 + size + 2;
  }
}

describe('the bytes of a passed-through stream', () => {
  test('events go out as the upstream wrote them when nothing in them needs changing', async () => {
    assert.equal(await ask('exact'), EXACT.join(''));
  });

  test('an event without a model is rewritten with the step model', async () => {
    const [first] = events(await ask('unnamed'));
    assert.equal((JSON.parse(first ?? '') as { model?: unknown }).model, 'unnamed');
  });

  test('usage the caller did not ask for is left out, as before', async () => {
    const [first] = events(await ask('usage'));
    assert.equal('usage' in (JSON.parse(first ?? '') as object), false);
  });

  test('"usage":null last in a compact chunk is cut from the upstream\'s own text; other usage is rewritten', async () => {
    const got = events(await ask('usage-last'));
    const sent = events(USAGE_LAST.join(''));
    // The usage chunk is not forwarded (the caller did not ask for usage); [DONE] is.
    assert.equal(got.length, sent.length - 1);
    assert.equal(got[got.length - 1], '[DONE]');
    // Compact, last, alone: the upstream's bytes (its \u00e9 escape kept) without the member.
    assert.equal(got[0], (sent[0] ?? '').replace(',"usage":null}', '}'));
    assert.equal(got[5], (sent[5] ?? '').replace(',"usage":null}', '}'));
    // No usage member of its own (a nested one is content): the upstream's bytes.
    assert.equal(got[3], sent[3]);
    // Rewritten from the parsed chunk: the usage member gone wherever it stood, nothing else lost.
    for (const i of [1, 2, 4]) {
      const out = JSON.parse(got[i] ?? '') as Record<string, unknown>;
      const expected = JSON.parse(sent[i] ?? '') as Record<string, unknown>;
      delete expected['usage'];
      assert.deepEqual(out, expected, `event ${i}`);
      assert.notEqual(got[i], sent[i]);
    }
    // The "usage":null inside a string is the chunk's content, kept.
    assert.equal((JSON.parse(got[4] ?? '') as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content, 'd,"usage":null}');
  });

  test('data over several lines is written anew as one line', async () => {
    const text = await ask('lines');
    const [first] = events(text);
    assert.equal(
      first,
      JSON.stringify(JSON.parse('{"id":"c1","object":"chat.completion.chunk","model":"m",\n"choices":[{"index":0,"delta":{"content":"hi"}}]}')),
    );
  });

  test('a known key in an event that came in two pieces is taken out', async () => {
    const text = await ask('split-key');
    assert.ok(!text.includes(KEY.slice(1)), text);
    assert.match(text, /echo \[REDACTED\] end/);
    for (const data of events(text)) if (data !== '[DONE]') JSON.parse(data);
  });
});

describe('writes of a stream', () => {
  test('events handled in one turn leave in one write, not one per event', async () => {
    // Ten events and [DONE] in one upstream write: the first event leaves at once (with the
    // headers), the rest together.
    const sizes = await chunkSizes('many');
    assert.ok(sizes.length <= 3, `chunks: ${sizes.join(', ')}`);
  });
});
