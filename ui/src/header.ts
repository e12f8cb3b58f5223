// The window's header (health dot and status line) and its notes: kept
// apart from the router so that they can be tested on their own.
import type { Status } from "./api";
import { h } from "./dom";
import { fmtAgo } from "./format";
import { networkName } from "./networks";

export function renderHeader(s: Status): void {
  const dot = document.getElementById("health-dot");
  const top = document.getElementById("top-status");
  if (dot) dot.dataset.health = s.running ? "running" : s.paused ? "paused" : (s.health ?? "none");
  if (!top) return;
  const parts: string[] = [];
  if (s.running) parts.push("Running tests…");
  else if (s.last_run) parts.push(`Last run ${fmtAgo(s.last_run.finished_at)}`);
  else parts.push("No runs yet");
  if (s.network) parts.push(`on ${networkName(s.network)}`);
  if (s.paused) parts.push("monitoring paused");
  else if (s.agent?.next_run) parts.push(`next ${fmtAgo(s.agent.next_run)}`);
  const failed = Object.entries(s.task_failures ?? {}).flatMap(([name, f]) => (f ? [[name, f] as const] : []));
  if (failed.length > 0) parts.push(`restarted after a failure: ${failed.map(([name, f]) => `${name} (${f.failures}×, ${f.last_error})`).join(", ")}`);
  top.textContent = parts.join(" · ");
}

export function note(text: string, kind: "info" | "error" = "info"): void {
  const notes = document.getElementById("notes");
  if (!notes) return;
  const close = h("button", { class: "link", "aria-label": "Dismiss" }, "×");
  const n = h("div", { class: `note ${kind}`, role: kind === "error" ? "alert" : "status" }, h("span", {}, text), close);
  close.addEventListener("click", () => n.remove());
  notes.append(n);
}


/** The agent's state: the banner says it is away (the window waits and
 * reconnects); `true` when the state changed. */
export function showAgent(connected: boolean, message?: string | null): boolean {
  const banner = document.getElementById("agent-banner");
  if (!banner) return false;
  const wasHidden = banner.hidden;
  banner.textContent = connected ? "" : (message ?? "The WaddlePerf agent is not running.");
  banner.hidden = connected;
  document.body.dataset.agent = connected ? "connected" : "disconnected";
  return wasHidden !== connected;
}
