// Overview: health per target at a glance, the latest result of each target,
// Run now with live progress from the runtime's events, and the speed test
// with its current rate and loaded latency while it runs and its bufferbloat
// grade in plain words when done.
import { api, errorText, type Measurement, type RuntimeEvent, type Status } from "../api";
import { clear, coalesce, h } from "../dom";
import { fmtAgo, fmtMbps, fmtMs, gradeWords, resultSummary, rpmWords, typeLabel } from "../format";
import { resultsTable } from "../table";
import { latestPerTarget } from "../results";

export class Overview {
  private runBtn!: HTMLButtonElement;
  private speedBtn!: HTMLButtonElement;
  private speed!: HTMLElement;
  private speedNow!: HTMLElement;
  private speedResults!: HTMLElement;
  /** The run that is a speed test, while it runs. */
  private speedRun: string | null = null;
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
    this.speedBtn = h("button", { id: "speed-test" }, "Run speed test");
    this.speedBtn.addEventListener("click", () => void this.speedTest());
    this.speedNow = h("p", { id: "speed-now", class: "speed-now" });
    this.speedResults = h("ol", { id: "speed-results", class: "live" });
    this.speed = h("section", { id: "speed", class: "card", hidden: true, "aria-live": "polite" }, h("h2", {}, "Speed test"), this.speedNow, this.speedResults);
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
      h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("div", { class: "actions" }, this.runBtn, this.speedBtn, this.pauseBtn)),
      this.message,
      this.speed,
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

  private async speedTest(): Promise<void> {
    this.speedBtn.disabled = true;
    this.speedBtn.textContent = "Testing speed…";
    this.speed.hidden = false;
    clear(this.speedResults);
    this.speedNow.textContent = "Waiting for the link to be free…";
    try {
      const summary = await api.speedTest();
      this.showSpeed(summary.results);
    } catch (e) {
      this.failure = `The speed test could not run: ${errorText(e)}`;
      this.message.textContent = this.failure;
      this.speedNow.textContent = "";
      this.speed.hidden = this.speedResults.childElementCount === 0;
    } finally {
      this.speedBtn.disabled = false;
      this.speedBtn.textContent = "Run speed test";
      await this.refresh();
    }
  }

  /** The finished speed test: each server's figures, and what its grade means. */
  private showSpeed(results: Measurement[]): void {
    clear(this.speedResults);
    const down = results.map((r) => r.metrics?.download_mbps).find((v) => typeof v === "number");
    const up = results.map((r) => r.metrics?.upload_mbps).find((v) => typeof v === "number");
    const grades = results.map((r) => r.metrics?.bufferbloat_grade).filter((g): g is string => typeof g === "string");
    const order = ["A+", "A", "B", "C", "D", "F"];
    const worst = grades.sort((a, b) => order.indexOf(a) - order.indexOf(b)).at(-1);
    const lines = [`Download ${fmtMbps(down)}`, `upload ${fmtMbps(up)}`];
    const rpms = results.map((r) => r.metrics?.rpm).filter((v): v is number => typeof v === "number");
    const rpm = rpms.length ? Math.min(...rpms) : null;
    this.speedNow.textContent =
      lines.join(", ") +
      (worst ? `. Bufferbloat ${worst}: ${gradeWords(worst)}.` : ".") +
      (rpm !== null ? ` Responsiveness ${Math.round(rpm)} RPM: ${rpmWords(rpm)}.` : "");
    this.speedNow.dataset.grade = worst ?? "";
    for (const r of results) {
      this.speedResults.append(h("li", { class: r.success ? "ok" : "failed" }, `${r.target}: ${resultSummary(r)}`));
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
        if (e.reason === "speed_test") {
          this.speedRun = e.run_id;
          this.speed.hidden = false;
          this.speedNow.textContent = "Starting…";
          this.speedBtn.disabled = true;
          this.speedBtn.textContent = "Testing speed…";
        }
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
      case "bandwidth_progress": {
        const i = e.interim;
        const parts = [i.download_mbps != null ? `↓ ${fmtMbps(i.download_mbps)}` : null, i.upload_mbps != null ? `↑ ${fmtMbps(i.upload_mbps)}` : null, i.loaded_latency_ms != null ? `latency ${fmtMs(i.loaded_latency_ms)}` : null];
        this.speed.hidden = false;
        this.speedNow.textContent = `${e.target}: ${parts.filter(Boolean).join(" · ")} (${Math.round(i.elapsed_s)} of ${i.seconds} s)`;
        break;
      }
      case "run_finished":
        if (e.summary.run_id === this.speedRun) {
          this.speedRun = null;
          this.showSpeed(e.summary.results);
          this.speedBtn.disabled = false;
          this.speedBtn.textContent = "Run speed test";
        }
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
