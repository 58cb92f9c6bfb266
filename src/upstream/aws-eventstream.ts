// AWS's binary event stream (application/vnd.amazon.eventstream: Bedrock's ConverseStream)
// turned into the messages the SSE reader hands out, so the attempt and the stream pump read
// every framing the same way. Each binary message (prelude, headers, JSON payload, CRCs,
// checked by @smithy/eventstream-codec) becomes one SSE event: `event` is its `:event-type`
// (or `:exception-type` for an exception), `data` its payload. The codec is imported on
// first use, so chains without Bedrock never load it.
import { Transform, type Readable, type TransformCallback } from 'node:stream';

type Codec = import('@smithy/eventstream-codec').EventStreamCodec;
let codec: Promise<Codec> | undefined;

async function loadCodec(): Promise<Codec> {
  codec ??= Promise.all([import('@smithy/eventstream-codec'), import('@smithy/util-utf8')]).then(
    ([{ EventStreamCodec }, { toUtf8, fromUtf8 }]) => new EventStreamCodec(toUtf8, fromUtf8),
  );
  return codec;
}

/** The body re-framed as SSE text. Loads the codec first (once per process). */
export async function awsEventStreamAsSse(body: Readable): Promise<Readable> {
  const decoder = await loadCodec();
  // A frame may arrive split across chunks (or several in one): the prelude's total length says where each ends.
  let pending: Buffer = Buffer.alloc(0);
  const toSse = new Transform({
    readableObjectMode: false,
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        while (pending.length >= 4) {
          const total = pending.readUInt32BE(0);
          if (total < 16) throw new Error(`event stream frame of ${total} bytes`);
          if (pending.length < total) break;
          const frame = pending.subarray(0, total);
          pending = pending.subarray(total);
          const message = decoder.decode(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength));
          const header = (name: string): string | undefined => {
            const value = message.headers[name];
            return value && value.type === 'string' ? value.value : undefined;
          };
          const kind = header(':message-type');
          const event = kind === 'exception' ? header(':exception-type') : kind === 'error' ? header(':error-code') : header(':event-type');
          const data = Buffer.from(message.body).toString('utf8');
          const payload = kind === 'error' ? JSON.stringify({ message: header(':error-message') ?? data }) : data;
          this.push(`event: ${event ?? 'unknown'}\ndata: ${payload.replace(/\r?\n/g, ' ')}\n\n`);
        }
        done();
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    },
  });
  body.on('error', (error) => toSse.destroy(error));
  body.pipe(toSse);
  // The reader closing its side (a cancelled or finished stream) releases the connection too.
  toSse.on('close', () => body.destroy());
  return toSse;
}
