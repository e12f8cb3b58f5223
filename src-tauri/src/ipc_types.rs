//! What crosses IPC besides the engine's own types: the commands' arguments,
//! their answers, and the one error type the UI switches on (its kind, a
//! message for people and, for settings, the key that is wrong).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use waddleperf_engine::control::{ControlError, WireError};
use waddleperf_engine::TestType;

/// What kind of failure, for the UI to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "IpcErrorKind"))]
pub enum ErrorKind {
    /// A setting or an argument is not acceptable (`key` says which).
    Invalid,
    /// The history database failed.
    Store,
    /// A file could not be written or read.
    Io,
    /// The agent is quitting.
    ShuttingDown,
    /// The server wants a one-time code: ask for it and call again.
    MfaRequired,
    /// Sign-in or upload failed.
    Sync,
    /// The agent cannot do this (the headless daemon has no login item).
    Unsupported,
    /// No agent answers: the window waits for one and reconnects.
    NoAgent,
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

/// What the window says while no agent answers.
pub const NO_AGENT: &str = "The WaddlePerf agent is not running. Start WaddlePerf (or \
     `waddleperf daemon`): this window reconnects when it is back.";

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

impl From<WireError> for IpcError {
    fn from(w: WireError) -> Self {
        let kind = serde_json::from_value(serde_json::Value::String(w.kind))
            .unwrap_or(ErrorKind::Internal);
        IpcError {
            kind,
            message: w.message,
            key: w.key,
        }
    }
}

impl From<ControlError> for IpcError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Agent(w) => w.into(),
            // Nothing listens, or the agent went away mid-call.
            ControlError::NotRunning(_) | ControlError::Gone => {
                IpcError::new(ErrorKind::NoAgent, NO_AGENT)
            }
            ControlError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::NotFound
                ) =>
            {
                IpcError::new(ErrorKind::NoAgent, NO_AGENT)
            }
            other => IpcError::new(ErrorKind::Internal, other.to_string()),
        }
    }
}

impl From<serde_json::Error> for IpcError {
    fn from(e: serde_json::Error) -> Self {
        IpcError::new(
            ErrorKind::Internal,
            format!("the agent's answer is not what this window expects: {e}"),
        )
    }
}

pub type Res<T> = Result<T, IpcError>;

/// The agent, its paths and what it is doing, for the window's header and
/// the Settings page.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct AppInfo {
    pub version: String,
    pub config_file: PathBuf,
    pub db_file: PathBuf,
    pub log_dir: PathBuf,
    /// Set when the agent is the headless `waddleperf daemon`: it runs the
    /// schedule, and start at login is its service's.
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
    /// Only results of this network (an id).
    pub network: Option<String>,
}

/// The most results one history call returns.
pub use waddleperf_engine::control::HISTORY_MAX;

#[derive(Debug, Serialize, Deserialize)]
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
    /// Only results of this network (an id).
    pub network: Option<String>,
}

/// Checks a chart query before it goes to the agent (which checks it too).
pub fn check_series(q: &SeriesArgs) -> Res<()> {
    let query = waddleperf_engine::store::SeriesQuery {
        targets: Vec::new(),
        test_type: q.test_type,
        metric: q.metric.clone(),
        since: q.since,
        until: q.until,
        bucket_secs: q.bucket_secs,
        network: q.network.clone(),
    };
    waddleperf_engine::control::check_series(&query).map_err(IpcError::from)
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ExportFormat {
    Csv,
    Json,
}

impl From<ExportFormat> for waddleperf_engine::export::Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => waddleperf_engine::export::Format::Csv,
            ExportFormat::Json => waddleperf_engine::export::Format::Json,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
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
