// The Diagnostics page shows the agent's report as text, lists what could
// not be read and why, and copies the text.
import { vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

import { Diagnostics, unavailable } from "../src/pages/diagnostics";

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("diagnostics page", () => {
  it("shows the report, what is missing, and copies it", async () => {
    const report = { system: { ok: { os: "X" } }, clock: { unavailable: "no server to compare with" }, interfaces: { unavailable: "not read on this OS" } };
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "diagnose") return { report, text: "WaddlePerf diagnostics\n\nSystem\n  os X\n" };
      throw { kind: "internal", message: cmd };
    });
    expect(unavailable(report)).toEqual([
      ["Interfaces", "not read on this OS"],
      ["Clock", "no server to compare with"],
    ]);
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    document.body.innerHTML = "<main id='main'></main>";
    await new Diagnostics().mount(document.getElementById("main")!);
    expect(document.getElementById("diag-text")!.textContent).toContain("System\n  os X");
    expect([...document.querySelectorAll("#diag-missing li")].map((l) => l.textContent)).toEqual([
      "Interfaces: not read on this OS",
      "Clock: no server to compare with",
    ]);
    document.getElementById("diag-copy")!.click();
    await tick();
    expect(writeText).toHaveBeenCalledWith("WaddlePerf diagnostics\n\nSystem\n  os X\n");
    expect(document.getElementById("diag-status")!.textContent).toBe("Copied to the clipboard.");
  });

  it("says why it could not collect", async () => {
    invoke.mockImplementation(async () => {
      throw { kind: "no_agent", message: "The WaddlePerf agent is not running." };
    });
    document.body.innerHTML = "<main id='main'></main>";
    await new Diagnostics().mount(document.getElementById("main")!);
    expect(document.getElementById("diag-status")!.textContent).toBe("Could not collect the diagnostics: The WaddlePerf agent is not running.");
  });
});
