// How much memory the request bodies in flight may take, all requests together. The body
// limit bounds one request; without a budget, ten callers each just under it take ten times
// as much, and the sidecar is OOM-killed by ordinary image-bearing traffic. A request holds
// its share from its first body byte until its response is over (its parsed body and the
// bodies sent upstream live that long); a request that does not fit is refused with a 503
// and Retry-After instead of being read.
//
// A share grows in three steps: the body's bytes as they arrive (its declared length at
// once), its parsed size once its shape is known (json-shape.ts), then, once the chain is
// known, the copies serving it makes: one body per attempt in flight (hedges race several)
// and one canonical translation for an Anthropic caller.

/** Copies of the body a request holds beside its parsed form while its chain runs. */
export function copiesInFlight(o: { hedgeAfterMs: number; hedgeMaxInFlight?: number; translated: boolean }): number {
  const attempts = 1 + (o.hedgeAfterMs > 0 ? (o.hedgeMaxInFlight ?? 1) : 0);
  return attempts + (o.translated ? 1 : 0);
}

export class BodyBudget {
  /** Bytes all bodies in flight may take; 0: no budget. */
  readonly capacity: number;
  #held = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Bytes held by requests in flight now. */
  get held(): number {
    return this.#held;
  }

  /** An empty share for one request; it grows as the body is read. */
  share(): BodyShare {
    return new BodyShare(this);
  }

  /** Takes `bytes` more, if they fit; false (nothing taken) when they do not. */
  take(bytes: number): boolean {
    if (this.capacity > 0 && this.#held + bytes > this.capacity) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }
}

/** One request's share of the budget. */
export class BodyShare {
  readonly #budget: BodyBudget;
  #bytes = 0;
  #released = false;

  constructor(budget: BodyBudget) {
    this.#budget = budget;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Whether `bytes` could ever fit, with the whole budget free. */
  couldFit(bytes: number): boolean {
    return this.#budget.capacity === 0 || bytes <= this.#budget.capacity;
  }

  /** Grows (or shrinks) the share to `bytes` in all; false, keeping the share as it was, when the budget cannot give that much now. */
  resize(bytes: number): boolean {
    if (this.#released) return false;
    const more = bytes - this.#bytes;
    if (more > 0 && !this.#budget.take(more)) return false;
    if (more < 0) this.#budget.give(-more);
    this.#bytes = bytes;
    return true;
  }

  /** Gives everything back; later calls do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#budget.give(this.#bytes);
    this.#bytes = 0;
  }
}
