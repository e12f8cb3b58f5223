// The results table both pages show, with the columns each picks.
import type { Measurement } from "./api";
import { h } from "./dom";
import { fmtMs, fmtTime, resultSummary, typeLabel } from "./format";

interface ColumnDef {
  head: string;
  class?: string;
  cell: (m: Measurement) => string | number;
}

const COLUMNS = {
  when: { head: "When", class: "nowrap", cell: (m) => fmtTime(m.started_at) },
  type: { head: "Type", cell: (m) => typeLabel(m.test_type) },
  target: { head: "Target", class: "target-cell", cell: (m) => m.target },
  tier: { head: "Tier", cell: (m) => m.tier },
  result: { head: "Result", cell: (m) => (m.success ? "ok" : "failed") },
  latency: { head: "Latency", class: "num", cell: (m) => fmtMs(m.latency_ms) },
  figures: { head: "Figures", cell: (m) => resultSummary(m) },
} satisfies Record<string, ColumnDef>;

export type Column = keyof typeof COLUMNS;

/** A table of results, one row each (failed rows marked), with these columns. */
export function resultsTable(id: string, rows: Measurement[], columns: Column[]): HTMLTableElement {
  const defs: ColumnDef[] = columns.map((c) => COLUMNS[c]);
  const body = h("tbody", {});
  for (const m of rows) {
    body.append(h("tr", { class: m.success ? "" : "failed" }, defs.map((d) => h("td", d.class ? { class: d.class } : {}, d.cell(m)))));
  }
  return h("table", { id }, h("thead", {}, h("tr", {}, defs.map((d) => h("th", { scope: "col" }, d.head)))), body);
}
