// The per-request, per-step translation cache: which upstream codec serves a step (its
// provider's `api:`, looked up in the wire registry) and the request it sends.
import type { Target } from '../core/types.ts';
import type { CallerRequest, PreparedRequest, UpstreamCodec } from '../wire/codec.ts';
import { InvalidRequest, UnservableRequest } from '../wire/errors.ts';
import { capOutputTokens } from '../wire/openai-chat/output-cap.ts';
import { upstreamCodec, upstreamCodecOf } from '../wire/registry.ts';

export type StepPlan =
  | { kind: 'ready'; codec: UpstreamCodec; request: PreparedRequest }
  /** This step's format cannot serve the request faithfully: the step is skipped with `reason`. */
  | { kind: 'unservable'; reason: string }
  /** The request is not valid (found while translating it): a 400, as the upstream would have said. */
  | { kind: 'invalid'; message: string };

/**
 * One request's translation for each step, computed once per step and shared by the skip
 * decision and every attempt of the step. Only the latest step's translation is kept whole:
 * each holds a copy of the body (megabytes with images), so a request that falls through a
 * long chain would otherwise hold one copy per step until it ends. An earlier step asked for
 * again (a group's retry, a hedge) is translated again.
 */
export class RequestPlan {
  readonly call: CallerRequest;
  /** Steps that cannot be served, with why: kept for the whole request (they hold no body). */
  // Made on first use: most requests are served by their first step, which needs neither.
  #refused: Map<Target, StepPlan> | undefined;
  #latest: { step: Target; plan: StepPlan } | undefined;
  #reported: Set<Target> | undefined;

  constructor(call: CallerRequest) {
    this.call = call;
  }

  forStep(step: Target): StepPlan {
    if (this.#latest?.step === step) return this.#latest.plan;
    const refused = this.#refused?.get(step);
    if (refused) return refused;
    const plan = prepare(this.call, step);
    if (plan.kind === 'ready') this.#latest = { step, plan };
    else (this.#refused ??= new Map()).set(step, plan);
    return plan;
  }

  /** The fields this step drops, the first time it is asked for the step; [] afterwards. */
  droppedOnce(step: Target): string[] {
    const plan = this.forStep(step);
    if (plan.kind !== 'ready' || this.#reported?.has(step) === true) return [];
    if (plan.request.dropped.length === 0) return [];
    (this.#reported ??= new Set()).add(step);
    return plan.request.dropped;
  }
}

/**
 * The request with the step's maxOutputTokens applied: in its canonical form (OpenAI's
 * rules), and in the caller's body by the rules of the caller's format (that body is sent
 * only to an upstream of the caller's format).
 */
function withStepCap(call: CallerRequest, step: Target): CallerRequest {
  const cap = step.maxOutputTokens;
  if (cap === undefined || !call.facts.producesOutput) return call;
  const canonical =
    call.canonical instanceof UnservableRequest
      ? call.canonical
      : { ...call.canonical, value: capOutputTokens(call.canonical.value, cap, { endpoint: 'chat', provider: step.provider }) };
  const own = upstreamCodecOf(call.format);
  const body = own ? own.capOutput(call.body, cap, { operation: call.operation, baseURL: step.provider.baseURL }) : call.body;
  return { ...call, body, canonical };
}

function prepare(call: CallerRequest, step: Target): StepPlan {
  const codec = upstreamCodec(step.provider.api);
  try {
    return { kind: 'ready', codec, request: codec.prepare(withStepCap(call, step), step) };
  } catch (error) {
    if (error instanceof UnservableRequest) return { kind: 'unservable', reason: error.message };
    if (error instanceof InvalidRequest) return { kind: 'invalid', message: error.message };
    // A translator that trips over an unexpected shape must not take the request down:
    // another step, maybe of another format, can still serve it.
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'unservable', reason: `the request could not be translated to the ${step.provider.api} format: ${message}` };
  }
}
