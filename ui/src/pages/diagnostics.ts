// Diagnostics: the system report (OS, load, memory, the network, interfaces,
// routes, DNS, proxy, clock, ICMP) as the agent reads it, to copy into a
// support ticket; sections that could not be read say why.
import { api, errorText } from "../api";
import { clear, h } from "../dom";

const SECTIONS: [string, string][] = [
  ["system", "System"],
  ["network", "Network"],
  ["interfaces", "Interfaces"],
  ["routes", "Routes"],
  ["dns", "DNS"],
  ["proxy", "Proxy"],
  ["clock", "Clock"],
  ["icmp", "ICMP"],
];

/** The sections of a report that could not be read, with why. */
export function unavailable(report: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, title] of SECTIONS) {
    const part = report[key] as { unavailable?: string } | undefined;
    if (part && typeof part.unavailable === "string") out.push([title, part.unavailable]);
  }
  return out;
}

export class Diagnostics {
  private textEl!: HTMLElement;
  private statusEl!: HTMLElement;
  private missingEl!: HTMLElement;
  private text = "";

  async mount(root: HTMLElement): Promise<void> {
    const again = h("button", { id: "diag-run" }, "Collect again");
    again.addEventListener("click", () => void this.load());
    const copy = h("button", { id: "diag-copy" }, "Copy report");
    copy.addEventListener("click", () => void this.copy());
    this.statusEl = h("p", { id: "diag-status", class: "muted", role: "status" });
    this.missingEl = h("ul", { id: "diag-missing", class: "muted small" });
    this.textEl = h("pre", { id: "diag-text", class: "report", tabindex: "0", "aria-label": "Diagnostics report" });
    root.append(
      h("div", { class: "page-head" }, h("h1", {}, "Diagnostics"), h("div", { class: "actions" }, again, copy)),
      h("p", { class: "muted small" }, "What this computer says about itself and its network. Copy it into a support ticket; nothing is sent anywhere from here."),
      this.statusEl,
      this.missingEl,
      h("section", { class: "card" }, this.textEl),
    );
    await this.load();
  }

  private async load(): Promise<void> {
    this.statusEl.textContent = "Collecting…";
    try {
      const d = await api.diagnose();
      this.text = d.text;
      this.textEl.textContent = d.text;
      clear(this.missingEl);
      for (const [title, why] of unavailable(d.report)) this.missingEl.append(h("li", {}, `${title}: ${why}`));
      this.statusEl.textContent = "Collected just now.";
    } catch (e) {
      this.statusEl.textContent = `Could not collect the diagnostics: ${errorText(e)}`;
    }
  }

  private async copy(): Promise<void> {
    try {
      await navigator.clipboard.writeText(this.text);
      this.statusEl.textContent = "Copied to the clipboard.";
    } catch {
      // No clipboard permission: select the text for the person to copy.
      const range = document.createRange();
      range.selectNodeContents(this.textEl);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
      this.statusEl.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }
}
