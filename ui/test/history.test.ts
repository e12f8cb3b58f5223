// The History page against a mocked IPC: a slow answer for a range the user
// has already left is dropped (the newer range's rows stay), and export says
// where it wrote or why it could not.
import { vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

import { History } from "../src/pages/history";

// What jsdom lacks and the page (and uPlot, at import) use.
vi.hoisted(() => {
  class NoResize {
    observe(): void {}
    disconnect(): void {}
  }
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = NoResize;
  window.matchMedia ??= ((query: string) => ({ matches: false, media: query, addEventListener() {}, removeEventListener() {}, addListener() {}, removeListener() {} })) as unknown as typeof window.matchMedia;
});

const row = (id: string) => ({
  id,
  test_type: "tcp",
  target: "a:1",
  started_at: "2026-12-01T00:00:00Z",
  duration_ms: 2,
  success: true,
  tier: 1,
  latency_ms: 1,
  metrics: { connect_ms: 1 },
});

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("history page", () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it("drops a late answer for a range that is no longer shown", async () => {
    const pending: ((rows: unknown[]) => void)[] = [];
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "targets") return [{ target: "a:1", test_type: "tcp" }];
      if (cmd === "series") return [];
      if (cmd === "history") return new Promise((resolve) => pending.push(resolve));
      throw { kind: "internal", message: cmd };
    });
    document.body.innerHTML = "<main id='main'></main>";
    const page = new History();
    void page.mount(document.getElementById("main")!);
    await tick();
    await tick();
    expect(pending.length).toBe(1);
    // The user picks 7 days before the 24 h answer arrives.
    document.getElementById("range-7d")!.click();
    await tick();
    expect(pending.length).toBe(2);
    pending[1]([row("new-1"), row("new-2")]);
    await tick();
    pending[0]([row("old-1")]);
    await tick();
    await tick();
    const ids = [...document.querySelectorAll("#history-results tbody tr")].length;
    expect(ids).toBe(2);
    expect(document.getElementById("history-status")!.textContent).toContain("7 d,");
    page.unmount();
  });

  it("says where an export went, or why it failed", async () => {
    let fail = false;
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "targets") return [{ target: "a:1", test_type: "tcp" }];
      if (cmd === "series" || cmd === "history") return [];
      if (cmd === "export") {
        if (fail) throw { kind: "io", message: "the disk is full" };
        return { path: "/home/u/Downloads/waddleperf.csv", count: 7 };
      }
      throw { kind: "internal", message: cmd };
    });
    document.body.innerHTML = "<main id='main'></main>";
    const page = new History();
    await page.mount(document.getElementById("main")!);
    document.getElementById("export-csv")!.click();
    await tick();
    expect(document.getElementById("history-status")!.textContent).toBe("Saved 7 results to /home/u/Downloads/waddleperf.csv");
    fail = true;
    document.getElementById("export-json")!.click();
    await tick();
    expect(document.getElementById("history-status")!.textContent).toBe("Export failed: the disk is full");
    page.unmount();
  });
});
