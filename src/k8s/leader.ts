// Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: take the
// lease when it is free or when its record has not changed for a whole lease duration (by our
// own clock, so clock skew between replicas does not matter), renew it every couple of
// seconds, step down if renewing fails for longer than the renew deadline, release it on stop.
import type { Logger } from '../observability/logger.ts';

export interface LeaseSpecLike {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: Date;
  renewTime?: Date;
  leaseTransitions?: number;
}

/** The lease record as first seen, and when (our clock): expiry is measured from then. */
export interface Observed {
  fingerprint: string;
  atMs: number;
}

export type LeaseDecision =
  { kind: 'create' } | { kind: 'renew' } | { kind: 'takeover'; previousHolder: string } | { kind: 'follow'; holder: string; expiresInMs: number };

export function decideLease(
  lease: LeaseSpecLike | undefined,
  identity: string,
  nowMs: number,
  observed: Observed | undefined,
  defaultDurationSeconds: number,
): { decision: LeaseDecision; observed: Observed | undefined } {
  if (lease === undefined) return { decision: { kind: 'create' }, observed: undefined };
  const holder = lease.holderIdentity ?? '';
  const fingerprint = `${holder}|${lease.renewTime?.getTime() ?? ''}|${lease.leaseDurationSeconds ?? ''}`;
  const seen = observed !== undefined && observed.fingerprint === fingerprint ? observed : { fingerprint, atMs: nowMs };
  if (holder === identity) return { decision: { kind: 'renew' }, observed: seen };
  if (holder === '') return { decision: { kind: 'takeover', previousHolder: '' }, observed: seen };
  const durationMs = (lease.leaseDurationSeconds ?? defaultDurationSeconds) * 1000;
  const expiresInMs = seen.atMs + durationMs - nowMs;
  if (expiresInMs <= 0) return { decision: { kind: 'takeover', previousHolder: holder }, observed: seen };
  return { decision: { kind: 'follow', holder, expiresInMs }, observed: seen };
}

/** The spec to write for a create, renew or takeover decision. */
export function nextLeaseSpec(lease: LeaseSpecLike | undefined, decision: LeaseDecision, identity: string, now: Date, durationSeconds: number): LeaseSpecLike {
  switch (decision.kind) {
    case 'create':
      return { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 };
    case 'renew':
      return { ...lease, holderIdentity: identity, leaseDurationSeconds: durationSeconds, renewTime: now };
    case 'takeover':
      return {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: (lease?.leaseTransitions ?? 0) + 1,
      };
    case 'follow':
      throw new Error('a follower writes nothing');
  }
}

/** Released: no holder, so any replica takes over at its next try instead of waiting it out. */
export function releasedLeaseSpec(lease: LeaseSpecLike, now: Date): LeaseSpecLike {
  return { ...lease, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now };
}

/** The Lease API, reduced to what election needs (the adapter maps 404 to undefined). */
export interface LeaseClient {
  read(): Promise<{ spec: LeaseSpecLike; resourceVersion: string } | undefined>;
  create(spec: LeaseSpecLike): Promise<void>;
  /** Optimistic: fails (409) if the lease changed since resourceVersion. */
  replace(spec: LeaseSpecLike, resourceVersion: string): Promise<void>;
}

export interface LeaderElectorOptions {
  identity: string;
  leaseDurationSeconds: number;
  renewIntervalMs: number;
  /** A leader that could not renew for this long steps down (before others may take over). */
  renewDeadlineMs: number;
  logger: Logger;
  now?: () => number;
  onStartedLeading: () => Promise<void> | void;
  onStoppedLeading: () => Promise<void> | void;
}

export class LeaderElector {
  private readonly client: LeaseClient;
  private readonly options: LeaderElectorOptions;
  private readonly now: () => number;
  private leading = false;
  private stopped = true;
  private observed: Observed | undefined;
  private lastRenewMs = 0;
  /** The holder last reported in the log, so a follower says whom it follows once per change. */
  private loggedHolder: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /** start/stop callbacks run one after the other, never overlapping. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(client: LeaseClient, options: LeaderElectorOptions) {
    this.client = client;
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get identity(): string {
    return this.options.identity;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stop trying; if leading, release the lease and run onStoppedLeading. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
    if (this.leading) {
      await this.release();
      this.setLeading(false, 'stopping');
    }
    await this.transitions;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ticking = this.tick().finally(() => this.schedule(this.options.renewIntervalMs));
    }, delayMs);
  }

  /** One round: read the lease, decide, write. Never throws. */
  private async tick(): Promise<void> {
    const { identity, leaseDurationSeconds, logger } = this.options;
    try {
      const current = await this.client.read();
      if (this.stopped) return;
      const nowMs = this.now();
      const { decision, observed } = decideLease(current?.spec, identity, nowMs, this.observed, leaseDurationSeconds);
      this.observed = observed;
      if (decision.kind === 'follow') {
        if (this.leading) this.setLeading(false, `lease held by ${decision.holder}`);
        if (this.loggedHolder !== decision.holder) {
          this.loggedHolder = decision.holder;
          logger.info({ identity, leader: decision.holder }, 'following the leader');
        }
        return;
      }
      const spec = nextLeaseSpec(current?.spec, decision, identity, new Date(nowMs), leaseDurationSeconds);
      if (current === undefined) await this.client.create(spec);
      else await this.client.replace(spec, current.resourceVersion);
      this.lastRenewMs = nowMs;
      this.loggedHolder = identity;
      if (!this.leading) {
        const how = decision.kind === 'takeover' && decision.previousHolder !== '' ? `took over from ${decision.previousHolder}` : 'acquired';
        this.setLeading(true, how);
      }
    } catch (error) {
      // 409: someone else wrote first; anything else: the API is unreachable. Either way a
      // leader keeps leading until the renew deadline, then steps down.
      logger.debug({ err: error, identity }, 'lease round failed');
      if (this.leading && this.now() - this.lastRenewMs > this.options.renewDeadlineMs) this.setLeading(false, 'could not renew the lease in time');
    }
  }

  private async release(): Promise<void> {
    try {
      const current = await this.client.read();
      if (current?.spec.holderIdentity !== this.options.identity) return;
      await this.client.replace(releasedLeaseSpec(current.spec, new Date(this.now())), current.resourceVersion);
      this.options.logger.info({ identity: this.options.identity }, 'released the leader lease');
    } catch (error) {
      this.options.logger.warn({ err: error, identity: this.options.identity }, 'could not release the leader lease; it expires on its own');
    }
  }

  private setLeading(leading: boolean, why: string): void {
    this.leading = leading;
    const { logger, identity } = this.options;
    logger.info({ identity, why }, leading ? 'became leader' : 'stopped leading');
    const callback = leading ? this.options.onStartedLeading : this.options.onStoppedLeading;
    this.transitions = this.transitions.then(async () => {
      try {
        await callback();
      } catch (error) {
        logger.error({ err: error, identity }, leading ? 'starting the leader work failed' : 'stopping the leader work failed');
      }
    });
  }
}
