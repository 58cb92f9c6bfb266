// Small statistics helpers shared by the benchmark and the soak.

/** The p-th percentile (0–100) of the values, nearest-rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/** Median of the finite values; NaN for none. */
export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? (finite[mid] ?? NaN) : ((finite[mid - 1] ?? NaN) + (finite[mid] ?? NaN)) / 2;
}

/** Rounds to `digits` decimals; keeps NaN as null for JSON. */
export function round(value: number, digits = 1): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Median over the runs, and the per-run values it came from. */
export interface Measured {
  median: number | null;
  runs: Array<number | null>;
}

/** The runs' values (undefined or NaN for a run that measured nothing) and their median, rounded for JSON. */
export function measured(values: Array<number | undefined>, digits = 1): Measured {
  const finite = values.map((v) => (v === undefined || !Number.isFinite(v) ? NaN : v));
  return { median: round(median(finite), digits), runs: finite.map((v) => round(v, digits)) };
}
