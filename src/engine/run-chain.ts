// Sends one request down a chain. The routing planner (src/routing) orders the targets for
// this request (priority, demotion, weights); this loop walks them: gates before every call
// (missing key, open circuit, rate-limit marks, budget, local limits), retries per the pure
// decision function, breakers around every attempt, one deadline over everything, and hedges:
// when the attempt in flight has produced no first byte after policy.hedge.afterMs, the next
// eligible target starts in parallel, the first success wins and the others are cancelled.
// Protocol work (building the upstream request, reading its answer) is the attempt
// function's job; this loop only decides.
import { decideAfterFailure } from '../core/decide.ts';
import { costOf } from '../core/cost.ts';
import type { HeaderBag } from '../core/retry-after.ts';
import type { Chain, Target, Usage } from '../core/types.ts';
import { tokensForLimits, worstCaseCost, type RequestFacts } from '../routing/estimate.ts';
import { anyAffordable, hedgeDecision, overBudget } from '../routing/gates.ts';
import { combine, demotionReason, type HealthSample } from '../routing/health.ts';
import { choosePriority, groupsOf, planOrder, stepsToDemote, type PlannedTarget, type StepGroup } from '../routing/plan.ts';
import { rateLimitMark, type RateFacts } from '../routing/rate-limit-headers.ts';
import type { BreakerRegistry, Gated } from './breakers.ts';
import type { Clock } from './clock.ts';
import type { AttemptFn, AttemptOutcome, AttemptRecord, CodedSkip, HedgeResult, UpstreamFailure } from './outcome.ts';
import type { ChainObserver, ObservedAttempt } from './observer.ts';
import type { RoutingState } from './routing-state.ts';

/** What routing needs to know about the request itself. */
/** An engine run without a request (tests, probes): the estimate of an empty body. */
const NO_REQUEST: RequestFacts = Object.freeze({ inputTokens: 1, choices: 1, producesOutput: true });

export interface RequestInfo {
  /** What the caller codec learnt of the request: input estimate, output limit, choices (never a wire field). */
  facts: RequestFacts;
  /** The x-llm-fallback-priority header as sent (speed | quality | cheapest). */
  priority?: string;
}

export interface EngineDeps<T> {
  clock: Clock;
  random: () => number;
  breakers: BreakerRegistry;
  attempt: AttemptFn<T>;
  /** Reasons to skip a step without calling it (missing key, unsupported format…); undefined to try it. */
  skipReason: (step: Target) => string | CodedSkip | undefined;
  /** Usage of a successful value, for the attempt's cost; streams report it later. */
  usageOf?: (value: T) => Usage | undefined;
  /** The request, for budgets, local limits and the priority header; without it those see an empty request. */
  request?: RequestInfo;
  /** Response headers of a successful value (an exhausted rate-limit quota marks the target). */
  headersOf?: (value: T) => HeaderBag | undefined;
  /** Releases a successful value that is not used (it answered after another attempt won): e.g. closes its stream. */
  discard?: (value: T) => void;
  /** Routing memory; defaults to the one that lives beside the breakers. */
  routing?: RoutingState;
  /** Told of every attempt, record and wait (tracing); none: nothing is called. */
  observer?: ChainObserver;
}

/** overBudget: no target's worst-case cost fits budget.maxCostPerRequestUSD; nothing was sent. */
export type ChainEnd = 'badRequest' | 'exhausted' | 'deadline' | 'aborted' | 'overBudget';

/** One attempt on a target: what the engine calls for every try. */

/**
 * Goes on down the chain after the answer that won failed later (a stream that broke after
 * its first event, or before the caller's commit point). The failure counts against that
 * target like any other (breaker, health, its attempt record); the next attempts use
 * `attempt` when given (e.g. one that continues the answer already delivered).
 */
export type Resume<T> = (failure: UpstreamFailure, attempt?: AttemptFn<T>) => Promise<ChainResult<T>>;

/** The answer that won failed later and nothing more will be tried: the failure still counts against its target. */
export type FailLater = (failure: UpstreamFailure, why: string) => void;

