// The order in which one request tries a chain's targets: steps ordered by the request's
// priority (listed order, measured latency or price), steps that adaptive routing demoted moved
// after the next one, and within a step of several targets a weighted pick among those whose
// circuit is closed. Pure: health, breaker states, demotions and randomness come in as values.
// Every target gets a note saying why it sits where it does, unless nothing but the listed
// order put it there.
import { PRIORITIES, type Priority, type Target } from '../core/types.ts';
import { combine, type Health } from './health.ts';
import { orderingCost, usd, type RequestFacts } from './estimate.ts';

/**
 * The priority a request asked for (x-llm-fallback-priority), else the chain's default. A value
 * that is not a priority is ignored with a note, not refused: routing advice must never fail
 * a request.
 */
export function choosePriority(asked: string | undefined, chainDefault: Priority | undefined): { priority: Priority; note?: string } {
  const fallback = chainDefault ?? 'quality';
  if (asked === undefined || asked.trim() === '') return { priority: fallback };
  const value = asked.trim().toLowerCase();
  const known = PRIORITIES.find((p) => p === value);
  if (known) return { priority: known };
  return { priority: fallback, note: `x-llm-fallback-priority "${asked.slice(0, 40)}" is not one of ${PRIORITIES.join(', ')}; ${fallback} used` };
}

export type CircuitState = 'closed' | 'open' | 'halfOpen';

/** One step of the document: its targets (one for a plain step), in listed order. */
export interface StepGroup {
  index: number;
  targets: Target[];
}

/**
 * Chain.steps holds targets; those of one step share its index and are consecutive. A chain's
 * steps do not change (a reload makes a new chain), so its groups are made once, not per
 * request, and are shared: read them, never change them.
 */
export function groupsOf(steps: readonly Target[]): readonly StepGroup[] {
  let groups = GROUPS.get(steps);
  if (!groups) {
    groups = [];
    for (const step of steps) {
      const last = groups[groups.length - 1];
      if (last && last.index === step.index) last.targets.push(step);
      else groups.push({ index: step.index, targets: [step] });
    }
    GROUPS.set(steps, groups);
  }
  return groups;
}

const GROUPS = new WeakMap<readonly Target[], StepGroup[]>();

export interface PlanInput {
  groups: readonly StepGroup[];
  priority: Priority;
  /** Why a step (by index) is demoted right now; undefined when it is not. */
  demoted: (index: number) => string | undefined;
  health: (target: string) => Health;
  circuit: (target: string) => CircuitState | undefined;
  facts: RequestFacts;
  random: () => number;
}

export interface PlannedTarget {
  step: Target;
  /** Why this target is tried where it is; undefined for plain listed order. */
  route?: string;
}

interface Ranked {
  group: StepGroup;
  notes: string[];
}

/** The order of the steps, each with the notes that explain its place. */
export function orderSteps(input: Omit<PlanInput, 'circuit' | 'random'>): Ranked[] {
  const ranked: Array<Ranked & { key: number }> = input.groups.map((group) => {
    if (input.priority === 'speed') {
      const health = combine(group.targets.map((t) => input.health(t.target)));
      const measured = health.latencySamples > 0;
      return {
        group,
        key: measured ? health.latencyMs : Infinity,
        notes: [measured ? `priority speed: ${Math.round(health.latencyMs)}ms EWMA` : 'priority speed: no latency measured yet'],
      };
    }
    if (input.priority === 'cheapest') {
      const costs = group.targets.map((t) => orderingCost(t, input.facts)).filter((c): c is number => c !== undefined);
      const cost = costs.length > 0 ? Math.min(...costs) : undefined;
      return { group, key: cost ?? Infinity, notes: [cost === undefined ? 'priority cheapest: no price known' : `priority cheapest: ~${usd(cost)}`] };
    }
    return { group, key: 0, notes: [] };
  });
  ranked.sort((a, b) => a.key - b.key); // stable: ties keep the listed order
  // A demoted step goes after the next step that is not demoted.
  const out: Ranked[] = [];
  let held: Ranked[] = [];
  for (const r of ranked) {
    const why = input.demoted(r.group.index);
    if (why) {
      held.push({ ...r, notes: [...r.notes, `demoted: ${why}`] });
      continue;
    }
    out.push(r, ...held);
    held = [];
  }
  return [...out, ...held];
}

