// Typed calls to the app's Tauri commands and its event stream. Every command
// maps onto one runtime call; errors arrive as `IpcError`. The types are
// generated from the Rust types (ui/src/generated, by ts-rs): a change on
// either side that the other does not follow fails the type check.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { Event, Measurement, Networks, PassSummary, RunSummary, Series, Settings, Status, SyncStatus } from "./generated/engine";
import type { AppInfo, EnrollArgs, ExportFormat, Exported, HistoryArgs, IpcError, LoginArgs, SeriesArgs, StoredTarget } from "./generated/ipc";

export type * from "./generated/engine";
export type * from "./generated/ipc";

/** A runtime event, as the engine serialises it (`event` names the kind). */
export type RuntimeEvent = Event;
/** What `diagnose` answers: the report (each section `{ok: …}` or
 * `{unavailable: "why"}`) and the same report as text. */
export interface Diagnosis {
  report: Record<string, unknown>;
  text: string;
}

/** What `history` and `export` select. */
export type HistoryQuery = HistoryArgs;
/** What a chart asks for. */
export type SeriesQuery = SeriesArgs;

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "kind" in e && "message" in e;
}

/** A message for any error a command can throw. */
export function errorText(e: unknown): string {
  if (isIpcError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  status: () => invoke<Status>("status"),
  runNow: () => invoke<RunSummary>("run_now"),
  speedTest: () => invoke<RunSummary>("speed_test"),
  pause: () => invoke<void>("pause"),
  resume: () => invoke<void>("resume"),
  history: (query: HistoryQuery) => invoke<Measurement[]>("history", { query }),
  targets: () => invoke<StoredTarget[]>("targets"),
  networks: () => invoke<Networks>("networks"),
  diagnose: () => invoke<Diagnosis>("diagnose"),
  networkLabel: (id: string, label: string) => invoke<string | null>("network_label", { id, label }),
  series: (query: SeriesQuery) => invoke<Series[]>("series", { query }),
  settingsGet: () => invoke<Settings>("settings_get"),
  settingsSet: (settings: Settings) => invoke<Settings>("settings_set", { settings }),
  exportResults: (format: ExportFormat, query: HistoryQuery) => invoke<Exported>("export", { format, query }),
  setAutostart: (on: boolean) => invoke<boolean>("set_autostart", { on }),
  account: () => invoke<SyncStatus>("account"),
  login: (args: LoginArgs) => invoke<SyncStatus>("login", { args }),
  logout: () => invoke<SyncStatus>("logout"),
  enroll: (args: EnrollArgs) => invoke<SyncStatus>("enroll", { args }),
  syncNow: () => invoke<PassSummary>("sync_now"),
  retryDead: () => invoke<number>("retry_dead"),
};

export function onRuntimeEvent(f: (e: RuntimeEvent) => void): Promise<UnlistenFn> {
  return listen<RuntimeEvent>("runtime", (e) => f(e.payload));
}

/** Whether the agent answers (`agent` events from the window process). */
export interface AgentState {
  connected: boolean;
  message?: string | null;
}

export function onAppEvent<T>(name: "navigate" | "resync" | "app-error" | "agent", f: (payload: T) => void): Promise<UnlistenFn> {
  return listen<T>(name, (e) => f(e.payload));
}
