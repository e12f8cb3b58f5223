import { fmtAgo, fmtMbps, fmtMs, fmtPct, fmtRpm, fmtTime, gradeWords, resultSummary, rpmWords, typeLabel } from "../src/format";

describe("figures", () => {
  it("milliseconds keep a precision that suits their size", () => {
    expect(fmtMs(0.4234)).toBe("0.42 ms");
    expect(fmtMs(12.345)).toBe("12.3 ms");
    expect(fmtMs(1234.4)).toBe("1,234 ms");
    expect(fmtMs(null)).toBe("–");
    expect(fmtMs(undefined)).toBe("–");
    expect(fmtMs(Number.NaN)).toBe("–");
  });
  it("loss shows whole ends and one decimal between", () => {
    expect(fmtPct(0)).toBe("0 %");
    expect(fmtPct(100)).toBe("100 %");
    expect(fmtPct(12.345)).toBe("12.3 %");
  });
  it("throughput is in megabits, never mebibytes", () => {
    expect(fmtMbps(39.31)).toBe("39.3 Mbit/s");
    expect(fmtMbps(4.5)).toBe("4.50 Mbit/s");
    expect(fmtMbps(2500)).toBe("2.50 Gbit/s");
  });
  it("type labels", () => {
    expect(typeLabel("http")).toBe("HTTP");
    expect(typeLabel("icmp")).toBe("ICMP");
    expect(typeLabel("quic")).toBe("QUIC");
  });
});

describe("times", () => {
  const now = new Date("2026-11-22T12:00:00Z");
  it("tells how long ago, and how long until", () => {
    expect(fmtAgo("2026-11-22T11:59:30Z", now)).toBe("just now");
    expect(fmtAgo("2026-11-22T11:55:00Z", now)).toBe("5 min ago");
    expect(fmtAgo("2026-11-22T09:00:00Z", now)).toBe("3 h ago");
    expect(fmtAgo("2026-11-20T12:00:00Z", now)).toBe("2 d ago");
    expect(fmtAgo("2026-11-22T12:30:00Z", now)).toBe("in 30 min");
    expect(fmtAgo(null, now)).toBe("never");
    expect(fmtAgo("garbage", now)).toBe("–");
  });
  it("local times to the second", () => {
    const iso = "2026-11-22T12:03:07Z";
    const d = new Date(iso);
    const p = (n: number) => String(n).padStart(2, "0");
    expect(fmtTime(iso)).toBe(`${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:03:07`);
    expect(fmtTime("nope")).toBe("–");
  });
});

describe("result summaries", () => {
  it("a failure says its kind and message", () => {
    expect(resultSummary({ success: false, error_kind: "timeout", error: "no answer in 10 s", test_type: "tcp" })).toBe("timeout: no answer in 10 s");
    expect(resultSummary({ success: false, test_type: "tcp" })).toBe("failed");
  });
  it("HTTP shows status, version, TTFB and total", () => {
    expect(resultSummary({ success: true, test_type: "http", latency_ms: 21.5, metrics: { status_code: 200, http_version: "2", total_ms: 22.25 } })).toBe("200 · HTTP/2 · TTFB 21.5 ms · total 22.3 ms");
  });
  it("other types show the headline latency", () => {
    expect(resultSummary({ success: false, error_kind: "refused", error: "port 81 closed", test_type: "ports", metrics: { ports: [{ port: 80, state: "open", connect_ms: 1.2 }, { port: 81, state: "closed", connect_ms: 1.1 }, { port: 82, state: "filtered" }] } })).toBe("80 open 1.2 ms · 81 closed · 82 filtered");
    expect(resultSummary({ success: true, test_type: "traceroute", latency_ms: 20.4, metrics: { hops: [{}, {}, {}] as never, trace_protocol: "tcp", port_state: "closed" } })).toBe("20.4 ms · 3 hops · by TCP, port closed");
    expect(typeLabel("ports")).toBe("Ports");
    expect(resultSummary({ success: true, test_type: "tcp", latency_ms: 0.47, metrics: {} })).toBe("0.47 ms");
    expect(resultSummary({ success: true, test_type: "tcp", latency_ms: 3.2, metrics: { tls_version: "TLSv1.3", cert_days_left: 29 } })).toBe("3.2 ms · TLSv1.3 · certificate 29 d left");
  });

  it("sums up a bandwidth result with its grade", () => {
    const m = { success: true, test_type: "bandwidth", latency_ms: 1.2, metrics: { download_mbps: 47.81, loaded_latency_ms: 212, bufferbloat_grade: "D" } } as const;
    expect(resultSummary(m as never)).toBe("↓ 47.8 Mbit/s · 212 ms under load (idle 1.2 ms) · bufferbloat D");
    expect(gradeWords("A+")).toContain("no noticeable bufferbloat");
    expect(gradeWords("F")).toContain("severe");
    const r = { success: true, test_type: "bandwidth", latency_ms: 0.4, metrics: { download_mbps: 47.6, rpm: 761.6, rpm_confidence: "high", bufferbloat_grade: "B" } } as const;
    expect(resultSummary(r)).toContain("762 RPM (high confidence)");
    expect(rpmWords(120)).toContain("low responsiveness");
    expect(rpmWords(3000)).toContain("high responsiveness");
    expect(fmtRpm(761.6)).toBe("762 RPM");
  });
});
