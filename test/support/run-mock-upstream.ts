// `npm run mock-upstream`: the fault upstream for poking at the proxy by hand.
// Port: MOCK_UPSTREAM_PORT, else the first CLI argument, else 4010.
import { startFaultUpstream } from './fault-upstream.ts';

function pickPort(): number {
  const raw = process.env['MOCK_UPSTREAM_PORT'] ?? process.argv[2] ?? '4010';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port: ${raw}`);
  return port;
}

const upstream = await startFaultUpstream({ port: pickPort() });
console.log(`mock upstream on ${upstream.url}`);
console.log('pick a behaviour with model "fault:<behaviour>[#tag]", e.g. fault:429, fault:500-then-ok, fault:cut-after-2');

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping mock upstream`);
  await upstream.close();
}

process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));
