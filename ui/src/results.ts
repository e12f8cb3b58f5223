// Result list helpers (pure, tested).
import type { Measurement } from "./api";

/** The newest result of each (type, target), in the order targets first appear. */
export function latestPerTarget(rows: Measurement[]): Measurement[] {
  const latest = new Map<string, Measurement>();
  for (const m of rows) {
    const key = `${m.test_type}\u0000${m.target}`;
    const prev = latest.get(key);
    if (!prev || Date.parse(m.started_at) >= Date.parse(prev.started_at)) latest.set(key, m);
  }
  return [...latest.values()].sort((a, b) => a.test_type.localeCompare(b.test_type) || a.target.localeCompare(b.target));
}
