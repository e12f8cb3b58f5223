//! What sync remembers in the store's `state` table: the account (never its
//! tokens, which live in the keychain), the enrollment (done once, never
//! repeated on its own), and the worker's progress and backoff.

use super::secrets::SecretStoreKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const ACCOUNT: &str = "sync.account";
pub use crate::store::ENROLLMENT;
pub const PROGRESS: &str = "sync.progress";

/// The signed-in person. The tokens are in the secret store under
/// `secret_key`; the password is never kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Account {
    pub server: String,
    pub username: String,
    pub user_id: i64,
    /// The keychain (or file) entry holding the tokens.
    pub secret_key: String,
    pub secret_store: SecretStoreKind,
    /// Why the tokens are in the 0600 file (the keychain's failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_note: Option<String>,
    pub signed_in_at: DateTime<Utc>,
    /// Set when the session ended on the server's side (refresh refused):
    /// results keep queueing until the person signs in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_out: Option<SignedOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SignedOut {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// This device's enrollment: `id` goes into every upload as `device_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Enrolled {
    pub server: String,
    pub id: i64,
    /// The server's 32-hex serial of the device.
    pub device_id: String,
    pub organization_id: i64,
    pub device_name: String,
    pub enrolled_at: DateTime<Utc>,
    /// Set when the server says the device no longer exists (deleted by an
    /// administrator): results keep queueing, none is sent or dead-lettered,
    /// until the person enrolls again (`enroll --force`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<Lost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Lost {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// The worker's progress, for `status` and for backoff across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Progress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_at: Option<DateTime<Utc>>,
    /// The last pass that reached the server and finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Passes in a row that could not reach the server (drives the backoff).
    #[serde(default)]
    pub failures: u32,
    /// No pass before this (backoff, `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default)]
    pub delivered_total: u64,
}
