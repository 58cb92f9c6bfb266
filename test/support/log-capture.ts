// A pino destination that keeps every JSON log line in memory, so tests can assert on
// them and wait for one by event instead of sleeping.
import { Writable } from 'node:stream';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface LogCapture {
  sink: Writable;
  logs: LogLine[];
  /** Resolves with the first line (already written or still to come) that matches. */
  waitForLog: (match: (line: LogLine) => boolean) => Promise<LogLine>;
}

export function captureLogs(): LogCapture {
  const logs: LogLine[] = [];
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        logs.push(line);
        for (const w of [...waiters]) {
          if (w.match(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
      done();
    },
  });
  const waitForLog = (match: (line: LogLine) => boolean): Promise<LogLine> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => waiters.push({ match, resolve }));
  };
  return { sink, logs, waitForLog };
}
