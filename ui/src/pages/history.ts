// History: pick targets and a range; charts of latency (mean with a min–max
// band), loss, jitter, HTTP phases, HTTP throughput and bandwidth tests'
// download and upload rates and responsiveness (RPM) from the engine's bucketed
// aggregates; the raw results; CSV and JSON export.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, errorText, type KnownNetwork, type Measurement, type RuntimeEvent, type Series, type TestType } from "../api";
import { compareRows, fold, networkName, type Cell } from "../networks";
import { colour, hasData, phases, shape, translucent, type Field } from "../chartdata";
import { clear, cssVar, h } from "../dom";
import { fmtMbps, fmtMs, fmtPct, fmtRpm, fmtTime, typeLabel } from "../format";
import { resultsTable } from "../table";
import { RANGES, windowFor, type RangeKey, type Window } from "../range";

interface ChartSpec {
  id: string;
  title: string;
  metric: string;
  field: Field;
  unit: (v: number | null) => string;
  band: boolean;
  /** Only targets of these types report the figure. */
  types?: TestType[];
}

const CHARTS: ChartSpec[] = [
  { id: "latency", title: "Latency", metric: "latency_ms", field: "mean", unit: fmtMs, band: true },
  { id: "loss", title: "Loss", metric: "success", field: "loss_pct", unit: fmtPct, band: false },
  { id: "jitter", title: "Jitter", metric: "jitter_ms", field: "mean", unit: fmtMs, band: true },
  { id: "throughput", title: "HTTP throughput", metric: "throughput_mbps", field: "mean", unit: fmtMbps, band: true, types: ["http"] },
  { id: "download", title: "Download (bandwidth tests)", metric: "download_mbps", field: "mean", unit: fmtMbps, band: true, types: ["bandwidth"] },
  { id: "upload", title: "Upload (bandwidth tests)", metric: "upload_mbps", field: "mean", unit: fmtMbps, band: true, types: ["bandwidth"] },
  { id: "rpm", title: "Responsiveness (RPM tests, round trips a minute)", metric: "rpm", field: "mean", unit: fmtRpm, band: true, types: ["bandwidth"] },
];
const PHASES = ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"];
const PHASE_NAMES = ["DNS", "Connect", "TLS", "TTFB", "Total"];

/** Timings of the page, read by the benchmark through WebDriver. */
interface PageMetrics {
  /** When the page mounted, and how long until its first chart was drawn. */
  mountAt?: number;
  firstChartMs?: number;
  /** When the latest load (a range or target change) began, and its first chart. */
  loadAt?: number;
  loadChartMs?: number;
}
declare global {
  interface Window {
    __WADDLEPERF_METRICS__?: PageMetrics;
  }
}

export class History {
  private range: RangeKey = "24h";
  private targets: { target: string; test_type: TestType }[] = [];
  private picked = new Set<string>();
  private plots: uPlot[] = [];
  private chartsEl!: HTMLElement;
  private tableEl!: HTMLElement;
  private pickerEl!: HTMLElement;
  private statusEl!: HTMLElement;
  private phaseSelect!: HTMLSelectElement;
  private networkSelect!: HTMLSelectElement;
  private networkEl!: HTMLElement;
  private compareEl!: HTMLElement;
  private networks: KnownNetwork[] = [];
  /** The network shown ("" for all of them). */
  private network = "";
  private reloadTimer: number | undefined;
  private generation = 0;
  private resizeObserver: ResizeObserver | null = null;

