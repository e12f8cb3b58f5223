//! The agent's control socket: a local, versioned API served by the one
//! process that owns the runtime (the daemon, the desktop agent), so the
//! window and the CLI ask it instead of opening the database themselves.
//!
//! Transport: a Unix domain socket, mode 0600, in the user's runtime
//! directory (`$XDG_RUNTIME_DIR`, else beside the database), named after the
//! database so several agents of one user do not meet; the agent refuses a
//! connection from another user (the kernel's peer credentials) before
//! reading a byte of it. Windows has no control socket yet: there the CLI
//! reads the shared database as before.
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

#[cfg(unix)]
mod client;
#[cfg(unix)]
mod server;

#[cfg(unix)]
pub use client::Client;
#[cfg(unix)]
pub use server::{serve, Served};

use crate::config::Paths;
use crate::model::TestType;
use crate::settings::Settings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
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
    History {
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        test_type: Option<TestType>,
        #[serde(default)]
        since: Option<DateTime<Utc>>,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
        #[serde(default)]
        limit: Option<usize>,
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
