// The bench's warm-up sends requests whose callers go away (bench/lib/load.ts), so that a proxy
// meets that path before its measured slices. These check against a real server that the
// requests arrive, that nobody waits for their answers, and that the proxy sees its callers
// gone before it could finish, in the three ways the helper leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { abandonedRequests } from '../../bench/lib/load.ts';

test('abandonedRequests: every caller goes away with its answer unfinished, and the helper waits for none', { timeout: 10_000 }, async () => {
  const seen: Array<{ model: unknown; authorization: string | undefined }> = [];
  let finished = 0;
  let gone = 0;
  // Four of six requests are sure to arrive: those closed after writing (FIN) and those reset
  // once the answer began. The two reset at once may be dropped by the kernel before they are read.
  let fourGone: () => void = () => undefined;
  const fourHaveGone = new Promise<void>((resolve) => (fourGone = resolve));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ model: (JSON.parse(body) as { model?: unknown }).model, authorization: req.headers.authorization });
      // The answer begins and never ends: only a caller that waits would hang the helper.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
    });
    res.on('finish', () => finished++);
    res.on('close', () => {
      if (++gone === 4) fourGone();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await abandonedRequests({ url: `http://127.0.0.1:${port}/v1/chat/completions`, model: 'm-1', headers: { Authorization: 'Bearer k' } }, 6);
    await fourHaveGone;
    assert.ok(seen.length >= 4, `${seen.length} requests arrived`);
    for (const r of seen) assert.deepEqual(r, { model: 'm-1', authorization: 'Bearer k' });
    assert.equal(finished, 0, 'no answer was finished');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
