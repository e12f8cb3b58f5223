// History ranges and the bucket width each is charted with (pure, tested).
// The engine aggregates; the UI only picks the window and the bucket.

export type RangeKey = "24h" | "7d" | "30d" | "1y";

export interface Range {
  key: RangeKey;
  label: string;
  seconds: number;
  bucketSecs: number;
}

export const RANGES: Range[] = [
  { key: "24h", label: "24 h", seconds: 86_400, bucketSecs: 600 },
  { key: "7d", label: "7 d", seconds: 7 * 86_400, bucketSecs: 3_600 },
  { key: "30d", label: "30 d", seconds: 30 * 86_400, bucketSecs: 4 * 3_600 },
  { key: "1y", label: "1 y", seconds: 365 * 86_400, bucketSecs: 86_400 },
];

export function rangeByKey(key: string): Range {
  return RANGES.find((r) => r.key === key) ?? RANGES[0];
}

export interface Window {
  since: string;
  until: string;
  bucketSecs: number;
}

/**
 * The window for a range ending now: `until` rounded up to the next bucket
 * boundary (so the current bucket is whole and the query stays cacheable for a
 * bucket's time), `since` one range before it.
 */
export function windowFor(key: RangeKey, now: Date = new Date()): Window {
  const r = rangeByKey(key);
  const nowS = Math.floor(now.getTime() / 1000);
  const untilS = Math.ceil((nowS + 1) / r.bucketSecs) * r.bucketSecs;
  const sinceS = untilS - r.seconds;
  return {
    since: new Date(sinceS * 1000).toISOString(),
    until: new Date(untilS * 1000).toISOString(),
    bucketSecs: r.bucketSecs,
  };
}
