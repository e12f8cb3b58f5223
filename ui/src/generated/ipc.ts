// Generated from the desktop app's Rust types by ts-rs: do not edit.
// WADDLEPERF_WRITE_TS=1 cargo test -p waddleperf-desktop generated_typescript
import type { TestType } from "./engine";

export type IpcErrorKind = "invalid" | "store" | "io" | "shutting_down" | "mfa_required" | "sync" | "unsupported" | "no_agent" | "internal";

export type IpcError = { kind: IpcErrorKind, message: string, key?: string | null, };

export type AppInfo = { version: string, config_file: string, db_file: string, log_dir: string, 
/**
 * Set when the agent is the headless `waddleperf daemon`: it runs the
 * schedule, and start at login is its service's.
 */
agent_note?: string | null, 
/**
 * Set when the configuration file could not be used at start.
 */
config_note?: string | null, autostart?: boolean | null, device_id: string, hostname: string, };

export type HistoryArgs = { targets?: Array<string> | null, test_type?: TestType | null, since?: string | null, until?: string | null, limit?: number | null, 
/**
 * Only results of this network (an id).
 */
network?: string | null, };

export type StoredTarget = { target: string, test_type: TestType, };

export type SeriesArgs = { targets: Array<string>, test_type?: TestType | null, metric: string, since: string, until: string, bucket_secs: number, 
/**
 * Only results of this network (an id).
 */
network?: string | null, };

export type ExportFormat = "csv" | "json";

export type Exported = { path: string, count: number, };

export type LoginArgs = { server?: string | null, username: string, password: string, mfa_code?: string | null, };

export type EnrollArgs = { server?: string | null, org_id: number, secret: string, name?: string | null, };