  async mount(root: HTMLElement): Promise<void> {
    window.__WADDLEPERF_METRICS__ = { mountAt: performance.now() };
    const rangeGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Range" });
    for (const r of RANGES) {
      const b = h("button", { role: "radio", "aria-checked": String(r.key === this.range), "data-range": r.key, id: `range-${r.key}` }, r.label);
      b.addEventListener("click", () => {
        this.range = r.key;
        for (const x of rangeGroup.querySelectorAll("button")) x.setAttribute("aria-checked", String(x === b));
        void this.load();
      });
      rangeGroup.append(b);
    }
    const csv = h("button", { id: "export-csv" }, "Export CSV");
    csv.addEventListener("click", () => void this.exportAs("csv"));
    const json = h("button", { id: "export-json" }, "Export JSON");
    json.addEventListener("click", () => void this.exportAs("json"));
    this.pickerEl = h("fieldset", { id: "target-picker", class: "picker" });
    this.statusEl = h("p", { id: "history-status", class: "muted", role: "status" });
    this.chartsEl = h("div", { id: "charts", class: "charts" });
    this.tableEl = h("div", { id: "history-results" });
    this.phaseSelect = h("select", { id: "phase-target", "aria-label": "HTTP target for the phase chart" });
    this.phaseSelect.addEventListener("change", () => void this.load());
    this.networkSelect = h("select", { id: "network-filter", "aria-label": "Network" });
    this.networkSelect.addEventListener("change", () => {
      this.network = this.networkSelect.value;
      this.renderNetworkTools();
      void this.load();
    });
    this.networkEl = h("div", { id: "network-tools", class: "network-tools" });
    this.compareEl = h("div", { id: "network-compare" });
    root.append(
      h("div", { class: "page-head" }, h("h1", {}, "History"), h("div", { class: "actions" }, rangeGroup, csv, json)),
      h("div", { class: "network-bar" }, h("label", { for: "network-filter" }, "Network "), this.networkSelect, this.networkEl),
      this.pickerEl,
      this.statusEl,
      this.chartsEl,
      h("section", { class: "card", id: "compare-card" }, h("h2", {}, "Networks side by side"), this.compareEl),
      h("section", { class: "card" }, h("h2", {}, "Results"), this.tableEl),
    );
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.chartsEl);
    await this.loadNetworks();
    await this.loadTargets();
    await this.load();
  }

  unmount(): void {
    this.resizeObserver?.disconnect();
    window.clearTimeout(this.reloadTimer);
    for (const p of this.plots) p.destroy();
    this.plots = [];
  }

  onEvent(e: RuntimeEvent): void {
    if (e.event === "network_changed" || e.event === "networks_changed") void this.loadNetworks();
    if (e.event === "run_finished") {
      // New rows: read the targets and charts again, once per burst.
      window.clearTimeout(this.reloadTimer);
      this.reloadTimer = window.setTimeout(() => void this.loadTargets().then(() => this.load()), 300);
    }
  }

  private async loadTargets(): Promise<void> {
    const before = new Set(this.targets.map((t) => t.target));
    this.targets = await api.targets();
    for (const t of this.targets) if (!before.has(t.target)) this.picked.add(t.target);
    clear(this.pickerEl);
    this.pickerEl.append(h("legend", {}, "Targets"));
    if (this.targets.length === 0) {
      this.pickerEl.append(h("span", { class: "muted" }, "No results stored yet."));
    }
    for (const t of this.targets) {
      const box = h("input", { type: "checkbox", checked: this.picked.has(t.target), "data-target": t.target });
      box.addEventListener("change", () => {
        if (box.checked) this.picked.add(t.target);
        else this.picked.delete(t.target);
        void this.load();
      });
      this.pickerEl.append(h("label", { class: "pick" }, box, h("span", { class: "type" }, typeLabel(t.test_type)), t.target));
    }
    const http = this.targets.filter((t) => t.test_type === "http").map((t) => t.target);
    const keep = this.phaseSelect.value;
    clear(this.phaseSelect);
    for (const t of http) this.phaseSelect.append(h("option", { value: t }, t));
    if (http.includes(keep)) this.phaseSelect.value = keep;
  }

  private async loadNetworks(): Promise<void> {
    try {
      this.networks = (await api.networks()).known;
    } catch {
      this.networks = [];
    }
    clear(this.networkSelect);
    this.networkSelect.append(h("option", { value: "" }, "All networks"));
    for (const n of this.networks) {
      this.networkSelect.append(h("option", { value: n.id }, `${networkName(n)} (${n.results} results)`));
    }
    if (this.network && !this.networks.some((n) => n.id === this.network)) this.network = "";
    this.networkSelect.value = this.network;
    this.renderNetworkTools();
  }

  /** Renaming the network picked: its label, saved by the agent. */
  private renderNetworkTools(): void {
    clear(this.networkEl);
    const n = this.networks.find((x) => x.id === this.network);
    if (!n) return;
    const input = h("input", { id: "network-label", type: "text", maxlength: "64", value: n.label ?? "", placeholder: "Name (Home, Office…)", "aria-label": "Network name" });
    const save = h("button", { id: "network-label-save" }, "Rename");
    const msg = h("span", { class: "muted small", role: "status" }, `id ${n.id}`);
    save.addEventListener("click", () => {
      void (async () => {
        try {
          await api.networkLabel(n.id, input.value);
          msg.textContent = input.value.trim() ? `Saved: ${input.value.trim()}` : "Name cleared";
          await this.loadNetworks();
          void this.load();
        } catch (e) {
          msg.textContent = `Could not rename: ${errorText(e)}`;
        }
      })();
    });
    this.networkEl.append(input, save, msg);
  }

  /** Each target's mean latency and loss on each network, over the range. */
  private async loadComparison(targets: string[], win: Window, gen: number): Promise<void> {
    clear(this.compareEl);
    const nets = this.networks.filter((n) => n.results > 0).slice(0, 6);
    if (nets.length < 2) {
      this.compareEl.append(h("p", { class: "muted" }, "Results from two or more networks are compared here."));
      return;
    }
    const span = Math.max(60, Math.ceil((Date.parse(win.until) - Date.parse(win.since)) / 60_000) * 60);
    const byNet = new Map<string, Map<string, Cell>>();
    const all = await Promise.all(
      nets.map((n) => api.series({ targets, metric: "latency_ms", since: win.since, until: win.until, bucket_secs: span, network: n.id })),
    );
    if (gen !== this.generation) return;
    nets.forEach((n, i) => byNet.set(n.id, fold(all[i])));
    const rows = compareRows(nets.map((n) => n.id), byNet);
    const cell = (c: Cell | null) => (c ? `${fmtMs(c.latencyMs)} · loss ${fmtPct(c.lossPct)} · ${c.results}` : "–");
    this.compareEl.append(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "compare-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Target"), nets.map((n) => h("th", {}, networkName(n))))),
          h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.target), r.cells.map((c) => h("td", {}, cell(c)))))),
        ),
      ),
      h("p", { class: "muted small" }, "Mean latency · loss · results, over the range."),
    );
  }

  private selected(): string[] {
    return this.targets.map((t) => t.target).filter((t) => this.picked.has(t));
  }

  private async load(): Promise<void> {
    const gen = ++this.generation;
    const m = window.__WADDLEPERF_METRICS__;
    if (m) {
      m.loadAt = performance.now();
      m.loadChartMs = undefined;
      document.getElementById("main")?.removeAttribute("data-load-chart-ms");
    }
    const targets = this.selected();
    const win = windowFor(this.range);
    this.statusEl.textContent = "Loading…";
    for (const p of this.plots) p.destroy();
    this.plots = [];
    clear(this.chartsEl);
    if (targets.length === 0) {
      this.statusEl.textContent = this.targets.length ? "Pick at least one target." : "Run the tests to build a history.";
      clear(this.tableEl);
      return;
    }
    const slots = new Map<string, HTMLElement>();
    for (const c of [...CHARTS.slice(0, 3), { id: "phases", title: "HTTP phases" }, ...CHARTS.slice(3)]) {
      const slot = h("figure", { class: "card chart", id: `chart-${c.id}`, "aria-label": `${c.title} chart` }, h("figcaption", {}, c.title));
      if (c.id === "phases") slot.append(this.phaseSelect);
      slots.set(c.id, slot);
      this.chartsEl.append(slot);
    }
    // Each chart draws as soon as its series arrives: latency first.
    const draws = CHARTS.map(async (spec) => {
      const series = await api.series({ targets, metric: spec.metric, since: win.since, until: win.until, bucket_secs: win.bucketSecs, network: this.network || null });
      if (gen !== this.generation) return;
      const slot = slots.get(spec.id);
      if (slot) this.drawSeries(slot, spec, series, win);
    });
    const phaseDraw = (async () => {
      const slot = slots.get("phases");
      const target = this.phaseSelect.value;
      if (!slot) return;
      if (!target || !targets.includes(target)) {
        slot.append(h("p", { class: "muted empty" }, "Pick an HTTP target to see its phases."));
        return;
      }
      const all = await Promise.all(PHASES.map((m) => api.series({ targets: [target], metric: m, since: win.since, until: win.until, bucket_secs: win.bucketSecs, network: this.network || null })));
      if (gen !== this.generation) return;
      const byMetric: Record<string, Series[]> = {};
      PHASES.forEach((m, i) => (byMetric[m] = all[i]));
      const p = phases(byMetric, target, PHASES);
      if (!p.cols.some((c) => c.some((v) => v !== null))) {
        slot.append(h("p", { class: "muted empty" }, "No HTTP results in this range."));
        return;
      }
      this.plot(slot, win, p.x, PHASE_NAMES.map((name, i) => ({ label: name, stroke: colour(i) })), p.cols, fmtMs, []);
    })();
    const table = this.loadTable(targets, win, gen);
    const compare = this.loadComparison(targets, win, gen);
    try {
      await Promise.all([...draws, phaseDraw, table, compare]);
      if (gen === this.generation) this.statusEl.textContent = `${targets.length} target${targets.length === 1 ? "" : "s"}, ${RANGES.find((r) => r.key === this.range)?.label}, buckets of ${bucketLabel(win.bucketSecs)}`;
    } catch (e) {
      if (gen === this.generation) this.statusEl.textContent = `Could not load the history: ${errorText(e)}`;
    }
  }

  private drawSeries(slot: HTMLElement, spec: ChartSpec, series: Series[], win: Window): void {
    const s = shape(series, spec.field);
    if (!hasData(s)) {
      const why = spec.types ? `Only ${spec.types.map(typeLabel).join(" and ")} tests report ${spec.title.toLowerCase()}.` : "";
      slot.append(h("p", { class: "muted empty" }, `No ${spec.title.toLowerCase()} figures for these targets in this range. ${why}`.trim()));
      return;
    }
    const order = this.selected();
    const defs: { label: string; stroke: string; band?: boolean }[] = [];
    const cols: (number | null)[][] = [];
    const bands: uPlot.Band[] = [];
    for (const line of s.lines) {
      const c = colour(Math.max(order.indexOf(line.target), 0));
      defs.push({ label: line.target, stroke: c });
      cols.push(line.mean);
      if (spec.band) {
        const maxIdx = cols.length + 1;
        defs.push({ label: `${line.target} max`, stroke: translucent(c, 0.25), band: true });
        cols.push(line.max);
        defs.push({ label: `${line.target} min`, stroke: translucent(c, 0.25), band: true });
        cols.push(line.min);
        bands.push({ series: [maxIdx, maxIdx + 1], fill: translucent(c, 0.14) });
      }
    }
    this.plot(slot, win, s.x, defs, cols, spec.unit, bands);
  }

  private plot(
    slot: HTMLElement,
    win: Window,
    x: number[],
    defs: { label: string; stroke: string; band?: boolean }[],
    cols: (number | null)[][],
    unit: (v: number | null) => string,
    bands: uPlot.Band[],
  ): void {
    const axis = cssVar("--muted") || "#666";
    const grid = cssVar("--grid") || "rgba(128,128,128,0.2)";
    const opts: uPlot.Options = {
      width: Math.max(slot.clientWidth - 32, 280),
      height: 220,
      scales: { x: { time: true, min: Date.parse(win.since) / 1000, max: Date.parse(win.until) / 1000 } },
      axes: [
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, size: 70, values: (_u, vals) => vals.map((v) => unit(v)) },
      ],
      series: [
        { label: "Time", value: (_u, v) => (v === null ? "–" : fmtTime(new Date(v * 1000).toISOString())) },
        ...defs.map((d) => ({
          label: d.label,
          stroke: d.stroke,
          width: d.band ? 0 : 2,
          // Points show a lone bucket (a line needs two) and gaps' edges.
          points: { show: !d.band, size: 5, fill: d.stroke },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => unit(v),
        })),
      ],
      bands,
      legend: { show: false },
      cursor: { focus: { prox: 24 } },
    };
    const lines = defs.filter((d) => !d.band);
    const el = h("div", { class: "plot", role: "img", "aria-label": `${lines.map((d) => d.label).join(", ")}` });
    const legend = h(
      "ul",
      { class: "legend" },
      lines.map((d) => h("li", {}, h("span", { class: "swatch", "data-colour": d.stroke }), d.label)),
    );
    // Colours are set through the CSSOM (allowed by the CSP), not style attributes.
    legend.querySelectorAll<HTMLElement>(".swatch").forEach((sw) => (sw.style.background = sw.dataset.colour ?? ""));
    slot.append(el, legend);
    this.plots.push(new uPlot(opts, [x, ...cols] as uPlot.AlignedData, el));
    const m = window.__WADDLEPERF_METRICS__;
    const main = document.getElementById("main");
    if (m && m.firstChartMs === undefined && m.mountAt !== undefined) {
      m.firstChartMs = performance.now() - m.mountAt;
      main?.setAttribute("data-first-chart-ms", m.firstChartMs.toFixed(1));
    }
    if (m && m.loadChartMs === undefined && m.loadAt !== undefined) {
      m.loadChartMs = performance.now() - m.loadAt;
      main?.setAttribute("data-load-chart-ms", m.loadChartMs.toFixed(1));
    }
  }

  private resize(): void {
    for (const p of this.plots) {
      const slot = p.root.closest("figure");
      if (slot) p.setSize({ width: Math.max(slot.clientWidth - 32, 280), height: 220 });
    }
  }

  private async loadTable(targets: string[], win: Window, gen: number): Promise<void> {
    const rows = await api.history({ targets, since: win.since, until: win.until, limit: 200, network: this.network || null });
    if (gen !== this.generation) return;
    this.renderTable(rows.reverse());
  }

  private renderTable(rows: Measurement[]): void {
    clear(this.tableEl);
    if (rows.length === 0) {
      this.tableEl.append(h("p", { class: "muted" }, "No results in this range."));
      return;
    }
    this.tableEl.append(
      h("p", { class: "muted small" }, `The newest ${rows.length} results in the range; export for all of them.`),
      h("div", { class: "table-wrap" }, resultsTable("history-table", rows, ["when", "type", "target", "tier", "result", "latency", "figures"])),
    );
  }

  private async exportAs(format: "csv" | "json"): Promise<void> {
    const win = windowFor(this.range);
    try {
      const r = await api.exportResults(format, { targets: this.selected(), since: win.since, until: win.until, network: this.network || null });
      this.statusEl.textContent = `Saved ${r.count} results to ${r.path}`;
    } catch (e) {
      this.statusEl.textContent = `Export failed: ${errorText(e)}`;
    }
  }
}

function bucketLabel(secs: number): string {
  if (secs % 86_400 === 0) return `${secs / 86_400} d`;
  if (secs % 3_600 === 0) return `${secs / 3_600} h`;
  return `${secs / 60} min`;
}
