// undici's connection pool, and only that. The package's index also loads fetch, WebSocket,
// the HTTP cache, the proxy and mock agents: 3 MB more resident memory in every pod for code
// the sidecar never runs (a minimal proxy idled at +7.6 MB with the index, +4.5 MB with these
// two files; docs/bench/findings.md). Loaded with require() so that the bundle takes these
// files and nothing else (scripts/bundle.ts).
import { createRequire } from 'node:module';
import type { Agent, Client } from 'undici';

const require = createRequire(import.meta.url);

/** A pool per origin, connections made as requests need them and kept alive between them. */
export const PoolAgent = require('undici/lib/dispatcher/agent.js') as typeof Agent;

/** One connection to one origin. */
export const SingleConnection = require('undici/lib/dispatcher/client.js') as typeof Client;

/**
 * undici's hook for a request still waiting for its connection: the dispatch options' function
 * under this key is given a canceller that takes the request out of the queue and gives up the
 * connect. undici's own request API passes it the same way (lib/api/abort-signal.js); were it
 * gone in another version, the key would be `undefined` and an abort would wait for the connect.
 */
export const kQueuedAbort = (require('undici/lib/core/symbols.js') as { kQueuedAbort: symbol }).kQueuedAbort;
