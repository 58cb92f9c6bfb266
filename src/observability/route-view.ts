// What an operator sees of routing (admin /config and the route metrics): each chain's
// effective order for its default priority, with adaptive demotions applied, and each target's
// health and rate-limit mark. The order is the planner's own, for a nominal request.
import type { Chain, Target } from '../core/types.ts';
import { NOMINAL_OUTPUT_TOKENS, type RequestFacts } from '../routing/estimate.ts';
import { groupsOf, planOrder } from '../routing/plan.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import { systemClock } from '../engine/clock.ts';
import type { RouteRow } from './metrics.ts';

/** The request the order is shown for: 1000 tokens in, 1000 out. */
const NOMINAL: RequestFacts = { inputTokens: 1000, requestedMaxOutput: NOMINAL_OUTPUT_TOKENS, choices: 1, producesOutput: true };

export interface RoutePosition {
  position: number;
  step: number;
  provider: string;
  model: string;
  /** Why it is there (priority, weights, demotion); absent for plain listed order. */
  route?: string;
  demoted: boolean;
}

/**
 * The chain's targets in the order a request without x-llm-fallback-priority would try them
 * now. Within a step of several targets each request picks by weight; the view lists the
 * weighted targets in listed order.
 */
export function effectiveOrder(chain: Chain, breakers: BreakerRegistry, now: number = systemClock.now()): RoutePosition[] {
  const groups = groupsOf(chain.steps);
  const demoted = new Map<number, string>();
  if (chain.policy.adaptive) {
    for (const g of groups) {
      const why = breakers.routing.demotion(
        chain.name,
        g.targets.map((t) => t.target),
        now,
      );
      if (why) demoted.set(g.index, why);
    }
  }
  const planned = planOrder({
    groups,
    priority: chain.policy.priority ?? 'quality',
    demoted: (i) => demoted.get(i),
    health: (t) => breakers.routing.health(t),
    circuit: (t) => breakers.state(t),
    facts: NOMINAL,
    random: () => 0,
  });
  return planned.map((p, position) => {
    const row: RoutePosition = { position, step: p.step.index, provider: p.step.provider.name, model: p.step.model, demoted: demoted.has(p.step.index) };
    if (p.route) row.route = p.route;
    return row;
  });
}

/** Routing details of one target for /config: its settings and what routing knows of it now. */
export function describeTarget(step: Target, breakers: BreakerRegistry, now: number = systemClock.now()): Record<string, unknown> {
  const view = breakers.routing.view(step.target, now);
  return {
    step: step.index,
    weight: step.weight ?? null,
    limits: step.limits ?? null,
    maxOutputTokens: step.maxOutputTokens ?? null,
    priceSource: step.priceSource ?? null,
    health: {
      samples: view.health.samples,
      errorRate: Math.round(view.health.errorRate * 1000) / 1000,
      latencyMs: view.health.latencySamples > 0 ? Math.round(view.health.latencyMs) : null,
    },
    rateLimited: view.rateLimited ?? null,
  };
}

/** Every chain's targets for the route gauges. */
export function routeRows(chains: Iterable<Chain>, breakers: BreakerRegistry, now: number = systemClock.now()): RouteRow[] {
  const rows: RouteRow[] = [];
  for (const chain of chains) {
    for (const p of effectiveOrder(chain, breakers, now)) {
      const step = chain.steps.find((s) => s.index === p.step && s.provider.name === p.provider && s.model === p.model);
      const health = step ? breakers.routing.health(step.target) : undefined;
      const row: RouteRow = {
        chain: chain.name,
        step: p.step,
        provider: p.provider,
        model: p.model,
        position: p.position,
        demoted: p.demoted,
        errorRate: health?.errorRate ?? 0,
      };
      if (health && health.latencySamples > 0) row.latencyMs = health.latencyMs;
      rows.push(row);
    }
  }
  return rows;
}
