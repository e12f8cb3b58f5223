//! What crosses IPC besides the engine's own types: the commands' arguments,
//! their answers, and the one error type the UI switches on (its kind, a
//! message for people and, for settings, the key that is wrong).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use waddleperf_engine::config::ConfigError;
use waddleperf_engine::runtime::RuntimeError;
use waddleperf_engine::sync::SyncError;
use waddleperf_engine::TestType;

/// What kind of failure, for the UI to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "IpcErrorKind"))]
pub enum ErrorKind {
    /// A setting or an argument is not acceptable (`key` says which).
    Invalid,
    /// The history database failed.
    Store,
    /// A file could not be written or read.
    Io,
    /// The app is quitting.
    ShuttingDown,
    /// The server wants a one-time code: ask for it and call again.
    MfaRequired,
    /// Sign-in or upload failed.
    Sync,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct IpcError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl IpcError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> IpcError {
        IpcError {
            kind,
            message: message.into(),
            key: None,
        }
    }

    pub fn invalid(key: &str, message: impl Into<String>) -> IpcError {
        IpcError {
            kind: ErrorKind::Invalid,
            message: message.into(),
            key: Some(key.to_owned()),
        }
    }
}

impl From<RuntimeError> for IpcError {
    fn from(e: RuntimeError) -> Self {
        let kind = match &e {
            RuntimeError::Store(_) => ErrorKind::Store,
            RuntimeError::ShuttingDown => ErrorKind::ShuttingDown,
            RuntimeError::Config(_) | RuntimeError::NoBandwidthServer => ErrorKind::Invalid,
            RuntimeError::Poisoned | RuntimeError::Task(_) => ErrorKind::Internal,
        };
        let key = match &e {
            RuntimeError::Config(c) => c.key().map(str::to_owned),
            RuntimeError::NoBandwidthServer => Some("bandwidth".to_owned()),
            _ => None,
        };
        IpcError {
            kind,
            message: e.to_string(),
            key,
        }
    }
}

impl From<ConfigError> for IpcError {
    fn from(e: ConfigError) -> Self {
        IpcError {
            kind: ErrorKind::Invalid,
            key: e.key().map(str::to_owned),
            // The UI shows the message next to the field: no file prefix.
            message: e.field_message(),
        }
    }
}

impl From<SyncError> for IpcError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Api(waddleperf_engine::sync::api::ApiError::MfaRequired) => IpcError::new(
                ErrorKind::MfaRequired,
                "enter the one-time code from your authenticator app",
            ),
            SyncError::Runtime(r) => r.into(),
            other => IpcError::new(ErrorKind::Sync, other.to_string()),
        }
    }
}

pub type Res<T> = Result<T, IpcError>;

/// The app, its paths and what it is doing, for the window's header and the
/// Settings page.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct AppInfo {
    pub version: String,
    pub config_file: PathBuf,
    pub db_file: PathBuf,
    pub log_dir: PathBuf,
    /// Set when another agent (the `waddleperf daemon`) runs the schedule for
    /// this database; this app then only shows and runs on demand.
    pub agent_note: Option<String>,
    /// Set when the configuration file could not be used at start.
    pub config_note: Option<String>,
    pub autostart: Option<bool>,
    pub device_id: String,
    pub hostname: String,
}

/// A history query from the UI.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct HistoryArgs {
    pub targets: Option<Vec<String>>,
    #[cfg_attr(test, ts(type = "TestType | null", optional))]
    pub test_type: Option<TestType>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

/// The most results one history call returns.
pub const HISTORY_MAX: usize = 10_000;

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct StoredTarget {
    pub target: String,
    #[cfg_attr(test, ts(type = "TestType"))]
    pub test_type: TestType,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SeriesArgs {
    pub targets: Vec<String>,
    #[cfg_attr(test, ts(type = "TestType | null", optional))]
    pub test_type: Option<TestType>,
    pub metric: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket_secs: i64,
}

/// Buckets per chart at most: more points than a screen has pixels is waste.
pub const MAX_BUCKETS: i64 = 5_000;

pub fn check_series(q: &SeriesArgs) -> Res<()> {
    if !waddleperf_engine::model::CHART_METRICS.contains(&q.metric.as_str()) {
        return Err(IpcError::invalid(
            "metric",
            format!(
                "`{}` is not a chart metric (one of {})",
                q.metric,
                waddleperf_engine::model::CHART_METRICS.join(", ")
            ),
        ));
    }
    if q.until <= q.since {
        return Err(IpcError::invalid(
            "until",
            "the range ends before it starts",
        ));
    }
    if q.bucket_secs < 60 {
        return Err(IpcError::invalid(
            "bucket_secs",
            format!("{} s is shorter than a minute", q.bucket_secs),
        ));
    }
    let buckets = (q.until - q.since).num_seconds() / q.bucket_secs;
    if buckets > MAX_BUCKETS {
        return Err(IpcError::invalid(
            "bucket_secs",
            format!("{buckets} buckets is more than {MAX_BUCKETS}: use wider buckets"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Exported {
    pub path: PathBuf,
    pub count: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct LoginArgs {
    pub server: Option<String>,
    pub username: String,
    pub password: String,
    pub mfa_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct EnrollArgs {
    pub server: Option<String>,
    pub org_id: i64,
    pub secret: String,
    pub name: Option<String>,
}

/// The TypeScript declarations of these types, generated by ts-rs into
/// `ui/src/generated/ipc.ts` (engine types come from `engine.ts`). The test
/// fails when the file is stale; `WADDLEPERF_WRITE_TS=1 cargo test -p
/// waddleperf-desktop generated_typescript` rewrites it.
#[cfg(test)]
mod typescript {
    use super::*;
    use ts_rs::TS;

    const REGENERATE: &str =
        "WADDLEPERF_WRITE_TS=1 cargo test -p waddleperf-desktop generated_typescript";

    fn declarations() -> String {
        let out = vec![
            ErrorKind::decl(),
            IpcError::decl(),
            AppInfo::decl(),
            HistoryArgs::decl(),
            StoredTarget::decl(),
            SeriesArgs::decl(),
            ExportFormat::decl(),
            Exported::decl(),
            LoginArgs::decl(),
            EnrollArgs::decl(),
        ];
        waddleperf_testkit::generated::typescript_module(
            &format!(
                "// Generated from the desktop app's Rust types by ts-rs: do not edit.\n\
                 // {REGENERATE}\nimport type {{ TestType }} from \"./engine\";\n\n"
            ),
            &out,
        )
    }

    #[test]
    fn generated_typescript_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated/ipc.ts");
        waddleperf_testkit::generated::check_or_write(&path, &declarations(), REGENERATE);
    }
}
