// Circuit breakers per upstream target: the pure opening rule, and BreakerRegistry over opossum
// (open after N counted failures, skip while open, one half-open probe after the cooldown).
import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { BreakerRegistry, recordFailure, type BreakerLabels, type BreakerState, type Gated } from '../../src/engine/breakers.ts';
import type { AttemptOutcome } from '../../src/engine/outcome.ts';
import { targetKey, type BreakerSettings, type FailureClass, type Provider, type Target } from '../../src/core/types.ts';

function fakeStep(providerName = 'p', model = 'm'): Target {
  const provider: Provider = { name: providerName, api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: undefined, keySource: 'none', headers: {} };
  return { index: 0, provider, model, retries: 0, timeouts: { firstByteMs: 1000, idleMs: 1000, totalMs: 1000 }, target: targetKey(provider, model) };
}

const failed = (failureClass: FailureClass): AttemptOutcome<string> => ({ kind: 'failure', failure: { class: failureClass, message: failureClass } });
const ok: AttemptOutcome<string> = { kind: 'success', value: 'answer', status: 200 };

/** An attempt function that counts its calls and answers with the given outcome. */
function scripted(outcome: AttemptOutcome<string>): { calls: number; attempt: () => Promise<AttemptOutcome<string>> } {
  const counter = {
    calls: 0,
    attempt: async () => {
      counter.calls++;
      return outcome;
    },
  };
  return counter;
}

/** Records every state change the registry reports. */
function recorder(): { events: Array<[string, BreakerState]>; listener: (labels: BreakerLabels, state: BreakerState) => void } {
  const events: Array<[string, BreakerState]> = [];
  return { events, listener: (labels, state) => events.push([`${labels.provider}/${labels.model}`, state]) };
}

describe('recordFailure (the pure opening rule)', () => {
  const settings: BreakerSettings = { failureThreshold: 3, windowMs: 5000, cooldownMs: 1000 };
  const cases: Array<{ name: string; times: number[]; now: number; settings?: BreakerSettings; want: { failureTimes: number[]; open: boolean } }> = [
    // The first failure is recorded and does not open a threshold-3 circuit.
    { name: 'first failure', times: [], now: 100, want: { failureTimes: [100], open: false } },
    // Two earlier failures in the window + this one reach the threshold.
    { name: 'threshold reached inside the window', times: [1000, 2000], now: 3000, want: { failureTimes: [1000, 2000, 3000], open: true } },
    // Failures older than the window are dropped, so the threshold is not reached.
    { name: 'window drops old failures', times: [0, 500], now: 6000, want: { failureTimes: [6000], open: false } },
    // A failure exactly windowMs old is outside the window.
    { name: 'exactly windowMs old is dropped', times: [1000, 1001], now: 6000, want: { failureTimes: [1001, 6000], open: false } },
    // Only the old ones go; recent ones still count towards opening.
    { name: 'mix of old and recent', times: [0, 4000, 5000], now: 6000, want: { failureTimes: [4000, 5000, 6000], open: true } },
    // More than the threshold also opens.
    { name: 'above the threshold', times: [1, 2, 3, 4], now: 5, want: { failureTimes: [1, 2, 3, 4, 5], open: true } },
    // A threshold of 1 opens on the first failure.
    { name: 'threshold 1', times: [], now: 0, settings: { failureThreshold: 1, windowMs: 1000, cooldownMs: 1000 }, want: { failureTimes: [0], open: true } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const input = [...c.times];
      assert.deepEqual(recordFailure(input, c.now, c.settings ?? settings), c.want);
      assert.deepEqual(input, c.times, 'the input list is not mutated');
    });
  }
});

