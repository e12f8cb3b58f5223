// The header's status line and health dot, and the error text every
// command's failure is shown with.
import { renderHeader, note, showAgent } from "../src/header";
import { errorText } from "../src/api";
import { status } from "./fixtures";


const ago = (min: number) => new Date(Date.now() - min * 60_000).toISOString();
const ahead = (min: number) => new Date(Date.now() + min * 60_000).toISOString();

describe("header", () => {
  beforeEach(() => {
    document.body.innerHTML = "<span id='health-dot'></span><span id='top-status'></span><div id='notes'></div>";
  });
  const line = () => document.getElementById("top-status")!.textContent;
  const dot = () => document.getElementById("health-dot")!.dataset.health;

  it("tells a fresh install, a run going on, and the last and next run", () => {
    renderHeader(status());
    expect(line()).toBe("No runs yet");
    expect(dot()).toBe("none");
    renderHeader(status({ running: true, health: "ok" }));
    expect(line()).toBe("Running tests…");
    expect(dot()).toBe("running");
    renderHeader(
      status({
        health: "degraded",
        last_run: { run_id: "r", reason: "scheduled", started_at: ago(6), finished_at: ago(5), tiers: [1], total: 2, failed: 0 },
        agent: { pid: 1, next_run: ahead(55), updated_at: ago(5) },
      }),
    );
    expect(line()).toMatch(/^Last run 5 min ago · next in 55 min$/);
    expect(dot()).toBe("degraded");
  });

  it("says paused instead of the next run, and names a restarted task", () => {
    renderHeader(status({ paused: true, agent: { pid: 1, next_run: ahead(10), updated_at: ago(1) } }));
    expect(line()).toBe("No runs yet · monitoring paused");
    expect(dot()).toBe("paused");
    renderHeader(status({ task_failures: { sync: { failures: 2, last_error: "panicked: boom", last_failed_at: ago(1) } } }));
    expect(line()).toBe("No runs yet · restarted after a failure: sync (2×, panicked: boom)");
  });

  it("shows notes that can be dismissed, errors as alerts", () => {
    note("The configuration file could not be used", "error");
    note("Another agent runs");
    const notes = [...document.querySelectorAll("#notes .note")];
    expect(notes.map((n) => n.getAttribute("role"))).toEqual(["alert", "status"]);
    (notes[0].querySelector("button") as HTMLButtonElement).click();
    expect(document.querySelectorAll("#notes .note").length).toBe(1);
  });
});

describe("error text", () => {
  it("takes the engine's message, an exception's, or the value itself", () => {
    expect(errorText({ kind: "invalid", message: "`ftp://x`: scheme `ftp` is not supported", key: "http[0].url" })).toBe("`ftp://x`: scheme `ftp` is not supported");
    expect(errorText(new Error("network down"))).toBe("network down");
    expect(errorText("plain words")).toBe("plain words");
    expect(errorText(42)).toBe("42");
  });
});

describe("agent banner", () => {
  beforeEach(() => {
    document.body.innerHTML = "<div id='agent-banner' hidden></div>";
  });
  const banner = () => document.getElementById("agent-banner")!;

  it("says the agent is away, and goes when it is back", () => {
    expect(showAgent(true)).toBe(false);
    expect(banner().hidden).toBe(true);
    expect(showAgent(false, "The WaddlePerf agent is not running. Start WaddlePerf")).toBe(true);
    expect(banner().hidden).toBe(false);
    expect(banner().textContent).toMatch(/^The WaddlePerf agent is not running/);
    expect(document.body.dataset.agent).toBe("disconnected");
    // Told again while away: no change.
    expect(showAgent(false, "again")).toBe(false);
    expect(showAgent(true)).toBe(true);
    expect(banner().hidden).toBe(true);
    expect(document.body.dataset.agent).toBe("connected");
  });
});
