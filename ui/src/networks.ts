// Networks: names for them (the person's label, else a description built the
// way the engine builds it), and the side-by-side comparison of targets on
// each network that the History page shows.
import type { KnownNetwork, NetworkContext, Series } from "./api";

/** "wifi "Office" via wlan0, gateway 10.0.0.1" — as `NetworkContext::describe`. */
export function describe(c: NetworkContext): string {
  let s: string = c.link_type;
  if (c.ssid) s += ` ${JSON.stringify(c.ssid)}`;
  s += ` via ${c.iface}`;
  if (c.gateway_ip) s += `, gateway ${c.gateway_ip}`;
  if (c.vpn && c.link_type !== "vpn") s += ", VPN";
  if (c.metered === true) s += ", metered";
  return s;
}

export function networkName(n: KnownNetwork): string {
  return n.label ?? describe(n.context);
}

/** One target's figures on one network over a range. */
export interface Cell {
  results: number;
  latencyMs: number | null;
  lossPct: number | null;
}

/** Folds a series' buckets into one figure per target: the latency mean
 * weighted by each bucket's values, the loss weighted by its results. */
export function fold(series: Series[]): Map<string, Cell> {
  const out = new Map<string, Cell>();
  for (const s of series) {
    let results = 0;
    let n = 0;
    let sum = 0;
    let lossW = 0;
    let lossSum = 0;
    for (const b of s.buckets) {
      results += b.count;
      if (b.mean !== null && b.mean !== undefined && b.n > 0) {
        n += b.n;
        sum += b.mean * b.n;
      }
      if (b.loss_pct !== null && b.loss_pct !== undefined && b.count > 0) {
        lossW += b.count;
        lossSum += b.loss_pct * b.count;
      }
    }
    const prev = out.get(s.target);
    const cell: Cell = { results, latencyMs: n > 0 ? sum / n : null, lossPct: lossW > 0 ? lossSum / lossW : null };
    // One target under two test types: keep the one with more results.
    if (!prev || prev.results < cell.results) out.set(s.target, cell);
  }
  return out;
}

/** Rows of the comparison: each target, with its cell on each network
 * (in `networks` order; `null` where it has no result there). */
export function compareRows(networks: string[], byNetwork: Map<string, Map<string, Cell>>): { target: string; cells: (Cell | null)[] }[] {
  const targets = new Set<string>();
  for (const m of byNetwork.values()) for (const t of m.keys()) targets.add(t);
  return [...targets].sort().map((target) => ({ target, cells: networks.map((id) => byNetwork.get(id)?.get(target) ?? null) }));
}
