//! The agent's control socket: a local, versioned API served by the one
//! process that owns the runtime (the daemon, the desktop agent), so the
//! window and the CLI ask it instead of opening the database themselves.
//!
//! Transport: a Unix domain socket, mode 0600, in the user's runtime
//! directory (`$XDG_RUNTIME_DIR`, else beside the database), named after the
//! database so several agents of one user do not meet; the agent refuses a
//! connection from another user (the kernel's peer credentials) before
//! reading a byte of it. On Windows it is a local named pipe (remote
//! clients refused) whose security descriptor gives the agent's owner and
//! SYSTEM full access and nobody else any (`pipe_security.rs`).
//!
//! Messages are JSON in length-prefixed frames (`frame.rs`), at most
//! [`MAX_REQUEST`] bytes to the agent and [`MAX_REPLY`] from it. A client
//! opens with [`Request::Hello`] naming [`VERSION`]; the agent answers with
//! [`Message::Hello`] (or refuses another version, saying both). Then each
//! [`Call`] carries an id, and its [`Message::Reply`] or [`Message::Failed`]
//! the same id; calls on one connection run side by side (a run does not
//! hold up a status). After [`Request::Subscribe`] the runtime's events
//! arrive as [`Message::Event`] between replies. A malformed or oversized
//! frame gets a `Failed` with id 0 and the connection is closed.

pub mod frame;

mod client;
#[cfg(windows)]
mod pipe_security;
mod server;

pub use client::Client;
#[cfg(any(unix, windows))]
pub use server::serve;
pub use server::{check_series, Desktop, Served, HISTORY_MAX, MAX_BUCKETS};

use crate::config::Paths;
use crate::model::TestType;
use crate::settings::Settings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The protocol version this build speaks (2: the window's calls).
pub const VERSION: u32 = 2;
/// The largest frame the agent reads (a request), and the largest a client
/// reads (a reply: a year of history fits).
pub const MAX_REQUEST: usize = 1 << 20;
pub const MAX_REPLY: usize = 64 << 20;
/// Connections the agent serves at once.
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no WaddlePerf agent is running (nothing answers at {0})")]
    NotRunning(PathBuf),
    #[error("control socket: {0}")]
    Io(#[source] std::io::Error),
    #[error("a control message of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("a control message is malformed: {0}")]
    Malformed(String),
    #[error("the agent speaks control protocol {agent}, this program {ours}: update both to one version")]
    Version { agent: u32, ours: u32 },
    #[error("{}", .0.message)]
    Agent(WireError),
    #[error("the agent closed the connection")]
    Gone,
    #[error("the control socket is not available on this system")]
    Unsupported,
}

/// An error as it crosses the socket: a kind to switch on, a sentence for
/// people and, for settings, the key that is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl WireError {
    pub fn new(kind: &str, message: impl Into<String>) -> WireError {
        WireError {
            kind: kind.to_owned(),
            message: message.into(),
            key: None,
        }
    }

    pub fn invalid(key: &str, message: impl Into<String>) -> WireError {
        WireError {
            kind: "invalid".into(),
            message: message.into(),
            key: Some(key.to_owned()),
        }
    }
}

// The kinds a client switches on: `invalid` (with the key of a setting),
// `store`, `io`, `shutting_down`, `mfa_required`, `sync`, `unsupported`,
// `internal`; on the connection itself `malformed`, `version`, `refused`,
// `busy`.
impl From<crate::runtime::RuntimeError> for WireError {
    fn from(e: crate::runtime::RuntimeError) -> Self {
        use crate::runtime::RuntimeError as R;
        match e {
            R::Config(c) => c.into(),
            R::NoBandwidthServer => {
                WireError::invalid("bandwidth", R::NoBandwidthServer.to_string())
            }
            R::Store(crate::store::StoreError::Query(m)) => WireError::new("invalid", m),
            R::Store(s) => WireError::new("store", s.to_string()),
            R::ShuttingDown => WireError::new("shutting_down", R::ShuttingDown.to_string()),
            other => WireError::new("internal", other.to_string()),
        }
    }
}

impl From<crate::config::ConfigError> for WireError {
    fn from(e: crate::config::ConfigError) -> Self {
        WireError {
            kind: "invalid".into(),
            key: e.key().map(str::to_owned),
            // Shown next to the field: no file prefix.
            message: e.field_message(),
        }
    }
}

