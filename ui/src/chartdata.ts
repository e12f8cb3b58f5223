// Shapes the engine's bucketed series into uPlot's aligned columns (pure,
// tested): one x column of bucket starts (Unix seconds) shared by every
// target, with null where a target has no bucket.
import type { Series } from "./api";

export type Column = (number | null)[];

export interface Shaped {
  x: number[];
  /** Per target: mean, min and max columns. */
  lines: { target: string; mean: Column; min: Column; max: Column }[];
}

export type Field = "mean" | "loss_pct";

export function shape(series: Series[], field: Field = "mean"): Shaped {
  const xs = new Set<number>();
  for (const s of series) for (const b of s.buckets) xs.add(Math.floor(Date.parse(b.start) / 1000));
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const lines = series.map((s) => {
    const mean: Column = new Array(x.length).fill(null);
    const min: Column = new Array(x.length).fill(null);
    const max: Column = new Array(x.length).fill(null);
    for (const b of s.buckets) {
      const i = index.get(Math.floor(Date.parse(b.start) / 1000));
      if (i === undefined) continue;
      if (field === "loss_pct") {
        mean[i] = b.loss_pct ?? null;
      } else {
        mean[i] = b.mean ?? null;
        min[i] = b.min ?? null;
        max[i] = b.max ?? null;
      }
    }
    return { target: s.target, mean, min, max };
  });
  return { x, lines };
}

/** Whether any column has a value (an empty chart says so instead of drawing axes). */
export function hasData(s: Shaped): boolean {
  return s.lines.some((l) => l.mean.some((v) => v !== null));
}

/**
 * HTTP phases of one target as stacked-free columns: dns, connect, tls, ttfb
 * and total means on one x column (the union of their buckets).
 */
export function phases(byMetric: Record<string, Series[]>, target: string, metrics: string[]): { x: number[]; cols: Column[] } {
  const picked: Series[] = metrics.map(
    (m) => (byMetric[m] ?? []).find((s) => s.target === target) ?? { target, test_type: "http", metric: m, buckets: [] },
  );
  const s = shape(picked);
  return { x: s.x, cols: s.lines.map((l) => l.mean) };
}

/** A stable colour per target (by its position in the picked list). */
export const PALETTE = ["#2f6fde", "#e0542c", "#1f9d55", "#a855f7", "#d49b00", "#0891b2", "#db2777", "#65a30d", "#7c3aed", "#ea580c"];

export function colour(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** The colour with an alpha, for min/max bands. */
export function translucent(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
