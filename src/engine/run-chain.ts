// Sends one request down a chain: steps in order, retries per the pure decision
// function, breakers consulted before every attempt, one deadline over everything.
// Protocol work (building the upstream request, reading its answer) is the attempt
// function's job; this loop only decides.
import { decideAfterFailure } from '../core/decide.ts';
import { costOf } from '../core/cost.ts';
import type { Chain, Step, Usage } from '../core/types.ts';
import type { BreakerRegistry } from './breakers.ts';
import type { Clock } from './clock.ts';
import type { AttemptOutcome, AttemptRecord, UpstreamFailure } from './outcome.ts';

export interface AttemptContext {
  /** 1-based attempt number on this step. */
  attempt: number;
  /** Clock.now() value by which the whole request must be over. */
  deadlineAt: number;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
}

export interface EngineDeps<T> {
  clock: Clock;
  random: () => number;
  breakers: BreakerRegistry;
  attempt: (step: Step, ctx: AttemptContext) => Promise<AttemptOutcome<T>>;
  /** Reasons to skip a step without calling it (missing key, over budget…); undefined to try it. */
  skipReason: (step: Step) => string | undefined;
  /** Usage of a successful value, for the attempt's cost; streams report it later. */
  usageOf?: (value: T) => Usage | undefined;
}

export type ChainEnd = 'badRequest' | 'exhausted' | 'deadline' | 'aborted';

export type ChainResult<T> =
  | { kind: 'success'; value: T; step: Step; attempts: AttemptRecord[] }
  | { kind: 'failure'; end: ChainEnd; last?: UpstreamFailure; lastAnswered?: UpstreamFailure; attempts: AttemptRecord[] };

export async function runChain<T>(chain: Chain, deps: EngineDeps<T>, startedAt: number, signal: AbortSignal): Promise<ChainResult<T>> {
  const deadlineAt = startedAt + chain.policy.deadlineMs;
  const attempts: AttemptRecord[] = [];
  let last: UpstreamFailure | undefined;
  let lastAnswered: UpstreamFailure | undefined;
  const fail = (end: ChainEnd): ChainResult<T> => ({ kind: 'failure', end, last, lastAnswered, attempts });

  for (const step of chain.steps) {
    const skip = deps.skipReason(step);
    if (skip) {
      attempts.push(skipped(step, skip));
      continue;
    }
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return fail('aborted');
      if (deps.clock.now() >= deadlineAt) return fail('deadline');
      const began = deps.clock.now();
      const gated = await deps.breakers.run(step, chain.breaker, () => deps.attempt(step, { attempt, deadlineAt, signal }));
      const ms = Math.round(deps.clock.now() - began);
      if (gated.kind === 'circuitOpen') {
        attempts.push(skipped(step, gated.reason));
        break;
      }
      if (gated.kind === 'aborted') {
        attempts.push({ ...base(step, attempt, ms), outcome: 'aborted' });
        return fail('aborted');
      }
      if (gated.kind === 'success') {
        const usage = deps.usageOf?.(gated.value);
        attempts.push({ ...base(step, attempt, ms), outcome: 'ok', status: gated.status, usage, costUSD: usage ? costOf(usage, step.price) : 0 });
        return { kind: 'success', value: gated.value, step, attempts };
      }
      const { failure } = gated;
      last = failure;
      if (failure.response) lastAnswered = failure;
      const decision = decideAfterFailure({
        failure: failure.class,
        retryAfterMs: failure.retryAfterMs,
        attemptsOnStep: attempt,
        retries: step.retries,
        policy: chain.policy,
        remainingMs: deadlineAt - deps.clock.now(),
        hasNextStep: step.index < chain.steps.length - 1,
      }, deps.random);
      attempts.push(failedRecord(step, attempt, ms, failure, decision.reason));
      if (decision.kind === 'stop') return fail(failure.class === 'badRequest' ? 'badRequest' : 'exhausted');
      if (decision.kind === 'next') break;
      try {
        await deps.clock.sleep(Math.min(decision.delayMs, deadlineAt - deps.clock.now()), signal);
      } catch {
        return fail('aborted');
      }
    }
  }
  return fail(deps.clock.now() >= deadlineAt ? 'deadline' : 'exhausted');
}

function base(step: Step, attempt: number, ms: number): Omit<AttemptRecord, 'outcome'> {
  return { step: step.index, provider: step.provider.name, model: step.model, attempt, ms, costUSD: 0 };
}

function skipped(step: Step, reason: string): AttemptRecord {
  return { ...base(step, 0, 0), outcome: 'skipped', reason };
}

function failedRecord(step: Step, attempt: number, ms: number, failure: UpstreamFailure, decision: string): AttemptRecord {
  return {
    ...base(step, attempt, ms),
    outcome: failure.class,
    status: failure.status,
    reason: `${failure.message}; ${decision}`,
    usage: failure.usage,
    costUSD: failure.usage ? costOf(failure.usage, step.price) : 0,
  };
}
