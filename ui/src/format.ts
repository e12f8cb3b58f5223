import type { Measurement, Metrics } from "./api";

// Formatting of figures and times for people. Pure functions (tested).

/** Milliseconds with a precision that suits their size: 0.42 ms, 12.3 ms, 1,234 ms. */
export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  return `${Math.round(v).toLocaleString("en-US")} ms`;
}

export function fmtPct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v === 0 || v === 100) return `${v} %`;
  return `${v.toFixed(1)} %`;
}

/** Megabits per second (10^6 bits, never MiB). */
export function fmtMbps(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v < 10) return `${v.toFixed(2)} Mbit/s`;
  if (v < 1000) return `${v.toFixed(1)} Mbit/s`;
  return `${(v / 1000).toFixed(2)} Gbit/s`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago"; future times "in 5 min". */
export function fmtRpm(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? `${Math.round(v)} RPM` : "–";
}

export function fmtAgo(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "–";
  const s = Math.round((now.getTime() - t) / 1000);
  const abs = Math.abs(s);
  let span: string;
  if (abs < 60) return s >= 0 ? "just now" : "in under a minute";
  else if (abs < 3600) span = `${Math.floor(abs / 60)} min`;
  else if (abs < 86400) span = `${Math.floor(abs / 3600)} h`;
  else span = `${Math.floor(abs / 86400)} d`;
  return s >= 0 ? `${span} ago` : `in ${span}`;
}

/** Local date and time, to the second: 2026-11-22 14:03:07. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "–";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** What a result says in one line: its headline figures or its error. */
export function resultSummary(m: Pick<Measurement, "success" | "error_kind" | "error" | "latency_ms" | "test_type"> & { metrics?: Metrics }): string {
  const f = m.metrics ?? {};
  // Every port's state says more than the first failure.
  if (m.test_type === "ports" && f.ports && f.ports.length > 0) {
    return f.ports.map((p) => (p.state === "open" ? `${p.port} open ${fmtMs(p.connect_ms)}` : `${p.port} ${p.state}`)).join(" · ");
  }
  if (!m.success) {
    const kind = m.error_kind ?? "failed";
    return m.error ? `${kind}: ${m.error}` : kind;
  }
  if (m.test_type === "http") {
    const version = f.http_version ? (f.http_version.startsWith("HTTP") ? f.http_version : `HTTP/${f.http_version}`) : null;
    const parts = [f.status_code ? `${f.status_code}` : null, version, `TTFB ${fmtMs(m.latency_ms)}`, `total ${fmtMs(f.total_ms)}`];
    return parts.filter(Boolean).join(" · ");
  }
  if (m.test_type === "traceroute") {
    const parts = [fmtMs(m.latency_ms)];
    if (f.hops) parts.push(`${f.hops.length} hops`);
    if (f.trace_protocol && f.trace_protocol !== "icmp") parts.push(`by ${f.trace_protocol.toUpperCase()}${f.port_state ? `, port ${f.port_state}` : ""}`);
    return parts.join(" · ");
  }
  if (m.test_type === "bandwidth") {
    const parts: string[] = [];
    if (typeof f.download_mbps === "number") parts.push(`↓ ${fmtMbps(f.download_mbps)}`);
    if (typeof f.upload_mbps === "number") parts.push(`↑ ${fmtMbps(f.upload_mbps)}`);
    if (typeof f.loss_pct === "number") parts.push(`loss ${fmtPct(f.loss_pct)}`);
    if (typeof f.loaded_latency_ms === "number") parts.push(`${fmtMs(f.loaded_latency_ms)} under load (idle ${fmtMs(m.latency_ms)})`);
    if (f.bufferbloat_grade) parts.push(`bufferbloat ${f.bufferbloat_grade}`);
    if (typeof f.rpm === "number") parts.push(`${Math.round(f.rpm)} RPM${f.rpm_confidence ? ` (${f.rpm_confidence} confidence)` : ""}`);
    return parts.join(" · ");
  }
  const parts = [fmtMs(m.latency_ms)];
  if (f.tls_version) parts.push(String(f.tls_version));
  if (typeof f.cert_days_left === "number") parts.push(`certificate ${f.cert_days_left} d left`);
  if (f.ssh_banner) parts.push(String(f.ssh_banner));
  return parts.join(" · ");
}

/** A short label for a test type. */
export function typeLabel(t: string): string {
  const labels: Record<string, string> = { http: "HTTP", tcp: "TCP", tls: "TLS", ssh: "SSH", udp: "UDP", dns: "DNS", icmp: "ICMP", traceroute: "Trace", mtu: "MTU", bandwidth: "Bandwidth", ports: "Ports" };
  return labels[t] ?? t.toUpperCase();
}

/** What a responsiveness figure means, in plain words (the same bands and
 * words as the CLI: under 300 RPM low, from 1000 high). */
export function rpmWords(rpm: number): string {
  if (rpm < 300) return "low responsiveness: on a busy link, calls, games and pages feel sluggish";
  if (rpm < 1000) return "medium responsiveness: a busy link slows interactive apps somewhat";
  return "high responsiveness: interactive apps stay quick while the link is busy";
}

/** What a bufferbloat grade means, in plain words (the same words as the CLI). */
export function gradeWords(grade: string): string {
  switch (grade) {
    case "A+":
    case "A":
      return "no noticeable bufferbloat: calls and games stay smooth while the link is busy";
    case "B":
      return "slight bufferbloat: a busy link adds a little delay";
    case "C":
      return "bufferbloat: video calls and games suffer while the link is busy";
    case "D":
      return "bad bufferbloat: a busy link makes everything else slow";
    default:
      return "severe bufferbloat: a busy link makes everything else very slow";
  }
}