describe('BreakerRegistry', () => {
  let registry: BreakerRegistry | undefined;
  afterEach(() => {
    registry?.shutdown();
    registry = undefined;
    mock.timers.reset();
  });

  const settings: BreakerSettings = { failureThreshold: 3, windowMs: 10_000, cooldownMs: 5_000 };

  async function openCircuit(reg: BreakerRegistry, step: Target, s: BreakerSettings = settings): Promise<void> {
    const failing = scripted(failed('serverError'));
    for (let i = 0; i < s.failureThreshold; i++) await reg.run(step, s, failing.attempt);
    assert.equal(reg.state(step.target), 'open');
  }

  const counted: FailureClass[] = [
    'rateLimited', // a saturated target
    'serverError', // a broken target
    'timeout', // a silent target
    'connection', // an unreachable target
    'authFailed', // a bad key for this target: every request would fail
  ];
  for (const failureClass of counted) {
    // Each counted class opens the circuit after failureThreshold failures; then no request is made.
    test(`${failureClass} × threshold opens the circuit; the next run is refused without an attempt`, async () => {
      const { events, listener } = recorder();
      registry = new BreakerRegistry(listener);
      const step = fakeStep();
      const failing = scripted(failed(failureClass));
      for (let i = 1; i <= settings.failureThreshold; i++) {
        const gated: Gated<string> = await registry.run(step, settings, failing.attempt);
        assert.deepEqual(gated, failed(failureClass), 'the failure itself is handed back to the engine');
        assert.equal(registry.state(step.target), i < settings.failureThreshold ? 'closed' : 'open');
      }
      const refused = scripted(ok);
      const gated: Gated<string> = await registry.run(step, settings, refused.attempt);
      assert.deepEqual(gated, { kind: 'circuitOpen', reason: 'circuit open' });
      assert.equal(refused.calls, 0, 'an open circuit makes no request');
      assert.equal(failing.calls, settings.failureThreshold);
      assert.deepEqual(events, [
        ['p/m', 'closed'],
        ['p/m', 'open'],
      ]);
    });
  }

  const notCounted: FailureClass[] = [
    'contextLength', // this prompt is too long; the target is fine
    'contentFiltered', // this prompt was refused; the target is fine
    'badRequest', // the client's mistake
  ];
  for (const failureClass of notCounted) {
    // Request-specific failures say nothing about the target: they never open its circuit.
    test(`${failureClass} never opens the circuit`, async () => {
      registry = new BreakerRegistry();
      const step = fakeStep();
      const failing = scripted(failed(failureClass));
      for (let i = 0; i < 10; i++) assert.deepEqual(await registry.run(step, settings, failing.attempt), failed(failureClass));
      assert.equal(failing.calls, 10);
      assert.equal(registry.state(step.target), 'closed');
    });
  }

  // Non-counted failures and successes in between do not reset or add to the count: only counted ones open it.
  test('successes and non-counted failures do not open it; counted ones still add up', async () => {
    registry = new BreakerRegistry();
    const step = fakeStep();
    await registry.run(step, settings, scripted(failed('serverError')).attempt);
    await registry.run(step, settings, scripted(ok).attempt);
    await registry.run(step, settings, scripted(failed('badRequest')).attempt);
    await registry.run(step, settings, scripted(failed('timeout')).attempt);
    assert.equal(registry.state(step.target), 'closed');
    await registry.run(step, settings, scripted(failed('connection')).attempt);
    assert.equal(registry.state(step.target), 'open');
  });

  // The window rolls: failures further apart than windowMs never add up to the threshold.
  test('failures outside the window do not open it', async () => {
    let now = 0;
    registry = new BreakerRegistry(
      () => {},
      () => now,
    );
    const step = fakeStep();
    const s: BreakerSettings = { failureThreshold: 2, windowMs: 1000, cooldownMs: 5000 };
    const failing = scripted(failed('serverError'));
    await registry.run(step, s, failing.attempt);
    now = 1500;
    await registry.run(step, s, failing.attempt);
    assert.equal(registry.state(step.target), 'closed', 'the first failure fell out of the window');
    now = 1600;
    await registry.run(step, s, failing.attempt);
    assert.equal(registry.state(step.target), 'open', 'two failures 100 ms apart');
  });

  // Breakers are per target: one target's failures do not open another's circuit.
  test('targets are independent', async () => {
    registry = new BreakerRegistry();
    const a = fakeStep('a', 'm');
    const b = fakeStep('b', 'm');
    await openCircuit(registry, a);
    const other = scripted(ok);
    assert.deepEqual(await registry.run(b, settings, other.attempt), ok);
    assert.equal(other.calls, 1);
  });

  // After the cooldown: half-open, exactly one probe, a concurrent run refused; success closes and clears the count.
  test('cooldown → half-open → one probe; success closes and clears the failure count', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] }); // before the breaker exists: opossum's reset timer uses the global setTimeout
    const { events, listener } = recorder();
    registry = new BreakerRegistry(listener);
    const step = fakeStep();
    await openCircuit(registry, step);

    mock.timers.tick(settings.cooldownMs - 1);
    const early = scripted(ok);
    assert.equal((await registry.run(step, settings, early.attempt)).kind, 'circuitOpen', 'still open 1 ms before the cooldown ends');
    assert.equal(early.calls, 0);

    mock.timers.tick(1);
    assert.equal(registry.state(step.target), 'halfOpen');

    let release!: (outcome: AttemptOutcome<string>) => void;
    let probeCalls = 0;
    const probe = registry.run(step, settings, () => {
      probeCalls++;
      return new Promise<AttemptOutcome<string>>((resolve) => {
        release = resolve;
      });
    });
    const second = scripted(ok);
    assert.deepEqual(await registry.run(step, settings, second.attempt), { kind: 'circuitOpen', reason: 'circuit half-open, probe in flight' });
    assert.equal(second.calls, 0, 'only the probe reaches the upstream');
    assert.equal(probeCalls, 1);

    release(ok);
    assert.deepEqual(await probe, ok);
    assert.equal(registry.state(step.target), 'closed');
    assert.deepEqual(events, [
      ['p/m', 'closed'],
      ['p/m', 'open'],
      ['p/m', 'halfOpen'],
      ['p/m', 'closed'],
    ]);

    // The count starts from zero again: threshold-1 new failures keep it closed.
    const failing = scripted(failed('serverError'));
    for (let i = 0; i < settings.failureThreshold - 1; i++) await registry.run(step, settings, failing.attempt);
    assert.equal(registry.state(step.target), 'closed', 'failures from before the open were cleared');
    await registry.run(step, settings, failing.attempt);
    assert.equal(registry.state(step.target), 'open');
  });

  // A failed probe re-opens the circuit at once, and the cooldown starts over.
  test('probe failure re-opens; the next cooldown half-opens again', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { events, listener } = recorder();
    registry = new BreakerRegistry(listener);
    const step = fakeStep();
    await openCircuit(registry, step);
    mock.timers.tick(settings.cooldownMs);
    assert.equal(registry.state(step.target), 'halfOpen');

    const probe = scripted(failed('timeout'));
    assert.deepEqual(await registry.run(step, settings, probe.attempt), failed('timeout'));
    assert.equal(registry.state(step.target), 'open', 'one failed probe is enough');
    const refused = scripted(ok);
    assert.equal((await registry.run(step, settings, refused.attempt)).kind, 'circuitOpen');
    assert.equal(refused.calls, 0);

    mock.timers.tick(settings.cooldownMs);
    assert.equal(registry.state(step.target), 'halfOpen');
    assert.deepEqual(
      events.map(([, s]) => s),
      ['closed', 'open', 'halfOpen', 'open', 'halfOpen'],
    );
  });

  // A probe answered with a request-specific failure shows the target is up: the circuit closes.
  test('a non-counted probe failure closes the circuit', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    registry = new BreakerRegistry();
    const step = fakeStep();
    await openCircuit(registry, step);
    mock.timers.tick(settings.cooldownMs);
    assert.deepEqual(await registry.run(step, settings, scripted(failed('contextLength')).attempt), failed('contextLength'));
    assert.equal(registry.state(step.target), 'closed');
  });

  // A probe cancelled before it answered (caller gone, hedge lost) proved nothing: the circuit opens again rather than closing.
  test('a cancelled probe re-opens instead of closing', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    registry = new BreakerRegistry();
    const step = fakeStep();
    await openCircuit(registry, step);
    mock.timers.tick(settings.cooldownMs);
    assert.equal(registry.state(step.target), 'halfOpen');
    assert.deepEqual(await registry.run(step, settings, scripted({ kind: 'aborted' }).attempt), { kind: 'aborted' });
    assert.equal(registry.state(step.target), 'open');
    // A cancelled attempt on a closed circuit counts for nothing.
    const other = fakeStep('q', 'm');
    for (let i = 0; i < settings.failureThreshold + 1; i++) await registry.run(other, settings, scripted({ kind: 'aborted' }).attempt);
    assert.equal(registry.state(other.target), 'closed');
  });

  // Attempts let through while the circuit was closed, ending after it opened and half-opened:
  // a counted failure opens it again, a cancelled one leaves the probe to decide, an answer closes it.
  test('an attempt begun on a closed circuit acts on the state it ends in', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { events, listener } = recorder();
    registry = new BreakerRegistry(listener);
    const step = fakeStep();
    const releases: Array<(outcome: AttemptOutcome<string>) => void> = [];
    const slow = (): Promise<AttemptOutcome<string>> => new Promise((resolve) => releases.push(resolve));
    const runs = [registry.run(step, settings, slow), registry.run(step, settings, slow), registry.run(step, settings, slow)];
    assert.equal(releases.length, 3, 'a closed circuit lets every attempt through');
    await openCircuit(registry, step);
    mock.timers.tick(settings.cooldownMs);
    assert.equal(registry.state(step.target), 'halfOpen');

    releases[0]?.({ kind: 'aborted' });
    assert.deepEqual(await runs[0], { kind: 'aborted' });
    assert.equal(registry.state(step.target), 'halfOpen', 'a cancelled attempt proves nothing');

    releases[1]?.(failed('serverError'));
    assert.deepEqual(await runs[1], failed('serverError'));
    assert.equal(registry.state(step.target), 'open', 'a counted failure while half-open opens the circuit again');

    mock.timers.tick(settings.cooldownMs);
    releases[2]?.(ok);
    assert.deepEqual(await runs[2], ok);
    assert.equal(registry.state(step.target), 'closed', 'an answer while half-open closes it');
    assert.deepEqual(
      events.map(([, s]) => s),
      ['closed', 'open', 'halfOpen', 'open', 'halfOpen', 'closed'],
    );
  });

  // On reload, surviving targets keep their state; removed targets are dropped.
  test('retain() keeps surviving targets and drops the others', async () => {
    const { events, listener } = recorder();
    registry = new BreakerRegistry(listener);
    const kept = fakeStep('kept', 'm');
    const dropped = fakeStep('dropped', 'm');
    await openCircuit(registry, kept);
    await registry.run(dropped, settings, scripted(ok).attempt);
    assert.deepEqual(
      registry
        .snapshot()
        .map((s) => [s.target, s.state])
        .sort(),
      [
        [dropped.target, 'closed'],
        [kept.target, 'open'],
      ],
    );

    registry.retain(new Set([kept.target]));
    assert.equal(registry.state(kept.target), 'open', 'an open circuit survives the reload');
    assert.equal(registry.state(dropped.target), undefined);
    assert.deepEqual(registry.snapshot(), [{ target: kept.target, provider: 'kept', model: 'm', state: 'open' }]);
    const stillRefused = scripted(ok);
    assert.equal((await registry.run(kept, settings, stillRefused.attempt)).kind, 'circuitOpen');
    assert.equal(stillRefused.calls, 0);

    // A dropped target that comes back starts with a fresh, closed breaker.
    events.length = 0;
    const back = scripted(ok);
    assert.deepEqual(await registry.run(dropped, settings, back.attempt), ok);
    assert.deepEqual(events, [['dropped/m', 'closed']]);
  });

  // New breaker settings on reload build a new breaker, but an open circuit stays open.
  test('changed settings keep an open circuit open', async () => {
    registry = new BreakerRegistry();
    const step = fakeStep();
    await openCircuit(registry, step);
    const changed: BreakerSettings = { ...settings, failureThreshold: 10 };
    const refused = scripted(ok);
    assert.equal((await registry.run(step, changed, refused.attempt)).kind, 'circuitOpen');
    assert.equal(refused.calls, 0);
  });

  // An attempt that throws (a bug, not an upstream failure) is not swallowed.
  test('errors thrown by the attempt propagate', async () => {
    registry = new BreakerRegistry();
    await assert.rejects(
      registry.run(fakeStep(), settings, async () => {
        throw new TypeError('bug');
      }),
      TypeError,
    );
  });
});

