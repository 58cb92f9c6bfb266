// The attempt that carries on a stream broken after part of the answer reached the caller.
// Each target either continues from the delivered text (sent as a trailing assistant
// message: prefill) or, when it cannot, is asked for the whole answer again, which the
// caller's side then verifies against what was delivered. Whether a target can is its
// `prefill` capability; `auto` tries prefill and, on a rejection, restarts at once and
// remembers it. A prefill rejection is never the caller's final error.
import type { Target } from '../core/types.ts';
import type { AttemptContext, AttemptFn, AttemptOutcome } from '../engine/outcome.ts';
import type { RoutingState } from '../engine/routing-state.ts';
import { withPrefill } from '../wire/prefill.ts';
import type { SpliceMode } from '../wire/stream-splice.ts';
import { RequestPlan } from './request-plan.ts';
import { upstreamAttempt, type AttemptHooks, type AttemptRequest, type UpstreamAnswer } from './attempt.ts';

export interface ContinuationHooks extends AttemptHooks {
  /** A target rejected the prefilled request: it is restarted instead (logged; `auto` remembers it). */
  onPrefillRejected: (step: Target, message: string) => void;
}

/** Whether a target is sent the delivered text as prefill (true) or asked to restart (false). */
export function continuesByPrefill(step: Target, memory: Pick<RoutingState, 'rejectsPrefill'>): boolean {
  const support = step.prefill ?? 'unsupported';
  if (support === 'auto') return !memory.rejectsPrefill(step.target);
  return support === 'supported';
}

/** `delivered`: the answer's text so far, and its content events (about one token each). */
export function continuationAttempt(
  request: AttemptRequest,
  delivered: { text: string; tokens: number },
  memory: RoutingState,
  hooks: ContinuationHooks,
): AttemptFn<UpstreamAnswer> {
  const restart = upstreamAttempt(request, hooks);
  const prefilled = upstreamAttempt({ ...request, plan: new RequestPlan(withPrefill(request.plan.call, delivered.text, delivered.tokens)) }, hooks);
  return async (step: Target, ctx: AttemptContext) => {
    if (!continuesByPrefill(step, memory)) return tagged(await restart(step, ctx), 'restart');
    const outcome = await prefilled(step, ctx);
    // A 4xx that is not about the target's health or the prompt's size: the target does not
    // take a conversation ending with an assistant message. Ask it for the whole answer instead.
    if (outcome.kind === 'failure' && outcome.failure.class === 'badRequest') {
      if (step.prefill === 'auto') memory.prefillRejected(step.target);
      hooks.onPrefillRejected(step, outcome.failure.message);
      return tagged(await restart(step, ctx), 'restart');
    }
    return tagged(outcome, 'continue');
  };
}

function tagged(outcome: AttemptOutcome<UpstreamAnswer>, splice: SpliceMode): AttemptOutcome<UpstreamAnswer> {
  if (outcome.kind === 'success' && outcome.value.kind === 'stream') outcome.value.splice = splice;
  return outcome;
}
