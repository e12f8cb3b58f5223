import "./locale";
// The window: a hash router over three pages, the header's health and
// status, and the notes the app has for the person (another agent, a bad
// configuration file, errors from the tray).
import { api, errorText, isIpcError, onAppEvent, onRuntimeEvent, type AgentState, type RuntimeEvent } from "./api";
import { clear, coalesce, h } from "./dom";
import { note, renderHeader, showAgent } from "./header";
import { Overview } from "./pages/overview";
import { History } from "./pages/history";
import { SettingsPage } from "./pages/settings";
import { Diagnostics } from "./pages/diagnostics";

export interface Page {
  mount(root: HTMLElement): Promise<void> | void;
  onEvent?(e: RuntimeEvent): void;
  unmount?(): void;
}

type PageName = "overview" | "history" | "diagnostics" | "settings";
const factories: Record<PageName, () => Page> = {
  overview: () => new Overview(),
  history: () => new History(),
  diagnostics: () => new Diagnostics(),
  settings: () => new SettingsPage(),
};

let current: Page | null = null;
let currentName: PageName | null = null;

function pageFromHash(): PageName {
  const name = location.hash.replace(/^#\/?/, "");
  return name in factories ? (name as PageName) : "overview";
}

async function show(name: PageName, again = false): Promise<void> {
  if (name === currentName && !again) return;
  current?.unmount?.();
  currentName = name;
  const main = document.getElementById("main");
  if (!main) return;
  clear(main);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `WaddlePerf · ${name[0].toUpperCase()}${name.slice(1)}`;
  current = factories[name]();
  try {
    await current.mount(main);
  } catch (e) {
    main.append(h("p", { class: "error", role: "alert" }, `This page could not load: ${errorText(e)}`));
  }
}

let headerTimer: number | undefined;
/** The events of one run (start, health, next run, finish) make one read. */
const refreshHeaderSoon = coalesce(() => void refreshHeader(), 150);
async function refreshHeader(): Promise<void> {
  try {
    renderHeader(await api.status());
  } catch {
    /* shown by the pages */
  }
}

async function start(): Promise<void> {
  const first = (window as unknown as { __WADDLEPERF_PAGE__?: string }).__WADDLEPERF_PAGE__;
  if (first && !location.hash) history.replaceState(null, "", `#/${first}`);
  window.addEventListener("hashchange", () => void show(pageFromHash()));
  await onRuntimeEvent((e) => {
    current?.onEvent?.(e);
    if (e.event === "run_started" || e.event === "run_finished" || e.event === "paused" || e.event === "resumed" || e.event === "overall_health" || e.event === "next_run" || e.event === "network_changed" || e.event === "networks_changed") {
      refreshHeaderSoon();
    }
    if (e.event === "signed_out") note(`Signed out of the server: ${e.message}. Results keep queueing; sign in again under Settings.`, "error");
    if (e.event === "enrollment_lost") note(`This device is no longer enrolled: ${e.message}`, "error");
    if (e.event === "captive_portal") note(`This network wants you to sign in (a captive portal${e.location ? ` at ${e.location}` : ""}). Results taken behind it are marked and do not count as outages.`);
    if (e.event === "task_failed") note(`A background task failed and is being restarted (${e.task}): ${e.message}`, "error");
  });
  await onAppEvent<string>("navigate", (page) => {
    location.hash = `#/${page}`;
  });
  await onAppEvent<string>("app-error", (m) => note(m, "error"));
  await onAppEvent<null>("resync", () => {
    void refreshHeader();
    current?.onEvent?.({ event: "resumed" });
  });
  // The agent went away (quit, killed, restarted) or came back: the banner
  // says so, and a page that could not load while it was away loads again.
  await onAppEvent<AgentState>("agent", (a) => {
    if (showAgent(a.connected, a.message) && a.connected) {
      void refreshHeader();
      void show(pageFromHash(), true);
    }
  });
  try {
    const info = await api.appInfo();
    showAgent(true);
    if (info.agent_note) note(info.agent_note);
    if (info.config_note) note(`The configuration file could not be used: ${info.config_note}`, "error");
  } catch (e) {
    if (isIpcError(e) && e.kind === "no_agent") showAgent(false, e.message);
    else note(errorText(e), "error");
  }
  await refreshHeader();
  // Relative times in the header age: refresh them each minute.
  headerTimer = window.setInterval(() => void refreshHeader(), 60_000);
  await show(pageFromHash());
}

window.addEventListener("beforeunload", () => window.clearInterval(headerTimer));
void start();
