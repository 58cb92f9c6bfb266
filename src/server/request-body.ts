// The JSON body of a chain request, read straight from Node's request (no body-parser on the
// hot path): at most `limit` bytes after decompression, gzip/deflate/br accepted, UTF-8 only.
// Whatever the content-type says is parsed as JSON: SDKs always send JSON, curl users often
// forget the header. An empty body reads as {} (the chain check then asks for a model).
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

export type BodyRead =
  | { kind: 'ok'; value: unknown }
  /** A bad body: answered with this status and code, in the caller's error shape. */
  | { kind: 'rejected'; status: number; code: string; message: string }
  /** The caller went away before the body was complete: nothing to answer. */
  | { kind: 'aborted' };

export async function readJsonBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  const problem = headerProblem(req, limit);
  if (problem) return problem;
  const source = decoded(req);
  if (source === undefined) {
    return rejected(415, 'unsupported_encoding', `unsupported content encoding "${String(req.headers['content-encoding'])}"`);
  }
  const bytes = await collect(req, source, limit);
  if (bytes === 'tooLarge') return tooLarge(limit);
  if (bytes === 'aborted') return { kind: 'aborted' };
  if (bytes === 'corrupt') return rejected(400, 'invalid_body', `the request body could not be decompressed as ${String(req.headers['content-encoding'])}`);
  return parse(bytes);
}

function headerProblem(req: IncomingMessage, limit: number): BodyRead | undefined {
  const declared = Number(req.headers['content-length']);
  // An identity body can be refused on its declared length before reading it.
  if (!req.headers['content-encoding'] && Number.isFinite(declared) && declared > limit) return tooLarge(limit);
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && !charset.startsWith('utf-')) return rejected(415, 'unsupported_encoding', `unsupported charset "${charset.toUpperCase()}"`);
  return undefined;
}

function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const match = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType);
  return match?.[1]?.toLowerCase();
}

function decoded(req: IncomingMessage): Readable | undefined {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return req;
  const inflater = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
  if (!inflater) return undefined;
  req.on('error', () => inflater.destroy(new CallerGone()));
  return req.pipe(inflater);
}

/** The caller's connection failed while an inflater was reading its body. */
class CallerGone extends Error {}

/** The body's bytes, or why there are none. Events, not an async iterator: this runs on every request. */
function collect(req: IncomingMessage, source: Readable, limit: number): Promise<Buffer | 'tooLarge' | 'aborted' | 'corrupt'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done();
        // Stop inflating, and let the rest of the request body flow away unread.
        if (source !== req) source.destroy();
        req.resume();
        resolve('tooLarge');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size));
    };
    // An error of the request itself means the caller went away; one of the inflater, bad compressed bytes.
    const onError = (error?: Error): void => {
      done();
      const callerGone = source === req || error === undefined || error instanceof CallerGone;
      // The rest of a corrupt body flows away unread, so the connection can carry the next request.
      if (!callerGone) req.resume();
      resolve(callerGone ? 'aborted' : 'corrupt');
    };
    const done = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
    };
    // A request closed before 'end' was aborted by the caller.
    const onClose = (): void => onError();
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    source.on('close', onClose);
  });
}

function parse(bytes: Buffer): BodyRead {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { kind: 'ok', value: {} };
  try {
    return { kind: 'ok', value: JSON.parse(text) as unknown };
  } catch (error) {
    return rejected(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function tooLarge(limit: number): BodyRead {
  return rejected(413, 'body_too_large', `the request body is larger than the limit of ${limit} bytes`);
}

function rejected(status: number, code: string, message: string): BodyRead {
  return { kind: 'rejected', status, code, message };
}
