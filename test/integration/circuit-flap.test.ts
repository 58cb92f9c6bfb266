// A primary whose upstream is down for a while and then healthy again, seen through the
// real proxy: the circuit opens after the threshold, skips the primary without a request
// while open, sends exactly one probe per cooldown, and closes on the first good probe.
// Every wait on a state change is an event (a log line), never a sleep.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness, type LogLine } from '../support/proxy-harness.ts';

// The primary fails 6 times (503), then answers.
const PRIMARY = 'fault:503x6-then-ok#flap';
const PRIMARY_FAILURES = 6;
const FALLBACK = 'fault:ok#flap-fallback';
const THRESHOLD = 3;
const COOLDOWN_SECONDS = 0.3;
const COOLDOWN_MS = COOLDOWN_SECONDS * 1000;

// A primary that never answers (each attempt ends at its 300 ms total timeout): the
// half-open probe stays in flight long enough for concurrent requests to meet it.
const SLOW_PRIMARY = 'fault:silent#probe';
const SLOW_FALLBACK = 'fault:ok#probe-fallback';

let up: FaultUpstream;
let proxy: ProxyHarness;

before(async () => {
  up = await startFaultUpstream();
  const flap = chainYaml({
    name: 'flap',
    baseURL: up.url,
    steps: [{ model: PRIMARY, retries: 0 }, { model: FALLBACK }],
    circuitBreaker: { failureThreshold: THRESHOLD, windowSeconds: 30, cooldownSeconds: COOLDOWN_SECONDS },
  });
  const probe = chainYaml({
    name: 'probe',
    baseURL: up.url,
    steps: [{ model: SLOW_PRIMARY, retries: 0, timeouts: { totalMs: 300 } }, { model: SLOW_FALLBACK }],
    circuitBreaker: { failureThreshold: 1, windowSeconds: 30, cooldownSeconds: COOLDOWN_SECONDS },
  });
  proxy = await startProxy({ config: `${flap}\n---\n${probe}\n` });
});

// Optional chaining: if before() failed halfway, still close what did start (or the runner never exits).
after(async () => {
  // Upstreams first: a request a failed test left hanging then ends at once, so the drain does not wait for it.
  await up?.close();
  await proxy?.close();
});

// ---------------------------------------------------------------------------
// Helpers

interface Answer {
  status: number;
  requestId: string;
  model: string | null;
  attempts: string | null;
  log: LogLine;
}

async function chat(chain: string): Promise<Answer> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: chain, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  const requestId = res.headers.get('x-request-id') ?? '';
  return {
    status: res.status,
    requestId,
    model: res.headers.get('x-llm-fallback-model'),
    attempts: res.headers.get('x-llm-fallback-attempts'),
    log: await proxy.requestLog(requestId),
  };
}

/** The next not-yet-consumed log line that matches: lets a test wait for the nth transition. */
function nextLog(seen: Set<LogLine>, match: (l: LogLine) => boolean): Promise<LogLine> {
  return proxy
    .waitForLog((l) => match(l) && !seen.has(l))
    .then((line) => {
      seen.add(line);
      return line;
    });
}

const transition =
  (model: string, state: string) =>
  (l: LogLine): boolean =>
    l.msg === 'circuit state changed' && l['model'] === model && l['state'] === state;