impl From<crate::sync::SyncError> for WireError {
    fn from(e: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError as S;
        match e {
            S::Api(crate::sync::api::ApiError::MfaRequired) => WireError::new(
                "mfa_required",
                "enter the one-time code from your authenticator app",
            ),
            S::Runtime(r) => r.into(),
            other => WireError::new("sync", other.to_string()),
        }
    }
}

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        version: u32,
        /// Who is asking (`cli`, `window`): for the agent's log.
        client: String,
    },
    Status,
    /// Run the suite now (joining a run in progress); the reply is the run's
    /// summary.
    RunNow,
    RunTier {
        tier: u8,
    },
    SpeedTest,
    Pause,
    Resume,
    /// The runtime's events from now on, on this connection.
    Subscribe,
    /// The newest `limit` results (oldest first) of the range; `target`
    /// or, for several, `targets` select.
    History {
        #[serde(default)]
        target: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<String>,
        #[serde(default)]
        test_type: Option<TestType>,
        #[serde(default)]
        since: Option<DateTime<Utc>>,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
        #[serde(default)]
        limit: Option<usize>,
        /// Only results of this network (an id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    Series {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        test_type: Option<TestType>,
        metric: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    Events {
        limit: usize,
    },
    SettingsGet,
    SettingsSet {
        settings: Box<Settings>,
    },
    Account,
    SyncNow,
    RetryDead,
    Logout,
    /// The agent: version, paths, device, notes for the person.
    Info,
    /// Every target with stored results, and its test type.
    Targets,
    /// Writes the selected results to a new file in the user's Downloads
    /// folder; the reply is [`Exported`].
    Export {
        format: crate::export::Format,
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        test_type: Option<TestType>,
        #[serde(default)]
        since: Option<DateTime<Utc>>,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    /// The network the machine is on now (read again from the OS) and every
    /// network seen: [`Networks`].
    Networks,
    /// System diagnostics (`crate::diag`): the report and its text. The
    /// clock is compared with `server`, else the configured one.
    Diagnose {
        #[serde(default)]
        server: Option<String>,
    },
    /// Names a network; an empty label clears the name.
    NetworkLabel {
        id: String,
        label: String,
    },
    /// Signs in; the tokens go to the keychain of the agent's user.
    Login {
        #[serde(default)]
        server: Option<String>,
        username: String,
        password: String,
        #[serde(default)]
        mfa_code: Option<String>,
    },
    Enroll {
        #[serde(default)]
        server: Option<String>,
        org_id: i64,
        secret: String,
        #[serde(default)]
        name: Option<String>,
    },
    /// Start at login: read it, or set it when `on` is given. Only an agent
    /// with a desktop (the tray) has one.
    Autostart {
        #[serde(default)]
        on: Option<bool>,
    },
    /// Opens the window on a page (`overview`, `history`, `settings`).
    Open {
        page: String,
    },
}

/// What [`Request::Info`] answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    pub version: String,
    pub pid: u32,
    pub config_file: PathBuf,
    pub db_file: PathBuf,
    pub log_dir: PathBuf,
    /// Set when the configuration file could not be used at start (the
    /// defaults are in effect until the settings are saved).
    pub config_note: Option<String>,
    pub device_id: String,
    pub hostname: String,
    /// The agent has a desktop (tray, window); `false` for the daemon.
    pub desktop: bool,
    /// Start at login, where the agent has a desktop and can read it.
    pub autostart: Option<bool>,
}

/// What [`Request::Networks`] answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Networks {
    /// The network now; `None` when there is none (no default route) or the
    /// OS cannot say (`error`).
    pub current: Option<crate::netctx::NetworkContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub known: Vec<crate::store::KnownNetwork>,
}

/// What [`Request::Diagnose`] answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnosis {
    pub report: crate::diag::Report,
    /// The report as text, to copy into a support ticket.
    pub text: String,
}

/// What [`Request::Export`] answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exported {
    pub path: PathBuf,
    pub count: usize,
}

/// A request with the id its answer will carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    #[serde(flatten)]
    pub req: Request,
}

