// Typed calls to the app's Tauri commands and its event stream. Every command
// maps onto one runtime call; errors arrive as `IpcError`.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type TestType = "http" | "tcp" | "tls" | "ssh" | "udp" | "dns" | "icmp" | "traceroute" | "mtu" | "bandwidth";
export type Health = "ok" | "degraded" | "down";

/** The figures of a result, under their canonical names (measurements.md). */
export interface Metrics {
  dns_ms?: number;
  connect_ms?: number;
  tls_ms?: number;
  ttfb_ms?: number;
  total_ms?: number;
  status_code?: number;
  http_version?: string;
  bytes?: number;
  throughput_mbps?: number;
  tls_version?: string;
  cert_days_left?: number;
  ssh_banner?: string;
  loss_pct?: number;
  jitter_ms?: number;
  [figure: string]: unknown;
}

/** A stored result: the common fields, then its figures. */
export interface Measurement {
  id: string;
  test_type: TestType;
  target: string;
  resolved_ip?: string;
  started_at: string;
  duration_ms: number;
  success: boolean;
  error_kind?: string;
  error?: string;
  tier: number;
  latency_ms?: number;
  metrics: Metrics;
}

export interface TargetHealth {
  test_type: TestType;
  target: string;
  health: Health;
  since: string;
  reason?: string;
}

export interface Status {
  running: boolean;
  paused: boolean;
  targets: number;
  last_run?: { run_id: string; reason: string; started_at: string; finished_at: string; tiers: number[]; total: number; failed: number };
  agent?: { pid: number; next_run: string | null; updated_at: string };
  health?: Health;
  targets_health: TargetHealth[];
  autoperf: unknown;
  connectivity: { lost: boolean; since?: string };
  store: { results: number; outbox_pending: number; outbox_dead: number; newest: string | null };
  /** Background tasks that failed and were restarted since the agent started. */
  task_failures?: Record<string, { failures: number; last_error: string; last_failed_at: string }>;
}

export interface Bucket {
  start: string;
  count: number;
  failed: number;
  n: number;
  min: number | null;
  mean: number | null;
  max: number | null;
  loss_pct: number | null;
}

export interface Series {
  target: string;
  test_type: TestType;
  metric: string;
  buckets: Bucket[];
}

export interface SeriesQuery {
  targets: string[];
  test_type?: TestType | null;
  metric: string;
  since: string;
  until: string;
  bucket_secs: number;
}

export interface HistoryQuery {
  targets?: string[];
  test_type?: TestType | null;
  since?: string;
  until?: string;
  limit?: number;
}

export type HttpMode = "auto" | "http1" | "http2" | "http3";
export type TcpMode = "raw" | "tls" | "ssh";

export interface HttpTarget { url: string; mode: HttpMode; [more: string]: unknown }
export interface TcpTarget { target: string; mode: TcpMode; [more: string]: unknown }
export interface DnsTarget { name: string; type?: string; server?: string; [more: string]: unknown }
/** UDP echo peers (`target` = host:port). */
export interface UdpTarget { target: string; [more: string]: unknown }
/** Ping, traceroute and path MTU hosts. */
export interface HostTarget { host: string; [more: string]: unknown }

export interface Thresholds {
  latency_ms: number;
  loss_pct: number;
  http_total_ms: number;
  dns_ms: number;
  throughput_mbps: number;
  jitter_ms: number;
  hops: number;
  cert_days_left: number;
}

export interface Settings {
  schedule: { interval_minutes: number; run_on_start: boolean; offset_seconds?: number; concurrency: number };
  autoperf: { enabled: boolean; escalate_after: number; deescalate_after: number; tier3_cooldown_minutes: number; thresholds: Thresholds };
  notifications: { enabled: boolean; min_interval_minutes: number };
  probe: { timeout_ms: number; max_redirects: number; max_body_bytes: number };
  store: { retention_days: number };
  http: HttpTarget[];
  tcp: TcpTarget[];
  dns?: DnsTarget[];
  udp?: UdpTarget[];
  icmp?: HostTarget[];
  traceroute?: HostTarget[];
  mtu?: HostTarget[];
}

export interface AppInfo {
  version: string;
  config_file: string;
  db_file: string;
  log_dir: string;
  agent_note: string | null;
  config_note: string | null;
  autostart: boolean | null;
  device_id: string;
  hostname: string;
}

