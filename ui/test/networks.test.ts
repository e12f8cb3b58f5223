// Network names and the side-by-side comparison; the header names the
// network; the History page filters by network and renames it.
import { vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

vi.hoisted(() => {
  class NoResize {
    observe(): void {}
    disconnect(): void {}
  }
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = NoResize;
  window.matchMedia ??= ((query: string) => ({ matches: false, media: query, addEventListener() {}, removeEventListener() {}, addListener() {}, removeListener() {} })) as unknown as typeof window.matchMedia;
});

import type { KnownNetwork, Series } from "../src/api";
import { renderHeader } from "../src/header";
import { compareRows, describe as describeNet, fold, networkName } from "../src/networks";
import { History } from "../src/pages/history";
import { status } from "./fixtures";

const net = (id: string, label: string | null, over: Partial<KnownNetwork["context"]> = {}): KnownNetwork => ({
  id,
  label,
  first_seen: "2026-12-01T00:00:00Z",
  last_seen: "2026-12-01T00:00:00Z",
  results: 3,
  context: { network_id: id, iface: "wlan0", link_type: "wifi", ssid: "Office", gateway_ip: "10.0.0.1", dns_servers: [], vpn: false, ...over },
});

const series = (target: string, buckets: [number, number, number | null, number | null][]): Series => ({
  target,
  test_type: "tcp",
  metric: "latency_ms",
  buckets: buckets.map(([count, n, mean, loss]) => ({ start: "2026-12-01T00:00:00Z", count, failed: 0, n, min: mean, mean, max: mean, loss_pct: loss })),
});

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("networks", () => {
  it("names a network by its label, else as the engine describes it", () => {
    expect(networkName(net("a", "Home"))).toBe("Home");
    expect(networkName(net("a", null))).toBe('wifi "Office" via wlan0, gateway 10.0.0.1');
    expect(describeNet({ ...net("b", null).context, link_type: "ethernet", ssid: null, vpn: true, metered: true })).toBe(
      "ethernet via wlan0, gateway 10.0.0.1, VPN, metered",
    );
  });

  it("folds buckets into one weighted figure per target and lines networks up", () => {
    const home = fold([series("a:1", [[2, 2, 10, 0], [1, 1, 40, 100]]), series("b:2", [[1, 0, null, 100]])]);
    expect(home.get("a:1")).toEqual({ results: 3, latencyMs: 20, lossPct: 100 / 3 });
    expect(home.get("b:2")).toEqual({ results: 1, latencyMs: null, lossPct: 100 });
    const office = fold([series("a:1", [[1, 1, 5, 0]])]);
    const rows = compareRows(["home", "office"], new Map([["home", home], ["office", office]]));
    expect(rows.map((r) => r.target)).toEqual(["a:1", "b:2"]);
    expect(rows[0].cells.map((c) => c?.latencyMs)).toEqual([20, 5]);
    expect(rows[1].cells[1]).toBeNull();
  });

  it("shows the network in the header", () => {
    document.body.innerHTML = "<span id='health-dot'></span><span id='top-status'></span>";
    renderHeader(status({ network: net("a", "Home") }));
    expect(document.getElementById("top-status")!.textContent).toBe("No runs yet · on Home");
  });

  it("filters the History page by network, compares networks and renames one", async () => {
    const calls: [string, Record<string, unknown>][] = [];
    let label: string | null = null;
    invoke.mockImplementation(async (cmd: string, args: Record<string, unknown>) => {
      calls.push([cmd, args]);
      if (cmd === "targets") return [{ target: "a:1", test_type: "tcp" }];
      if (cmd === "networks") return { current: null, known: [net("aaaaaaaaaaaaaaaa", label), net("bbbbbbbbbbbbbbbb", "Office", { ssid: "Corp" })] };
      if (cmd === "series") {
        const q = args.query as { network?: string | null; bucket_secs: number };
        // Charts get nothing (jsdom has no canvas); the comparison its figures.
        if (q.bucket_secs < 86_400) return [];
        if (q.network === "aaaaaaaaaaaaaaaa") return [series("a:1", [[2, 2, 12, 0]])];
        if (q.network === "bbbbbbbbbbbbbbbb") return [series("a:1", [[4, 4, 30, 25]])];
        return [];
      }
      if (cmd === "history") return [];
      if (cmd === "network_label") {
        label = args.label as string;
        return label;
      }
      if (cmd === "export") return { path: "/tmp/x.csv", count: 0 };
      throw { kind: "internal", message: cmd };
    });
    document.body.innerHTML = "<main id='main'></main>";
    const page = new History();
    await page.mount(document.getElementById("main")!);
    await tick();
    // Side by side: one row per target, one column per network.
    const head = [...document.querySelectorAll("#compare-table th")].map((t) => t.textContent);
    expect(head).toEqual(["Target", 'wifi "Office" via wlan0, gateway 10.0.0.1', "Office"]);
    const cells = [...document.querySelectorAll("#compare-table td")].map((t) => t.textContent);
    expect(cells[0]).toBe("a:1");
    expect(cells[1]).toContain("loss");
    expect(cells[2]).toContain("4");
    // Pick a network: charts, results and exports ask for it.
    const select = document.getElementById("network-filter") as HTMLSelectElement;
    select.value = "bbbbbbbbbbbbbbbb";
    select.dispatchEvent(new Event("change"));
    await tick();
    await tick();
    const last = (cmd: string) => [...calls].reverse().find(([c]) => c === cmd)?.[1];
    expect((last("history")?.query as { network?: string }).network).toBe("bbbbbbbbbbbbbbbb");
    document.getElementById("export-csv")!.click();
    await tick();
    expect((last("export")?.query as { network?: string }).network).toBe("bbbbbbbbbbbbbbbb");
    // Rename it.
    select.value = "aaaaaaaaaaaaaaaa";
    select.dispatchEvent(new Event("change"));
    await tick();
    const input = document.getElementById("network-label") as HTMLInputElement;
    input.value = "Home";
    document.getElementById("network-label-save")!.click();
    await tick();
    await tick();
    expect(last("network_label")).toEqual({ id: "aaaaaaaaaaaaaaaa", label: "Home" });
    expect([...select.options].map((o) => o.textContent)).toContain("Home (3 results)");
    page.unmount();
  });
});