/// What the agent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Hello {
        version: u32,
        agent_pid: u32,
        agent_version: String,
    },
    Reply {
        id: u64,
        ok: serde_json::Value,
    },
    Failed {
        id: u64,
        error: WireError,
    },
    Event {
        event: serde_json::Value,
    },
}

/// Where the agent of `paths`' database listens: in the user's runtime
/// directory when there is one, named after the database's folder, else
/// beside the database.
pub fn socket_path(paths: &Paths) -> PathBuf {
    use sha2::Digest;
    let key = std::fs::canonicalize(&paths.data_dir).unwrap_or_else(|_| paths.data_dir.clone());
    let hash = sha2::Sha256::digest(key.to_string_lossy().as_bytes());
    let name: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    if cfg!(windows) {
        // The pipe namespace is the machine's: the user's name keeps two
        // users' agents apart.
        let user = std::env::var("USERNAME").unwrap_or_default();
        let user: String = user
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(32)
            .collect();
        return PathBuf::from(format!(r"\\.\pipe\waddleperf-{user}-{name}"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() && dir.is_dir() => {
            dir.join(format!("waddleperf-{name}.sock"))
        }
        _ => paths.data_dir.join("agent.sock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The platform's transport for real (a Unix socket; a named pipe on
    /// Windows, where its CI runs this): a call, a run's events on a
    /// subscription, a refused request, and a client that finds no agent.
    #[cfg(any(unix, windows))]
    #[tokio::test]
    async fn calls_and_events_over_the_platforms_transport(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let paths = Paths {
            config_file: dir.path().join("config.toml"),
            data_dir: dir.path().join("data"),
            db_file: dir.path().join("data").join("w.db"),
            log_dir: dir.path().join("logs"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cfg = crate::config::Config::parse(
            &format!("[[suite.tcp]]\ntarget = \"127.0.0.1:{port}\"\n"),
            "test",
        )?;
        let rt = crate::runtime::Runtime::new(crate::store::Store::open_in_memory()?, cfg);
        let syncer = crate::sync::Syncer::new(rt.clone(), &paths.data_dir);
        let path = if cfg!(windows) {
            PathBuf::from(format!(r"\\.\pipe\waddleperf-test-{}", std::process::id()))
        } else {
            dir.path().join("agent.sock")
        };
        assert!(matches!(
            Client::connect(&path, "test").await.err(),
            Some(ControlError::NotRunning(_))
        ));
        let served = serve(&path, Served::new(rt.clone(), syncer, paths)).await?;
        let mut events = Client::connect(&path, "events").await?;
        events.call(Request::Subscribe).await?;
        let mut c = Client::connect(&path, "test").await?;
        assert_eq!(c.agent_pid, std::process::id());
        let summary = c.call(Request::RunNow).await?;
        assert_eq!(
            summary["results"].as_array().map(Vec::len),
            Some(1),
            "{summary}"
        );
        let first = events.next_event().await?;
        assert_eq!(first["event"], "run_started", "{first}");
        let e = c
            .call(Request::Open {
                page: "history".into(),
            })
            .await
            .err();
        assert!(
            matches!(&e, Some(ControlError::Agent(w)) if w.kind == "unsupported"),
            "{e:?}"
        );
        let status = c.call(Request::Status).await?;
        assert_eq!(status["store"]["results"], 1, "{status}");
        rt.shutdown(std::time::Duration::from_secs(1)).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), served).await;
        Ok(())
    }

    #[test]
    fn calls_and_messages_have_one_wire_form() {
        let c: Call = serde_json::from_str(r#"{"id":3,"op":"run_tier","tier":2}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(c.req, Request::RunTier { tier: 2 }));
        assert_eq!(c.id, 3);
        let h: Call = serde_json::from_str(r#"{"id":0,"op":"history","limit":5}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(h.req, Request::History { limit: Some(5), .. }));
        assert!(serde_json::from_str::<Call>(r#"{"id":1,"op":"format_disk"}"#).is_err());
        let m = Message::Failed {
            id: 9,
            error: WireError::new("invalid", "no"),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap_or_default(),
            serde_json::json!({"type":"failed","id":9,"error":{"kind":"invalid","message":"no"}})
        );
    }
}
