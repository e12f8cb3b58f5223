import { RANGES, rangeByKey, windowFor } from "../src/range";

describe("ranges", () => {
  it("offers 24 h, 7 d, 30 d and 1 y, each with a few hundred buckets at most", () => {
    expect(RANGES.map((r) => r.key)).toEqual(["24h", "7d", "30d", "1y"]);
    for (const r of RANGES) {
      const buckets = r.seconds / r.bucketSecs;
      expect(buckets).toBeGreaterThanOrEqual(100);
      expect(buckets).toBeLessThanOrEqual(400);
    }
  });
  it("falls back to 24 h for an unknown key", () => {
    expect(rangeByKey("5y").key).toBe("24h");
  });
  it("ends the window on the next bucket boundary and spans the range", () => {
    const now = new Date("2026-11-22T12:34:56Z");
    const w = windowFor("24h", now);
    expect(w.until).toBe("2026-11-22T12:40:00.000Z");
    expect(w.since).toBe("2026-11-21T12:40:00.000Z");
    expect(w.bucketSecs).toBe(600);
    const y = windowFor("1y", now);
    expect(y.until).toBe("2026-11-23T00:00:00.000Z");
    expect((Date.parse(y.until) - Date.parse(y.since)) / 86_400_000).toBe(365);
  });
  it("a time exactly on a boundary still includes the current bucket", () => {
    const w = windowFor("7d", new Date("2026-11-22T12:00:00Z"));
    expect(w.until).toBe("2026-11-22T13:00:00.000Z");
  });
});
