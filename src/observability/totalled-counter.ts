// A prom-client Counter whose per-request increments are plain additions to a cell kept for
// each label set, handed to the Counter when it is read (a scrape, or anything calling get()).
// prom-client's inc() builds a string of every label and checks each label name on every call;
// the four to six increments a request makes were ~1.0 µs of its report's ~5.3 µs (logger and
// metrics alone, 200,000 reports; docs/bench/findings.md). Here an increment walks one Map per
// label to its cell. The series and their values are the Counter's own as soon as it is read.
import type * as Prom from 'prom-client';
import { Counter } from './prom.ts';

interface Cell<N extends string> {
  readonly labels: Record<N, string>;
  /** Added since the Counter was last read. */
  pending: number;
}

interface Level<N extends string> {
  readonly next: Map<string, Level<N>>;
  cell?: Cell<N>;
}

export class TotalledCounter<N extends string> {
  readonly counter: Prom.Counter<N>;
  readonly #name: string;
  readonly #labelNames: readonly N[];
  readonly #root: Level<N> = { next: new Map() };
  readonly #cells: Array<Cell<N>> = [];

  constructor(config: Prom.CounterConfiguration<N> & { labelNames: readonly N[] }) {
    this.#name = config.name;
    this.#labelNames = config.labelNames;
    this.counter = new Counter<N>({ ...config, collect: () => this.#flush() });
  }

  /** Adds `by` to the series whose label values are `values`, in the order of the label names. */
  add(values: readonly string[], by = 1): void {
    let level = this.#root;
    for (const value of values) {
      let next = level.next.get(value);
      if (!next) {
        next = { next: new Map() };
        level.next.set(value, next);
      }
      level = next;
    }
    (level.cell ??= this.#newCell(values)).pending += by;
  }

  #newCell(values: readonly string[]): Cell<N> {
    if (values.length !== this.#labelNames.length) throw new Error(`${this.#name}: ${values.length} label values for ${this.#labelNames.length} labels`);
    const labels = {} as Record<N, string>;
    this.#labelNames.forEach((name, i) => (labels[name] = values[i] as string));
    const cell: Cell<N> = { labels, pending: 0 };
    this.#cells.push(cell);
    return cell;
  }

  #flush(): void {
    for (const cell of this.#cells) {
      if (cell.pending === 0) continue;
      const by = cell.pending;
      cell.pending = 0;
      this.counter.inc(cell.labels, by);
    }
  }
}
