/** Small statistics helpers for the benchmark: nearest-rank percentiles and summaries. */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (q in 0..1) of the values; NaN for none. */
export const percentile = (values: readonly number[], q: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
};

export const median = (values: readonly number[]): number => percentile(values, 0.5);

export const summarize = (values: readonly number[]): Summary => ({
  n: values.length,
  min: values.length ? Math.min(...values) : Number.NaN,
  p50: percentile(values, 0.5),
  p90: percentile(values, 0.9),
  p99: percentile(values, 0.99),
  max: values.length ? Math.max(...values) : Number.NaN,
  mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN,
});

/** Round to `digits` significant decimals, for JSON that people read. */
export const round = (v: number, digits = 3): number => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

export const ratio = (a: number, b: number): number => round(a / b, 3);
