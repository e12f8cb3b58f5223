// The Overview's live progress against a mocked IPC and the engine's events:
// a run with a tier joining, a failed test, an interrupted end, and a run
// that could not start.
import { vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

import { Overview } from "../src/pages/overview";
import type { Measurement } from "../src/api";
import { status } from "./fixtures";


const result = (target: string, success: boolean): Measurement =>
  ({
    id: target,
    test_type: "tcp",
    target,
    started_at: "2026-12-01T00:00:00Z",
    duration_ms: 3,
    success,
    tier: 1,
    latency_ms: success ? 1.5 : undefined,
    error_kind: success ? undefined : "refused",
    error: success ? undefined : "connection refused",
    metrics: success ? { connect_ms: 1.5 } : {},
  }) as unknown as Measurement;

async function mount(handlers: Record<string, (args: any) => unknown>) {
  invoke.mockImplementation(async (cmd: string, args: any) => {
    const f = handlers[cmd];
    if (!f) throw { kind: "internal", message: `unexpected command ${cmd}` };
    return f(args);
  });
  document.body.innerHTML = "<main id='main'></main>";
  const page = new Overview();
  await page.mount(document.getElementById("main")!);
  return page;
}

const el = (id: string) => document.getElementById(id)!;

describe("overview progress", () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it("follows a run through a joining tier, a failure and an interrupted end", async () => {
    const page = await mount({ status: () => status(), history: () => [] });
    expect(el("progress").hidden).toBe(true);
    page.onEvent({ event: "run_started", run_id: "r", started_at: "", reason: "on_demand", total: 2 });
    expect(el("progress").hidden).toBe(false);
    expect((el("run-now") as HTMLButtonElement).disabled).toBe(true);
    expect(el("progress-text").textContent).toBe("0 of 2 tests done");
    page.onEvent({ event: "test_started", run_id: "r", tier: 1, test_type: "tcp", target: "a:1" });
    expect(el("progress-text").textContent).toContain("testing TCP a:1");
    page.onEvent({ event: "result", run_id: "r", done: 1, total: 2, result: result("a:1", true) });
    page.onEvent({ event: "tier_started", run_id: "r", tier: 2, total: 3 });
    expect((el("progress-bar") as HTMLProgressElement).max).toBe(3);
    page.onEvent({ event: "result", run_id: "r", done: 2, total: 3, result: result("b:1", false) });
    const items = [...el("live-results").querySelectorAll("li")];
    expect(items.map((li) => li.className)).toEqual(["ok", "muted", "failed"]);
    expect(items[1].textContent).toContain("tier 2");
    expect((el("progress-bar") as HTMLProgressElement).value).toBe(2);
    page.onEvent({
      event: "run_finished",
      summary: { run_id: "r", reason: "on_demand", started_at: "", finished_at: "", tiers: [1, 2], results: [result("a:1", true), result("b:1", false)], transitions: [], interrupted: true },
    });
    expect(el("progress-text").textContent).toBe("Done: 2 tests, 1 failed (interrupted)");
    // A new run clears the old rows.
    page.onEvent({ event: "run_started", run_id: "s", started_at: "", reason: "scheduled", total: 1 });
    expect(el("live-results").children.length).toBe(0);
  });

  it("says why a run could not start and gives the button back", async () => {
    await mount({
      status: () => status(),
      history: () => [],
      run_now: () => {
        throw { kind: "shutting_down", message: "WaddlePerf is shutting down; no new runs start" };
      },
    });
    (el("run-now") as HTMLButtonElement).click();
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(el("overview-message").textContent).toBe("The tests could not run: WaddlePerf is shutting down; no new runs start");
    expect((el("run-now") as HTMLButtonElement).disabled).toBe(false);
    expect(el("run-now").textContent).toBe("Run tests now");
  });

  it("shows paused monitoring and lost connectivity from the status", async () => {
    await mount({ status: () => status({ paused: true, connectivity: { lost: true, since: new Date().toISOString() } }), history: () => [] });
    expect(el("pause-resume").textContent).toBe("Resume monitoring");
    expect(el("pause-resume").getAttribute("aria-pressed")).toBe("true");
    expect(el("overview-message").textContent).toContain("Connectivity lost");
    expect(el("overview-message").textContent).toContain("Scheduled runs are paused");
  });

  it("runs a speed test with live figures and says what its grade means", async () => {
    const bw = (direction: "download" | "upload", mbps: number, grade: string): Measurement =>
      ({
        id: direction,
        test_type: "bandwidth",
        target: direction === "download" ? "iperf3://lan:5201 download" : "iperf3://lan:5201",
        started_at: "2026-12-01T00:00:00Z",
        duration_ms: 12000,
        success: true,
        tier: 1,
        latency_ms: 2,
        metrics: { [`${direction}_mbps`]: mbps, loaded_latency_ms: 180, latency_increase_ms: 178, bufferbloat_grade: grade, streams: 4, seconds: 10 },
      }) as unknown as Measurement;
    let finish: (v: unknown) => void = () => {};
    const page = await mount({
      status: () => status(),
      history: () => [],
      speed_test: () => new Promise((r) => (finish = r)),
    });
    expect(el("speed").hidden).toBe(true);
    (el("speed-test") as HTMLButtonElement).click();
    await new Promise((r) => setTimeout(r, 0));
    expect((el("speed-test") as HTMLButtonElement).disabled).toBe(true);
    page.onEvent({ event: "run_started", run_id: "sp", started_at: "", reason: "speed_test", total: 2 });
    page.onEvent({ event: "bandwidth_progress", run_id: "sp", target: "iperf3://lan:5201 download", interim: { elapsed_s: 3.02, seconds: 10, download_mbps: 47.8, upload_mbps: null, loaded_latency_ms: 181.4 } });
    expect(el("speed-now").textContent).toBe("iperf3://lan:5201 download: ↓ 47.8 Mbit/s · latency 181 ms (3 of 10 s)");
    const results = [bw("download", 47.8, "C"), bw("upload", 45.1, "A")];
    finish({ run_id: "sp", reason: "speed_test", started_at: "", finished_at: "", tiers: [1], results, transitions: [], interrupted: false });
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(el("speed-now").textContent).toBe("Download 47.8 Mbit/s, upload 45.1 Mbit/s. Bufferbloat C: bufferbloat: video calls and games suffer while the link is busy.");
    expect(el("speed-results").children.length).toBe(2);
    expect((el("speed-test") as HTMLButtonElement).disabled).toBe(false);

    // A responsiveness server among them: its RPM in plain words.
    (el("speed-test") as HTMLButtonElement).click();
    await new Promise((r) => setTimeout(r, 0));
    const rpm = bw("download", 46.9, "B");
    (rpm.metrics as Record<string, unknown>).rpm = 240.4;
    finish({ run_id: "sp2", reason: "speed_test", started_at: "", finished_at: "", tiers: [1], results: [rpm], transitions: [], interrupted: false });
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(el("speed-now").textContent).toContain("Responsiveness 240 RPM: low responsiveness");
  });

  it("says when no bandwidth server is configured", async () => {
    await mount({
      status: () => status(),
      history: () => [],
      speed_test: () => {
        throw { kind: "invalid", key: "bandwidth", message: "no bandwidth server is configured: add an iperf3 server in Settings" };
      },
    });
    (el("speed-test") as HTMLButtonElement).click();
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(el("overview-message").textContent).toContain("The speed test could not run: no bandwidth server is configured");
    expect(el("speed").hidden).toBe(true);
  });
});
