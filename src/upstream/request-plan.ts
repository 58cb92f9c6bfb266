// Which adapter serves a provider's `api:`, and the per-request, per-step translation cache.
import type { ApiFormat, Step } from '../core/types.ts';
import { InvalidRequest, UnservableRequest } from '../wire/errors.ts';
import { capOutputTokens } from '../wire/openai-chat/output-cap.ts';
import { anthropicAdapter } from '../wire/anthropic/upstream.ts';
import { geminiAdapter } from '../wire/gemini/upstream.ts';
import { openAIAdapter } from '../wire/openai-chat/upstream.ts';
import { responsesUpstream } from '../wire/openai-responses/upstream.ts';
import { codecRequest, type CallerRequest, type PreparedRequest, type WireAdapter } from './wire.ts';

const ADAPTERS: Record<ApiFormat, WireAdapter> = {
  openai: openAIAdapter,
  anthropic: anthropicAdapter,
  gemini: geminiAdapter,
  'openai-responses': {
    api: 'openai-responses',
    prepare: (call, step) => responsesUpstream.prepare(codecRequest(call), step),
    toCanonical: responsesUpstream.toCanonical,
    streamDecoder: responsesUpstream.streamDecoder,
    errorToOpenAI: responsesUpstream.errorToCanonical,
  },
};

export function adapterFor(api: ApiFormat): WireAdapter {
  return ADAPTERS[api];
}

export type StepPlan =
  | { kind: 'ready'; adapter: WireAdapter; request: PreparedRequest }
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
  readonly #refused = new Map<Step, StepPlan>();
  #latest: { step: Step; plan: StepPlan } | undefined;
  readonly #reported = new Set<Step>();

  constructor(call: CallerRequest) {
    this.call = call;
  }

  forStep(step: Step): StepPlan {
    if (this.#latest?.step === step) return this.#latest.plan;
    const refused = this.#refused.get(step);
    if (refused) return refused;
    const plan = prepare(this.call, step);
    if (plan.kind === 'ready') this.#latest = { step, plan };
    else this.#refused.set(step, plan);
    return plan;
  }

  /** The fields this step drops, the first time it is asked for the step; [] afterwards. */
  droppedOnce(step: Step): string[] {
    const plan = this.forStep(step);
    if (plan.kind !== 'ready' || this.#reported.has(step)) return [];
    this.#reported.add(step);
    return plan.request.dropped;
  }
}

/** The request with the step's maxOutputTokens applied, in the caller's body and in its canonical form. */
function withStepCap(call: CallerRequest, step: Step): CallerRequest {
  if (step.maxOutputTokens === undefined) return call;
  const options = { endpoint: call.endpoint, provider: step.provider };
  const chat = call.chat instanceof UnservableRequest ? call.chat : { ...call.chat, value: capOutputTokens(call.chat.value, step.maxOutputTokens, options) };
  // A Responses caller's body goes only to Responses upstreams (passthrough): its limit is max_output_tokens.
  const body = call.format === 'openai-responses'
    ? responsesUpstream.capOutput(call.body, step.maxOutputTokens, { operation: 'responses', baseURL: step.provider.baseURL })
    : capOutputTokens(call.body, step.maxOutputTokens, options);
  return { ...call, body, chat };
}

function prepare(call: CallerRequest, step: Step): StepPlan {
  const adapter = adapterFor(step.provider.api);
  try {
    return { kind: 'ready', adapter, request: adapter.prepare(withStepCap(call, step), step) };
  } catch (error) {
    if (error instanceof UnservableRequest) return { kind: 'unservable', reason: error.message };
    if (error instanceof InvalidRequest) return { kind: 'invalid', message: error.message };
    // A translator that trips over an unexpected shape must not take the request down:
    // another step, maybe of another format, can still serve it.
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'unservable', reason: `the request could not be translated to the ${step.provider.api} format: ${message}` };
  }
}
