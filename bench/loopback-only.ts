// Preload (`node --import ./bench/loopback-only.ts server.js`) for third-party servers that
// offer no bind-address option (Portkey's gateway calls listen(port) and so binds every
// interface): a listen() given a port but no host binds 127.0.0.1 instead.
import net from 'node:net';

type Listen = (this: net.Server, ...args: unknown[]) => net.Server;

// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with .call(this), as the original listen expects
const original = net.Server.prototype.listen as unknown as Listen;

function patched(this: net.Server, ...args: unknown[]): net.Server {
  const [first, second] = args;
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback]): add the host when it is missing.
    if (typeof second !== 'string') return original.call(this, Number(first), '127.0.0.1', ...args.slice(1).filter((a) => a !== undefined));
    return original.call(this, ...args);
  }
  if (typeof first === 'object' && first !== null && !('path' in first) && !('fd' in first) && !('handle' in first) && !('_handle' in first)) {
    const options = first as net.ListenOptions;
    if (options.host === undefined) return original.call(this, { ...options, host: '127.0.0.1' }, ...args.slice(1));
  }
  return original.call(this, ...args);
}

net.Server.prototype.listen = patched;