// A stream that broke after its first event was let through as a success; its failure is counted later.
describe('BreakerRegistry.recordLateFailure', () => {
  let registry: BreakerRegistry | undefined;
  afterEach(() => {
    registry?.shutdown();
    registry = undefined;
    mock.timers.reset();
  });
  const settings: BreakerSettings = { failureThreshold: 3, windowMs: 10_000, cooldownMs: 5_000 };

  test('late failures of counted classes open the circuit like any others', async () => {
    registry = new BreakerRegistry();
    const step = fakeStep();
    for (let i = 1; i <= settings.failureThreshold; i++) {
      assert.equal((await registry.run(step, settings, scripted(ok).attempt)).kind, 'success');
      registry.recordLateFailure(step, settings, 'connection', false);
      assert.equal(registry.state(step.target), i < settings.failureThreshold ? 'closed' : 'open');
    }
  });

  test('a late failure that says nothing about the target (contentFiltered) is not counted', async () => {
    registry = new BreakerRegistry();
    const step = fakeStep();
    for (let i = 0; i < settings.failureThreshold; i++) registry.recordLateFailure(step, settings, 'contentFiltered', false);
    assert.notEqual(registry.state(step.target), 'open');
  });

  test('a half-open probe that broke mid-stream re-opens the circuit at once', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    registry = new BreakerRegistry();
    const step = fakeStep();
    const failing = scripted(failed('serverError'));
    for (let i = 0; i < settings.failureThreshold; i++) await registry.run(step, settings, failing.attempt);
    mock.timers.tick(settings.cooldownMs);
    assert.equal(registry.state(step.target), 'halfOpen');
    assert.equal((await registry.run(step, settings, scripted(ok).attempt)).kind, 'success');
    assert.equal(registry.state(step.target), 'closed', 'the probe closed it when its stream began');
    registry.recordLateFailure(step, settings, 'connection', true);
    assert.equal(registry.state(step.target), 'open');
  });
});
