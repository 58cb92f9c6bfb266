// Node's HTTP modules, loaded with require() instead of `import`. Importing a built-in as an
// ES module evaluates every one of its exports, and node:http's include getters (WebSocket and
// friends) that load Node's bundled undici: ~11 MB of resident memory in every pod for code the
// sidecar never runs (measured in docs/bench/findings.md). require() reads only what is used.
// node:https (TLS) is loaded on first use: a sidecar whose upstreams are all plain HTTP (an
// in-cluster gateway) never pays for it.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');

let httpsModule: typeof import('node:https') | undefined;

export function https(): typeof import('node:https') {
  httpsModule ??= require('node:https') as typeof import('node:https');
  return httpsModule;
}
