import { backoffDelay } from './backoff.ts';
import type { FailureClass, Policy } from './types.ts';

export interface FailureFacts {
  failure: FailureClass;
  /** What the upstream asked for via Retry-After / retry-after-ms, if anything. */
  retryAfterMs?: number;
  /** Attempts already made on this step, including the one that just failed. */
  attemptsOnStep: number;
  retries: number;
  policy: Policy;
  /** Time left before the chain deadline. */
  remainingMs: number;
  /** Whether any later step could still be tried. */
  hasNextStep: boolean;
}

export type Decision =
  /** wait: what the delay honours (a trace names the wait by it). */
  { kind: 'retry'; delayMs: number; reason: string; wait: 'retryAfter' | 'backoff' } | { kind: 'next'; reason: string } | { kind: 'stop'; reason: string };

/** What to do after one attempt failed: retry the step, move to the next one, or stop. */
export function decideAfterFailure(facts: FailureFacts, random: () => number): Decision {
  const { failure, policy } = facts;
  if (failure === 'badRequest') return { kind: 'stop', reason: 'the request itself was rejected; returned as it came' };
  const leave = leaveStep(facts);
  // A silent upstream is likely to stay silent: try someone else before waiting again.
  if (failure === 'timeout' && facts.hasNextStep && policy.fallbackOn.has('timeout')) {
    return { kind: 'next', reason: 'timed out; not re-waiting the same silence' };
  }
  const retriesLeft = facts.attemptsOnStep <= facts.retries;
  if (!policy.retryOn.has(failure) || !retriesLeft) {
    return leave(retriesLeft ? `${failure} is not in retryOn` : 'retries used up');
  }
  return decideRetryDelay(facts, random, leave);
}

function decideRetryDelay(facts: FailureFacts, random: () => number, leave: (reason: string) => Decision): Decision {
  const { retryAfterMs, policy, remainingMs } = facts;
  if (retryAfterMs !== undefined) {
    if (retryAfterMs >= remainingMs) return leave(`Retry-After ${retryAfterMs}ms exceeds the ${remainingMs}ms left`);
    // A wait longer than we would ever back off is better spent on the next step.
    if (retryAfterMs > policy.backoff.maxMs && facts.hasNextStep && policy.fallbackOn.has(facts.failure)) {
      return { kind: 'next', reason: `Retry-After ${retryAfterMs}ms exceeds backoff.maxMs` };
    }
    return { kind: 'retry', delayMs: retryAfterMs, reason: 'honouring Retry-After', wait: 'retryAfter' };
  }
  const delayMs = backoffDelay(facts.attemptsOnStep, policy.backoff, random);
  if (delayMs >= remainingMs) return leave('backoff would pass the deadline');
  return { kind: 'retry', delayMs, reason: 'backoff', wait: 'backoff' };
}

function leaveStep(facts: FailureFacts): (reason: string) => Decision {
  return (reason) =>
    facts.policy.fallbackOn.has(facts.failure) ? { kind: 'next', reason } : { kind: 'stop', reason: `${reason}; ${facts.failure} is not in fallbackOn` };
}