async function circuitMetric(model: string): Promise<number | undefined> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const prefix = `llm_fallback_circuit_state{provider="mock",model="${model}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

interface LoggedAttempt {
  outcome: string;
  reason?: string;
  attempt: number;
  model: string;
}
const attemptsOf = (log: LogLine): LoggedAttempt[] => log['attempts'] as LoggedAttempt[];

function assertSkippedPrimary(a: Answer, reason: string): void {
  assert.equal(a.status, 200);
  assert.equal(a.model, FALLBACK);
  assert.equal(a.attempts, `mock/${PRIMARY}=skipped, mock/${FALLBACK}=ok`);
  const [first] = attemptsOf(a.log);
  assert.equal(first?.outcome, 'skipped');
  assert.equal(first?.attempt, 0);
  assert.equal(first?.reason, reason);
}

const timeOf = (l: LogLine): number => Date.parse(String(l['time']));

// ---------------------------------------------------------------------------

describe('a primary that is down for a while, then healthy', () => {
  test('opens after the threshold, probes once per cooldown, closes on the first good probe', async () => {
    const seen = new Set<LogLine>();
    const answers: Answer[] = [];
    const send = async (): Promise<Answer> => {
      const a = await chat('flap');
      answers.push(a);
      return a;
    };

    // Closed and failing: every failure is counted, every request is answered by the fallback.
    for (let i = 1; i <= THRESHOLD; i++) {
      const a = await send();
      assert.equal(a.status, 200);
      assert.equal(a.model, FALLBACK);
      assert.equal(a.attempts, `mock/${PRIMARY}=serverError, mock/${FALLBACK}=ok`);
      assert.equal(up.requestsFor(PRIMARY).length, i);
    }
    const firstOpen = await nextLog(seen, transition(PRIMARY, 'open'));
    assert.equal(await circuitMetric(PRIMARY), 2);

    // Open: the primary is skipped without any upstream request.
    for (let i = 0; i < 2; i++) assertSkippedPrimary(await send(), 'circuit open');
    assert.equal(up.requestsFor(PRIMARY).length, THRESHOLD);

    // Half-open after the cooldown: one probe each time; the failing ones re-open the circuit.
    let lastOpen = firstOpen;
    let probes = 0;
    let recovered: Answer | undefined;
    while (!recovered && probes < 10) {
      const halfOpen = await nextLog(seen, transition(PRIMARY, 'halfOpen'));
      // The cooldown was honoured (a few ms of timer slack allowed), not skipped.
      assert.ok(timeOf(halfOpen) - timeOf(lastOpen) >= COOLDOWN_MS - 5, 'half-open came before the cooldown was over');
      assert.equal(await circuitMetric(PRIMARY), 1);
      const before = up.requestsFor(PRIMARY).length;
      const probe = await send();
      probes++;
      assert.equal(up.requestsFor(PRIMARY).length, before + 1, 'a probe is exactly one upstream request');
      if (probe.model === PRIMARY) {
        recovered = probe;
        break;
      }
      assert.equal(probe.attempts, `mock/${PRIMARY}=serverError, mock/${FALLBACK}=ok`);
      lastOpen = await nextLog(seen, transition(PRIMARY, 'open'));
      assert.equal(await circuitMetric(PRIMARY), 2);
      // Re-opened: the next request skips the primary again (no flood while it is still down).
      assertSkippedPrimary(await send(), 'circuit open');
      assert.equal(up.requestsFor(PRIMARY).length, before + 1);
    }

    assert.ok(recovered, 'the circuit never closed');
    // Recovery took the cooldown plus one probe: the first request after the last
    // half-open was served by the primary (and well before any deadline).
    assert.equal(recovered.attempts, `mock/${PRIMARY}=ok`);
    assert.ok(Date.now() - timeOf(lastOpen) < 5000);
    assert.equal(await circuitMetric(PRIMARY), 0);
    // Failures before opening + one per probe, nothing else: the failing probes used up the budget.
    assert.equal(probes, PRIMARY_FAILURES - THRESHOLD + 1);
    assert.equal(up.requestsFor(PRIMARY).length, THRESHOLD + probes);

    // Closed again: the primary serves the following requests itself.
    for (let i = 0; i < 3; i++) {
      const a = await send();
      assert.equal(a.model, PRIMARY);
      assert.equal(a.attempts, `mock/${PRIMARY}=ok`);
    }
    assert.equal(up.requestsFor(PRIMARY).length, THRESHOLD + probes + 3);

    // No client ever saw an error.
    assert.deepEqual(
      answers.map((a) => a.status).filter((s) => s !== 200),
      [],
    );
    assert.deepEqual(
      answers.map((a) => a.log['outcome']).filter((o) => o !== 'success'),
      [],
    );
  });

  test('half-open lets exactly one of five concurrent requests probe; the others skip the primary', async () => {
    const seen = new Set<LogLine>();
    // One timed-out attempt opens this circuit (threshold 1).
    const opener = await chat('probe');
    assert.equal(opener.status, 200);
    assert.equal(opener.attempts, `mock/${SLOW_PRIMARY}=timeout, mock/${SLOW_FALLBACK}=ok`);
    await nextLog(seen, transition(SLOW_PRIMARY, 'open'));
    await nextLog(seen, transition(SLOW_PRIMARY, 'halfOpen'));
    assert.equal(up.requestsFor(SLOW_PRIMARY).length, 1);

    const answers = await Promise.all(Array.from({ length: 5 }, () => chat('probe')));

    assert.equal(up.requestsFor(SLOW_PRIMARY).length, 2, 'exactly one request reached the primary');
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200],
    );
    assert.deepEqual(
      answers.map((a) => a.model),
      Array(5).fill(SLOW_FALLBACK),
    );
    const probes = answers.filter((a) => attemptsOf(a.log)[0]?.outcome === 'timeout');
    const skipped = answers.filter((a) => attemptsOf(a.log)[0]?.outcome === 'skipped');
    assert.equal(probes.length, 1);
    assert.equal(skipped.length, 4);
    for (const a of skipped) {
      assert.equal(a.attempts, `mock/${SLOW_PRIMARY}=skipped, mock/${SLOW_FALLBACK}=ok`);
      assert.equal(attemptsOf(a.log)[0]?.reason, 'circuit half-open, probe in flight');
    }
    // The failed probe re-opened the circuit.
    await nextLog(seen, transition(SLOW_PRIMARY, 'open'));
    assert.equal(await circuitMetric(SLOW_PRIMARY), 2);
  });
});