export interface SyncStatus {
  enabled: boolean;
  account: null | {
    server: string;
    username: string;
    user_id: number;
    secret_store: "keychain" | "file";
    secret_note?: string;
    signed_in_at: string;
    signed_out?: { at: string; reason: string };
  };
  secrets_file: string | null;
  enrollment: null | {
    server: string;
    id: number;
    device_id: string;
    organization_id: number;
    device_name: string;
    enrolled_at: string;
    /** The server no longer knows this device: enroll again. */
    lost?: { at: string; reason: string };
  };
  progress: { last_success?: string | null; last_attempt?: string | null; last_error?: string | null; [k: string]: unknown };
  pending: number;
  dead: number;
}

export interface PassSummary {
  delivered: number;
  settled: number;
  deferred: number;
  dead_lettered: number;
  remaining: number;
  dead_total: number;
  error?: string;
}

export interface RunSummary {
  run_id: string;
  reason: string;
  started_at: string;
  finished_at: string;
  tiers: number[];
  results: Measurement[];
  interrupted: boolean;
  store_error?: string;
}

/** The typed error every command may return. */
export interface IpcError {
  kind: "invalid" | "store" | "io" | "shutting_down" | "mfa_required" | "sync" | "internal";
  message: string;
  key?: string;
}

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "kind" in e && "message" in e;
}

/** A message for any error a command can throw. */
export function errorText(e: unknown): string {
  if (isIpcError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Runtime events, as the engine serialises them (`event` names the kind). */
export type RuntimeEvent =
  | { event: "run_started"; run_id: string; started_at: string; reason: string; total: number }
  | { event: "tier_started"; run_id: string; tier: number; total: number }
  | { event: "test_started"; run_id: string; tier: number; test_type: TestType; target: string }
  | { event: "result"; run_id: string; done: number; total: number; result: Measurement }
  | { event: "run_finished"; summary: RunSummary }
  | { event: "health_changed"; test_type: TestType; target: string; from: Health | null; to: Health; reason?: string }
  | { event: "overall_health"; health: Health }
  | { event: "paused" }
  | { event: "resumed" }
  | { event: "next_run"; at: string | null }
  | { event: "sync_started"; pending: number }
  | { event: "sync_progress"; delivered: number; remaining: number }
  | { event: "sync_finished"; summary: PassSummary }
  | { event: "signed_out"; message: string }
  | { event: "enrollment_lost"; message: string }
  | { event: "task_failed"; task: string; message: string; restarts: number }
  | { event: "escalated" | "deescalated"; transition: unknown }
  | { event: "connectivity_lost" | "connectivity_restored"; message: string };

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  status: () => invoke<Status>("status"),
  runNow: () => invoke<RunSummary>("run_now"),
  pause: () => invoke<void>("pause"),
  resume: () => invoke<void>("resume"),
  history: (query: HistoryQuery) => invoke<Measurement[]>("history", { query }),
  targets: () => invoke<{ target: string; test_type: TestType }[]>("targets"),
  series: (query: SeriesQuery) => invoke<Series[]>("series", { query }),
  settingsGet: () => invoke<Settings>("settings_get"),
  settingsSet: (settings: Settings) => invoke<Settings>("settings_set", { settings }),
  exportResults: (format: "csv" | "json", query: HistoryQuery) =>
    invoke<{ path: string; count: number }>("export", { format, query }),
  setAutostart: (on: boolean) => invoke<boolean>("set_autostart", { on }),
  account: () => invoke<SyncStatus>("account"),
  login: (args: { server: string | null; username: string; password: string; mfa_code: string | null }) =>
    invoke<SyncStatus>("login", { args }),
  logout: () => invoke<SyncStatus>("logout"),
  enroll: (args: { server: string | null; org_id: number; secret: string; name: string | null }) =>
    invoke<SyncStatus>("enroll", { args }),
  syncNow: () => invoke<PassSummary>("sync_now"),
  retryDead: () => invoke<number>("retry_dead"),
};

export function onRuntimeEvent(f: (e: RuntimeEvent) => void): Promise<UnlistenFn> {
  return listen<RuntimeEvent>("runtime", (e) => f(e.payload));
}

export function onAppEvent<T>(name: "navigate" | "resync" | "app-error", f: (payload: T) => void): Promise<UnlistenFn> {
  return listen<T>(name, (e) => f(e.payload));
}