/**
 * The targets of one step in the order to try them: a weighted random order (sampling without
 * replacement) of those with a closed circuit and a weight, then weight-0 standbys, then those
 * whose circuit is open or half-open (the breaker decides whether they get a probe).
 */
export function orderTargets(group: StepGroup, circuit: PlanInput['circuit'], random: () => number): PlannedTarget[] {
  if (group.targets.length === 1) return group.targets.map((step) => ({ step }));
  const closed = group.targets.filter((t) => (circuit(t.target) ?? 'closed') === 'closed');
  const weighted = closed.filter((t) => weightOf(t) > 0);
  const standby = closed.filter((t) => weightOf(t) === 0);
  const notClosed = group.targets.filter((t) => !closed.includes(t));
  const total = weighted.reduce((sum, t) => sum + weightOf(t), 0);
  const out: PlannedTarget[] = [];
  const pool = [...weighted];
  while (pool.length > 0) {
    const poolWeight = pool.reduce((sum, t) => sum + weightOf(t), 0);
    let r = random() * poolWeight;
    let pick = pool.length - 1;
    for (let i = 0; i < pool.length; i++) {
      r -= weightOf(pool[i] as Target);
      if (r < 0) {
        pick = i;
        break;
      }
    }
    const [step] = pool.splice(pick, 1) as [Target];
    out.push({ step, route: `weighted pick: weight ${weightOf(step)} of ${total}` });
  }
  for (const step of standby) out.push({ step, route: 'weight 0: standby after the weighted targets' });
  for (const step of notClosed) out.push({ step, route: `circuit ${circuit(step.target) ?? 'closed'}: after the closed targets` });
  return out;
}

export function weightOf(step: Target): number {
  return step.weight ?? 1;
}

/** Every target of the chain, in the order this request tries them, with why. */
export function planOrder(input: PlanInput): PlannedTarget[] {
  const out: PlannedTarget[] = [];
  // Listed order with no step demoted (the common case): nothing to rank and no notes.
  if (input.priority === 'quality' && !input.groups.some((group) => input.demoted(group.index) !== undefined)) {
    for (const group of input.groups) {
      if (group.targets.length === 1) out.push({ step: group.targets[0] as Target });
      else out.push(...orderTargets(group, input.circuit, input.random));
    }
    return out;
  }
  for (const ranked of orderSteps(input)) {
    for (const planned of orderTargets(ranked.group, input.circuit, input.random)) {
      // Listed order with nothing to say (the common case): no notes to join.
      if (ranked.notes.length === 0) {
        out.push(planned);
        continue;
      }
      const notes = planned.route ? [...ranked.notes, planned.route] : ranked.notes;
      out.push({ step: planned.step, route: notes.join('; ') });
    }
  }
  return out;
}

/**
 * Steps (by listed index) that adaptive routing should demote now: each compared with the step
 * listed after it, skipping those already demoted. `health` gives a step's combined health.
 */
export function stepsToDemote(
  groups: readonly StepGroup[],
  health: (group: StepGroup) => Health,
  isDemoted: (index: number) => boolean,
  reason: (self: Health, next: Health) => string | undefined,
): Array<{ index: number; reason: string }> {
  const out: Array<{ index: number; reason: string }> = [];
  for (let i = 0; i < groups.length - 1; i++) {
    const group = groups[i] as StepGroup;
    if (isDemoted(group.index)) continue;
    const why = reason(health(group), health(groups[i + 1] as StepGroup));
    if (why) out.push({ index: group.index, reason: why });
  }
  return out;
}
