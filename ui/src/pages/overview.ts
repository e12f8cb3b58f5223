// Overview: health per target at a glance, the latest result of each target,
// and Run now with live progress from the runtime's events.
import { api, errorText, type Measurement, type RuntimeEvent, type Status } from "../api";
import { clear, coalesce, h } from "../dom";
import { fmtAgo, resultSummary, typeLabel } from "../format";
import { resultsTable } from "../table";
import { latestPerTarget } from "../results";

export class Overview {
  private runBtn!: HTMLButtonElement;
  private pauseBtn!: HTMLButtonElement;
  private progress!: HTMLElement;
  private bar!: HTMLProgressElement;
  private progressText!: HTMLElement;
  private live!: HTMLElement;
  private health!: HTMLElement;
  private latest!: HTMLElement;
  private message!: HTMLElement;
  private status: Status | null = null;
  /** Why the last action failed; kept until the next run starts, so a
   * refresh of the state does not wipe it. */
  private failure = "";
  /** Many events of one run (a health change per target) make one refresh. */
  private refreshSoon = coalesce(() => void this.refresh(), 150);

  async mount(root: HTMLElement): Promise<void> {
    this.runBtn = h("button", { id: "run-now", class: "primary" }, "Run tests now");
    this.runBtn.addEventListener("click", () => void this.runNow());
    this.pauseBtn = h("button", { id: "pause-resume" }, "Pause monitoring");
    this.pauseBtn.addEventListener("click", () => void this.togglePause());
    this.bar = h("progress", { id: "progress-bar", max: 1, value: 0, "aria-label": "Tests done" });
    this.progressText = h("span", { id: "progress-text" });
    this.live = h("ol", { id: "live-results", class: "live" });
    this.progress = h("section", { id: "progress", class: "card progress", hidden: true, "aria-live": "polite" }, h("h2", {}, "Running"), this.bar, this.progressText, this.live);
    this.message = h("p", { id: "overview-message", class: "muted", role: "status" });
    this.health = h("div", { id: "health-grid", class: "grid" });
    this.latest = h("div", { id: "latest" });
    root.append(
      h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("div", { class: "actions" }, this.runBtn, this.pauseBtn)),
      this.message,
      this.progress,
      h("section", { class: "card" }, h("h2", {}, "Health per target"), this.health),
      h("section", { class: "card" }, h("h2", {}, "Latest results"), this.latest),
    );
    await this.refresh();
  }

  private async refresh(): Promise<void> {
    try {
      const [status, recent] = await Promise.all([api.status(), api.history({ limit: 200 })]);
      this.status = status;
      this.renderStatus(status);
      this.renderLatest(latestPerTarget(recent));
    } catch (e) {
      this.message.textContent = `Could not read the state: ${errorText(e)}`;
    }
  }

  private renderStatus(s: Status): void {
    this.pauseBtn.textContent = s.paused ? "Resume monitoring" : "Pause monitoring";
    this.pauseBtn.setAttribute("aria-pressed", String(s.paused));
    if (!s.running) {
      this.runBtn.disabled = false;
      this.runBtn.textContent = "Run tests now";
    }
    const lines: string[] = this.failure ? [this.failure] : [];
    if (s.connectivity.lost) lines.push(`Connectivity lost ${fmtAgo(s.connectivity.since)}: no target answers.`);
    if (s.paused) lines.push("Scheduled runs are paused; Run tests now still works.");
    this.message.textContent = lines.join(" ");
    clear(this.health);
    if (s.targets_health.length === 0) {
      this.health.append(h("p", { class: "muted" }, `No results yet for the ${s.targets} configured targets. Run the tests to see their health.`));
      return;
    }
    for (const t of s.targets_health) {
      this.health.append(
        h(
          "article",
          { class: `target health-${t.health}`, "data-target": t.target },
          h("div", { class: "target-head" }, h("span", { class: "badge" }, t.health), h("span", { class: "type" }, typeLabel(t.test_type))),
          h("div", { class: "target-name" }, t.target),
          h("div", { class: "muted small" }, t.reason ? `${t.reason} · since ${fmtAgo(t.since)}` : `since ${fmtAgo(t.since)}`),
        ),
      );
    }
  }

  private renderLatest(rows: Measurement[]): void {
    clear(this.latest);
    if (rows.length === 0) {
      this.latest.append(h("p", { class: "muted" }, "Nothing stored yet."));
      return;
    }
    this.latest.append(resultsTable("latest-table", rows, ["type", "target", "result", "figures", "when"]));
  }

  private async runNow(): Promise<void> {
    this.runBtn.disabled = true;
    this.runBtn.textContent = "Running…";
    try {
      await api.runNow();
    } catch (e) {
      this.failure = `The tests could not run: ${errorText(e)}`;
      this.message.textContent = this.failure;
    } finally {
      this.runBtn.disabled = false;
      this.runBtn.textContent = "Run tests now";
      await this.refresh();
    }
  }

  private async togglePause(): Promise<void> {
    try {
      if (this.status?.paused) await api.resume();
      else await api.pause();
    } catch (e) {
      this.failure = errorText(e);
      this.message.textContent = this.failure;
    }
    await this.refresh();
  }

  onEvent(e: RuntimeEvent): void {
    switch (e.event) {
      case "run_started":
        this.failure = "";
        clear(this.live);
        this.progress.hidden = false;
        this.bar.max = Math.max(e.total, 1);
        this.bar.value = 0;
        this.progressText.textContent = `0 of ${e.total} tests done`;
        this.runBtn.disabled = true;
        this.runBtn.textContent = "Running…";
        break;
      case "tier_started":
        this.bar.max = Math.max(e.total, 1);
        this.live.append(h("li", { class: "muted" }, `AutoPerf: tier ${e.tier} tests join the run`));
        break;
      case "test_started":
        this.progressText.textContent = `${this.bar.value} of ${this.bar.max} tests done · testing ${typeLabel(e.test_type)} ${e.target}`;
        break;
      case "result":
        this.bar.max = Math.max(e.total, 1);
        this.bar.value = e.done;
        this.progressText.textContent = `${e.done} of ${e.total} tests done`;
        this.live.append(h("li", { class: e.result.success ? "ok" : "failed" }, `${typeLabel(e.result.test_type)} ${e.result.target}: ${resultSummary(e.result)}`));
        break;
      case "run_finished":
        this.progressText.textContent = `Done: ${e.summary.results.length} tests, ${e.summary.results.filter((r) => !r.success).length} failed${e.summary.interrupted ? " (interrupted)" : ""}`;
        this.refreshSoon();
        break;
      case "paused":
      case "resumed":
      case "health_changed":
        this.refreshSoon();
        break;
      default:
        break;
    }
  }
}