/** On success the winner's record is the last of `attempts` (a stream's usage is added to it later). */
export type ChainResult<T> =
  | { kind: 'success'; value: T; step: Target; attempts: AttemptRecord[]; resume: Resume<T>; failLater: FailLater }
  | { kind: 'failure'; end: ChainEnd; last?: UpstreamFailure; lastAnswered?: UpstreamFailure; attempts: AttemptRecord[] };

export function runChain<T>(chain: Chain, deps: EngineDeps<T>, startedAt: number, signal: AbortSignal): Promise<ChainResult<T>> {
  return new ChainRun(chain, deps, startedAt, signal).run();
}

// The loop runs on every request: a step that has nothing to wait for returns its value, not a
// promise of it (each async layer costs a promise and turns of the microtask queue).
type Now<R> = R | Promise<R>;

interface Lane<T> {
  planned: PlannedTarget;
  attempt: number;
  hedge: boolean;
  /** The target's circuit was half-open: this attempt is its probe. */
  probe: boolean;
  /** The route note of this attempt's record (first attempt of a target, or a hedge). */
  route?: string;
  began: number;
  /** Worst-case cost of this attempt, held against the budget while it is in flight. */
  worstUSD: number;
  /** Cancels this attempt alone; none when the chain cannot hedge (the request's own signal reaches it). */
  controller: AbortController | undefined;
  settled: Promise<Settled<T>>;
  observed?: ObservedAttempt;
}

type Settled<T> = { lane: Lane<T>; gated: Gated<T> } | { lane: Lane<T>; error: unknown };

type Launch = 'launched' | 'none' | 'deadline' | 'aborted';

const NEVER = new Promise<never>(() => {});

class ChainRun<T> {
  readonly #chain: Chain;
  readonly #deps: EngineDeps<T>;
  readonly #signal: AbortSignal;
  readonly #deadlineAt: number;
  readonly #routing: RoutingState;
  readonly #facts: RequestFacts;
  readonly #attempts: AttemptRecord[] = [];
  #queue: PlannedTarget[] = [];
  #inflight: Array<Lane<T>> = [];
  #lastStart = 0;
  #hedging = true;
  /** Only hedging runs attempts side by side; without it no attempt is ever cancelled apart from the request. */
  readonly #concurrent: boolean;
  #last: UpstreamFailure | undefined;
  #lastAnswered: UpstreamFailure | undefined;
  #attempt: AttemptFn<T>;
  /** The attempt that won, until its answer is known to be whole (it can still fail: resume). */
  #winner: { lane: Lane<T>; record: AttemptRecord } | undefined;

  constructor(chain: Chain, deps: EngineDeps<T>, startedAt: number, signal: AbortSignal) {
    this.#chain = chain;
    this.#deps = deps;
    this.#signal = signal;
    this.#deadlineAt = startedAt + chain.policy.deadlineMs;
    this.#routing = deps.routing ?? deps.breakers.routing;
    this.#facts = deps.request?.facts ?? NO_REQUEST;
    this.#attempt = deps.attempt;
    this.#concurrent = chain.policy.hedgeAfterMs > 0;
  }

