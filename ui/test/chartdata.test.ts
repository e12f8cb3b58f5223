import type { Bucket, Series } from "../src/api";
import { colour, hasData, phases, shape, translucent } from "../src/chartdata";
import { latestPerTarget } from "../src/results";

const b = (start: string, mean: number | null, extra: Partial<Bucket> = {}): Bucket => ({
  start,
  count: 1,
  failed: 0,
  n: mean === null ? 0 : 1,
  min: mean === null ? null : mean - 1,
  mean,
  max: mean === null ? null : mean + 1,
  loss_pct: 0,
  ...extra,
});

const series = (target: string, buckets: Bucket[], metric = "latency_ms"): Series => ({ target, test_type: "tcp", metric, buckets });

describe("shaping series for uPlot", () => {
  it("aligns targets on the union of bucket starts, null where a target has none", () => {
    const s = shape([
      series("a", [b("2026-11-22T10:00:00Z", 10), b("2026-11-22T11:00:00Z", 12)]),
      series("b", [b("2026-11-22T11:00:00Z", 20), b("2026-11-22T12:00:00Z", 22)]),
    ]);
    const t10 = Date.parse("2026-11-22T10:00:00Z") / 1000;
    expect(s.x).toEqual([t10, t10 + 3600, t10 + 7200]);
    expect(s.lines[0]).toEqual({ target: "a", mean: [10, 12, null], min: [9, 11, null], max: [11, 13, null] });
    expect(s.lines[1].mean).toEqual([null, 20, 22]);
    expect(hasData(s)).toBe(true);
  });
  it("reads loss from the buckets' loss", () => {
    const s = shape([series("a", [b("2026-11-22T10:00:00Z", null, { loss_pct: 25 }), b("2026-11-22T11:00:00Z", null, { loss_pct: 0 })], "success")], "loss_pct");
    expect(s.lines[0].mean).toEqual([25, 0]);
  });
  it("knows an empty chart", () => {
    expect(hasData(shape([]))).toBe(false);
    expect(hasData(shape([series("a", [b("2026-11-22T10:00:00Z", null)])]))).toBe(false);
  });
  it("puts HTTP phases of one target in metric order, missing ones empty", () => {
    const p = phases(
      {
        dns_ms: [series("u", [b("2026-11-22T10:00:00Z", 1)], "dns_ms"), series("other", [b("2026-11-22T10:00:00Z", 99)], "dns_ms")],
        ttfb_ms: [series("u", [b("2026-11-22T10:00:00Z", 20)], "ttfb_ms")],
      },
      "u",
      ["dns_ms", "connect_ms", "ttfb_ms"],
    );
    expect(p.cols).toEqual([[1], [null], [20]]);
  });
  it("colours are stable and bands translucent", () => {
    expect(colour(0)).toBe(colour(10));
    expect(translucent("#2f6fde", 0.2)).toBe("rgba(47, 111, 222, 0.2)");
  });
});

describe("latest results", () => {
  it("keeps the newest per type and target", () => {
    const m = (target: string, t: string, ok: boolean) => ({ id: t, test_type: "tcp" as const, target, started_at: t, duration_ms: 1, success: ok, tier: 1, metrics: {} });
    const rows = latestPerTarget([m("a", "2026-11-22T10:00:00Z", false), m("b", "2026-11-22T10:00:00Z", true), m("a", "2026-11-22T11:00:00Z", true)]);
    expect(rows.map((r) => [r.target, r.success])).toEqual([
      ["a", true],
      ["b", true],
    ]);
  });
});