  async run(): Promise<ChainResult<T>> {
    if (this.#signal.aborted) return this.#fail('aborted');
    const budget = this.#chain.maxCostPerRequestUSD;
    if (!anyAffordable(this.#chain.steps, this.#facts, budget)) {
      for (const step of this.#chain.steps) this.#record(skipped(step, overBudget(worstCaseCost(step, this.#facts), budget, 0) ?? 'over budget'), step);
      return this.#fail('overBudget');
    }
    this.#queue = this.#plan();
    const first = this.#launchNext(false);
    if (first !== 'launched') return this.#fail(this.#endOf(first));
    return this.#drive();
  }

  /** Waits for attempts to settle (starting hedges when due) until the chain has a result. */
  async #drive(): Promise<ChainResult<T>> {
    for (;;) {
      const event = await this.#nextEvent();
      if (event === 'hedge') {
        const silent = this.#inflight[this.#inflight.length - 1];
        if (silent) this.#deps.observer?.waited('hedge', silent.planned.step, this.#deps.clock.now() - this.#lastStart);
        // Past the deadline or with the caller gone nothing new starts; the attempts in flight end by themselves.
        const hedged = this.#launchNext(true);
        if (hedged === 'aborted' || hedged === 'deadline') this.#hedging = false;
        continue;
      }
      const settled = this.#settle(event);
      const result = settled instanceof Promise ? await settled : settled;
      if (result) return result;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Planning

  #plan(): PlannedTarget[] {
    const { clock } = this.#deps;
    const groups = groupsOf(this.#chain.steps);
    const now = clock.now();
    const targetsOf = (g: StepGroup): string[] => g.targets.map((t) => t.target);
    // Only adaptive routing demotes steps: other chains make no map for it.
    const demoted = this.#chain.policy.adaptive ? new Map<number, string>() : undefined;
    if (demoted) {
      for (const g of groups) {
        const why = this.#routing.demotion(this.#chain.name, targetsOf(g), now);
        if (why) demoted.set(g.index, why);
      }
      const health = (g: StepGroup) => combine(g.targets.map((t) => this.#routing.health(t.target)));
      for (const d of stepsToDemote(groups, health, (i) => demoted.has(i), demotionReason)) {
        const group = groups.find((g) => g.index === d.index) as StepGroup;
        this.#routing.demote(this.#chain.name, targetsOf(group), now, clock.epochMs(), d.reason);
        demoted.set(d.index, this.#routing.demotion(this.#chain.name, targetsOf(group), now) ?? d.reason);
      }
    }
    const { priority, note } = choosePriority(this.#deps.request?.priority, this.#chain.policy.priority);
    const planned = planOrder({
      groups,
      priority,
      demoted: (i) => demoted?.get(i),
      health: (t) => this.#routing.health(t),
      circuit: (t) => this.#deps.breakers.state(t),
      facts: this.#facts,
      random: this.#deps.random,
    });
    const head = planned[0];
    if (note && head) head.route = head.route ? `${note}; ${head.route}` : note;
    return planned;
  }

  // ---------------------------------------------------------------------------------------
  // Starting attempts

  /** Why a target cannot be called now, checked in the order that wastes nothing (the bucket is taken last). */
  #gate(step: Target): string | CodedSkip | undefined {
    const { clock, breakers } = this.#deps;
    const now = clock.now();
    const skip = this.#deps.skipReason(step);
    if (skip) return skip;
    if (breakers.state(step.target) === 'open') return 'circuit open';
    const mark = this.#routing.unavailable(step.target, now);
    if (mark) return `rate limited until ${new Date(mark.untilEpochMs).toISOString()} (${mark.reason})`;
    const over = overBudget(worstCaseCost(step, this.#facts), this.#chain.maxCostPerRequestUSD, this.#committedUSD());
    if (over) return over;
    // Only a tpm limit reads the token estimate (which serialises the whole body).
    const tokens = step.limits?.tpm === undefined ? 0 : tokensForLimits(step, this.#facts);
    const taken = this.#routing.take(step.target, step.limits, tokens, now);
    return taken.ok ? undefined : taken.reason;
  }

  /** Starts the next target of the queue that passes its gates (skipping the others with their reasons). */
  #launchNext(hedge: boolean): Launch {
    for (;;) {
      if (this.#signal.aborted) return 'aborted';
      if (this.#deps.clock.now() >= this.#deadlineAt) return 'deadline';
      const planned = this.#queue.shift();
      if (!planned) return 'none';
      const why = this.#gate(planned.step);
      if (why) {
        this.#record(skipped(planned.step, why, planned.route), planned.step);
        continue;
      }
      let route = planned.route;
      if (hedge) {
        const current = this.#inflight[this.#inflight.length - 1];
        const silent = current ? `${current.planned.step.provider.name}/${current.planned.step.model}` : 'the attempt in flight';
        route = `hedge: no first byte from ${silent} after ${this.#chain.policy.hedgeAfterMs}ms${route ? `; ${route}` : ''}`;
      }
      this.#start(planned, 1, hedge, route);
      return 'launched';
    }
  }

  /** A retry of the same target: gated again (its circuit may have opened, a 429 may have marked it). */
  #relaunch(planned: PlannedTarget, attempt: number): Launch {
    if (this.#signal.aborted) return 'aborted';
    if (this.#deps.clock.now() >= this.#deadlineAt) return 'deadline';
    const why = this.#gate(planned.step);
    if (why) {
      this.#record(skipped(planned.step, why), planned.step);
      return this.#launchNext(false);
    }
    this.#start(planned, attempt, false, undefined);
    return 'launched';
  }

  #start(planned: PlannedTarget, attempt: number, hedge: boolean, route: string | undefined): void {
    const { clock, breakers } = this.#deps;
    const step = planned.step;
    // A chain that hedges can cancel one attempt alone: its lane has a controller of its own,
    // which the request's abort reaches too (for the request's lifetime, streams included;
    // AbortSignal.any would build a composite signal with weak references on every attempt).
    // Without hedging one attempt runs at a time and only the request's abort ever ends it:
    // the request's signal is the attempt's (a controller and a listener less per attempt).
    let controller: AbortController | undefined;
    let signal = this.#signal;
    if (this.#concurrent) {
      const own = new AbortController();
      controller = own;
      signal = own.signal;
      if (this.#signal.aborted) own.abort(this.#signal.reason);
      else this.#signal.addEventListener('abort', () => own.abort(this.#signal.reason), { once: true });
    }
    const worst = worstCaseCost(step, this.#facts);
    const circuit = breakers.state(step.target) ?? 'closed';
    const lane: Lane<T> = {
      planned,
      attempt,
      hedge,
      probe: circuit === 'halfOpen',
      route,
      began: clock.now(),
      worstUSD: worst.kind === 'bounded' ? worst.usd : 0,
      controller,
      settled: NEVER,
    };
    const observed = this.#deps.observer?.attemptStarted({ step, attempt, hedge, circuit, ...(route ? { route } : {}) });
    if (observed) lane.observed = observed;
    const call = (): Promise<AttemptOutcome<T>> => this.#attempt(step, { attempt, deadlineAt: this.#deadlineAt, signal });
    lane.settled = breakers.run(step, this.#chain.breaker, observed ? () => observed.within(call) : call).then(
      (gated): Settled<T> => ({ lane, gated }),
      (error: unknown): Settled<T> => ({ lane, error }),
    );
    this.#inflight.push(lane);
    this.#lastStart = lane.began;
  }

  // ---------------------------------------------------------------------------------------
  // Waiting

  /** The next attempt to settle, or 'hedge' when it is time to start a hedge. */
  #nextEvent(): Promise<Settled<T> | 'hedge'> {
    const { clock } = this.#deps;
    const now = clock.now();
    const decision = hedgeDecision({
      afterMs: this.#hedging ? this.#chain.policy.hedgeAfterMs : 0,
      maxInFlight: this.#chain.policy.hedgeMaxInFlight ?? 1,
      inFlight: this.#inflight.length,
      sinceLastStartMs: now - this.#lastStart,
      remainingMs: this.#deadlineAt - now,
      candidates: this.#queue.length > 0,
    });
    if (decision.kind === 'now') return Promise.resolve('hedge');
    // Invariant: the loop only waits while an attempt is in flight (else nothing could ever settle).
    if (this.#inflight.length === 0) throw new Error('runChain: waiting with no attempt in flight');
    // One attempt and no hedge to time (the common case): its own promise, no race.
    if (decision.kind !== 'wait' && this.#inflight.length === 1) return (this.#inflight[0] as Lane<T>).settled;
    const races: Array<Promise<Settled<T> | 'hedge'>> = this.#inflight.map((l) => l.settled);
    // Without a hedge to time there is nothing to cancel: aborting a controller builds a
    // DOMException, which the profile showed on every request.
    if (decision.kind !== 'wait') return Promise.race(races);
    return this.#raceHedgeTimer(races, decision.ms);
  }

  /** The attempts in flight against the time a hedge is due; the timer is stopped either way. */
  async #raceHedgeTimer(races: Array<Promise<Settled<T> | 'hedge'>>, ms: number): Promise<Settled<T> | 'hedge'> {
    const timer = new AbortController();
    races.push(
      this.#deps.clock.sleep(ms, timer.signal).then(
        () => 'hedge' as const,
        () => NEVER,
      ),
    );
    try {
      return await Promise.race(races);
    } finally {
      timer.abort();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Settling

  #settle(event: Settled<T>): Now<ChainResult<T> | undefined> {
    const { lane } = event;
    this.#inflight = this.#inflight.length === 1 && this.#inflight[0] === lane ? [] : this.#inflight.filter((l) => l !== lane);
    if ('error' in event) {
      return this.#cancelAll('the request failed').then(() => {
        throw event.error;
      });
    }
    const { gated } = event;
    const step = lane.planned.step;
    const ms = this.#elapsed(lane);
    if (gated.kind === 'circuitOpen') {
      this.#record(skipped(step, gated.reason, lane.route), step, lane);
      return this.#continue();
    }
    if (gated.kind === 'aborted') {
      this.#record({ ...this.#base(lane, ms), outcome: 'aborted', ...(lane.hedge ? { hedge: 'aborted' as const } : {}) }, step, lane);
      if (this.#signal.aborted || this.#inflight.length === 0) return this.#cancelAll('the caller went away').then(() => this.#fail('aborted'));
      return undefined;
    }
    if (gated.kind === 'success') return this.#win(lane, gated.value, gated.status, ms);
    return this.#failed(lane, gated.failure, ms);
  }

  #win(lane: Lane<T>, value: T, status: number, ms: number): Now<ChainResult<T>> {
    const step = lane.planned.step;
    this.#observe(step, { kind: 'ok', latencyMs: ms });
    this.#markFrom(step, { status, headers: this.#deps.headersOf?.(value) });
    if (this.#inflight.length > 0) return this.#cancelAll(`${step.provider.name}/${step.model} answered first`).then(() => this.#won(lane, value, status, ms));
    return this.#won(lane, value, status, ms);
  }

  /** The winner's record and the chain's result, once no other attempt is in flight. */
  #won(lane: Lane<T>, value: T, status: number, ms: number): ChainResult<T> {
    const step = lane.planned.step;
    const usage = this.#deps.usageOf?.(value);
    const record: AttemptRecord = { ...this.#base(lane, ms), outcome: 'ok', status, usage, costUSD: usage ? costOf(usage, step.price) : 0 };
    if (lane.hedge) record.hedge = 'won';
    this.#record(record, step, lane);
    this.#winner = { lane, record };
    return {
      kind: 'success',
      value,
      step,
      attempts: this.#attempts,
      resume: (failure, attempt) => this.#resume(failure, attempt),
      failLater: (failure, why) => {
        const { lane, record } = this.#countLate(failure);
        record.outcome = failure.class;
        record.reason = `${failure.message}; ${why}`;
        this.#deps.observer?.failedLate(failure, lane.planned.step);
      },
    };
  }

  /** The winner's later failure, counted against its target like any other. */
  #countLate(failure: UpstreamFailure): { lane: Lane<T>; record: AttemptRecord } {
    const won = this.#winner;
    if (!won) throw new Error('runChain: a later failure without an answer that won');
    this.#winner = undefined;
    const step = won.lane.planned.step;
    this.#last = failure;
    this.#deps.breakers.recordLateFailure(step, this.#chain.breaker, failure.class, won.lane.probe);
    this.#observe(step, { kind: 'failure', failure: failure.class });
    return won;
  }

  async #resume(failure: UpstreamFailure, attempt: AttemptFn<T> | undefined): Promise<ChainResult<T>> {
    const { lane, record } = this.#countLate(failure);
    if (attempt) this.#attempt = attempt;
    const result = await this.#decideAfter(lane, failure, (reason) => {
      record.outcome = failure.class;
      record.reason = `${failure.message}; ${reason}`;
      this.#deps.observer?.failedLate(failure, lane.planned.step);
    });
    return result ?? this.#drive();
  }

  async #failed(lane: Lane<T>, failure: UpstreamFailure, ms: number): Promise<ChainResult<T> | undefined> {
    const step = lane.planned.step;
    this.#last = failure;
    if (failure.response) this.#lastAnswered = failure;
    this.#observe(step, { kind: 'failure', failure: failure.class });
    this.#markFrom(step, { status: failure.status, retryAfterMs: failure.retryAfterMs, headers: failure.headers });
    const hedge: HedgeResult | undefined = lane.hedge ? 'failed' : undefined;
    if (failure.class === 'badRequest') {
      this.#record(failedRecord(this.#base(lane, ms), step, failure, 'the request itself was rejected; returned as it came', hedge), step, lane);
      await this.#cancelAll('the request was rejected by another target');
      return this.#fail('badRequest');
    }
    if (this.#inflight.length > 0) {
      // Another attempt (a hedge, or the attempt a hedge raced) is still running: it carries on.
      this.#record(failedRecord(this.#base(lane, ms), step, failure, 'another attempt is still in flight', hedge), step, lane);
      return undefined;
    }
    return this.#decideAfter(lane, failure, (reason) => this.#record(failedRecord(this.#base(lane, ms), step, failure, reason, hedge), step, lane));
  }

  /** Retry the target, move on, or stop, after its failure (recorded by `note` with the decision). */
  async #decideAfter(lane: Lane<T>, failure: UpstreamFailure, note: (reason: string) => void): Promise<ChainResult<T> | undefined> {
    const { clock } = this.#deps;
    const step = lane.planned.step;
    const decision = decideAfterFailure(
      {
        failure: failure.class,
        retryAfterMs: failure.retryAfterMs,
        attemptsOnStep: lane.attempt,
        retries: step.retries,
        policy: this.#chain.policy,
        remainingMs: this.#deadlineAt - clock.now(),
        hasNextStep: this.#queue.length > 0,
      },
      this.#deps.random,
    );
    // Equivalent targets of the same step come before waiting to retry one of them.
    const sibling = this.#queue[0]?.step.index === step.index;
    const kind = decision.kind === 'retry' && sibling ? 'next' : decision.kind;
    const reason = decision.kind === 'retry' && sibling ? 'another target of the same step first' : decision.reason;
    note(reason);
    if (kind === 'stop') return this.#fail('exhausted');
    if (kind === 'retry' && decision.kind === 'retry') {
      const delayMs = Math.min(decision.delayMs, this.#deadlineAt - clock.now());
      const waitEnd = this.#deps.observer?.waitStarted(decision.wait, step, delayMs);
      try {
        await clock.sleep(delayMs, this.#signal);
      } catch {
        return this.#fail('aborted');
      } finally {
        waitEnd?.();
      }
      return this.#afterLaunch(this.#relaunch(lane.planned, lane.attempt + 1));
    }
    return this.#continue();
  }

  /** Nothing is in flight any more: start the next target, or end. */
  #continue(): ChainResult<T> | undefined {
    if (this.#inflight.length > 0) return undefined;
    return this.#afterLaunch(this.#launchNext(false));
  }

  #afterLaunch(launch: Launch): ChainResult<T> | undefined {
    if (launch === 'launched' || this.#inflight.length > 0) return undefined;
    return this.#fail(this.#endOf(launch));
  }

  /** Cancels every attempt still in flight and records how each ended. */
  async #cancelAll(why: string): Promise<void> {
    const lanes = this.#inflight;
    this.#inflight = [];
    // A lane without a controller (no hedging) is only ever in flight alone, and is not here
    // unless the request itself was aborted, which has reached it already.
    for (const lane of lanes) lane.controller?.abort(new Error(`cancelled: ${why}`));
    for (const event of await Promise.all(lanes.map((l) => l.settled))) this.#recordCancelled(event, why);
  }

  #recordCancelled(event: Settled<T>, why: string): void {
    const { lane } = event;
    const step = lane.planned.step;
    const ms = this.#elapsed(lane);
    const caller = this.#signal.aborted;
    const hedge: HedgeResult | undefined = lane.hedge ? (caller ? 'aborted' : 'lost') : undefined;
    if ('error' in event) {
      this.#record(
        {
          ...this.#base(lane, ms),
          outcome: 'cancelled',
          reason: `cancelled (${why}); the attempt threw: ${String(event.error)}`.slice(0, 300),
          ...(hedge ? { hedge } : {}),
        },
        step,
        lane,
      );
      return;
    }
    const { gated } = event;
    if (gated.kind === 'circuitOpen') {
      this.#record(skipped(step, gated.reason, lane.route), step, lane);
    } else if (gated.kind === 'aborted') {
      if (!caller) this.#observe(step, { kind: 'cancelled', afterMs: ms });
      this.#record(
        { ...this.#base(lane, ms), outcome: caller ? 'aborted' : 'cancelled', ...(caller ? {} : { reason: `cancelled: ${why}` }), ...(hedge ? { hedge } : {}) },
        step,
        lane,
      );
    } else if (gated.kind === 'success') {
      // It answered too, just later: billed, so its usage counts; the answer itself is dropped.
      this.#deps.discard?.(gated.value);
      this.#observe(step, { kind: 'ok', latencyMs: ms });
      const usage = this.#deps.usageOf?.(gated.value);
      this.#record(
        {
          ...this.#base(lane, ms),
          outcome: 'cancelled',
          status: gated.status,
          reason: `answered, but after another attempt (${why}); discarded`,
          usage,
          costUSD: usage ? costOf(usage, step.price) : 0,
          ...(hedge ? { hedge } : {}),
        },
        step,
        lane,
      );
    } else {
      this.#observe(step, { kind: 'failure', failure: gated.failure.class });
      this.#record(failedRecord(this.#base(lane, ms), step, gated.failure, why, lane.hedge ? 'failed' : undefined), step, lane);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Bookkeeping

  /** Keeps a record (an attempt's, or a skipped step's) and tells the observer. */
  #record(record: AttemptRecord, step: Target, lane?: Lane<T>): void {
    this.#attempts.push(record);
    this.#deps.observer?.recorded(record, lane?.observed, step);
  }

  #observe(step: Target, sample: HealthSample): void {
    this.#routing.observe(step.target, sample);
  }

  /** A 429's Retry-After or an exhausted quota keeps every request away from the target until then. */
  #markFrom(step: Target, facts: RateFacts): void {
    const { clock } = this.#deps;
    const mark = rateLimitMark(facts, clock.epochMs());
    if (mark) this.#routing.mark(step.target, clock.now(), clock.epochMs(), mark.delayMs, mark.reason);
  }

  /** Spent so far plus the worst case of what is in flight. */
  #committedUSD(): number {
    return this.#attempts.reduce((sum, a) => sum + a.costUSD, 0) + this.#inflight.reduce((sum, l) => sum + l.worstUSD, 0);
  }

  #elapsed(lane: Lane<T>): number {
    return Math.round(this.#deps.clock.now() - lane.began);
  }

  #base(lane: Lane<T>, ms: number): Omit<AttemptRecord, 'outcome'> {
    const step = lane.planned.step;
    const record: Omit<AttemptRecord, 'outcome'> = { step: step.index, provider: step.provider.name, model: step.model, attempt: lane.attempt, ms, costUSD: 0 };
    if (lane.route) record.route = lane.route;
    return record;
  }

  #endOf(launch: Launch): ChainEnd {
    if (launch === 'aborted') return 'aborted';
    return launch === 'deadline' || this.#deps.clock.now() >= this.#deadlineAt ? 'deadline' : 'exhausted';
  }

  #fail(end: ChainEnd): ChainResult<T> {
    return { kind: 'failure', end, last: this.#last, lastAnswered: this.#lastAnswered, attempts: this.#attempts };
  }
}

function skipped(step: Target, why: string | CodedSkip, route?: string): AttemptRecord {
  const reason = typeof why === 'string' ? why : `${why.code}: ${why.message}`;
  const record: AttemptRecord = {
    step: step.index,
    provider: step.provider.name,
    model: step.model,
    attempt: 0,
    outcome: 'skipped',
    reason,
    ms: 0,
    costUSD: 0,
  };
  if (typeof why !== 'string') record.skipCode = why.code;
  if (route) record.route = route;
  return record;
}

function failedRecord(
  base: Omit<AttemptRecord, 'outcome'>,
  step: Target,
  failure: UpstreamFailure,
  decision: string,
  hedge: HedgeResult | undefined,
): AttemptRecord {
  const record: AttemptRecord = {
    ...base,
    outcome: failure.class,
    status: failure.status,
    reason: `${failure.message}; ${decision}`,
    usage: failure.usage,
    costUSD: failure.usage ? costOf(failure.usage, step.price) : 0,
  };
  if (hedge) record.hedge = hedge;
  return record;
}
