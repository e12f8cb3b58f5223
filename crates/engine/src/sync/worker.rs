//! The sync worker: signs in, enrolls, and drains the outbox to the unified
//! API. Rules (`shared/reference/unified-api.md`, "Delivery rules"):
//! - results go in the order they were measured, a few in flight at once;
//! - every attempt is marked in the store before its request leaves, so an
//!   attempt cut short (dropped connection, killed process) is known to be
//!   ambiguous; the server answers a duplicate with the same generic 400 as
//!   any refusal, so such a 400 is settled by reading the device's results
//!   back: found means delivered;
//! - network errors, 5xx and 429 back off exponentially with full jitter,
//!   honouring `Retry-After`; other refusals become dead letters with the
//!   server's message, retryable;
//! - a 401 refreshes the session once and retries once; a refused refresh
//!   ends the session ("signed out") and results keep queueing.
//!
//! One pass at a time per database (an OS file lock), so the CLI's
//! `waddleperf sync` and a running agent never send the same row at once.

use super::api::{jwt_expiry, Api, ApiError, EnrollRequest, Tokens};
use super::payload::{upload_body, Destination};
use super::secrets::{SecretError, SecretPreference, SecretStoreKind, Secrets};
use super::state::{Account, Enrolled, Lost, Progress, SignedOut, ACCOUNT, ENROLLMENT, PROGRESS};
use crate::device::DeviceInfo;
use crate::runtime::{Event, Runtime, RuntimeError};
use crate::schedule::Clock;
use crate::store::{OutboxItem, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;

mod account;
mod pass;

#[cfg(test)]
use account::same_server;

/// Results fetched from the outbox at a time.
const BATCH: usize = 64;
/// The first retry waits up to this long; each further one doubles it.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Refresh the access token when it has less than this left.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(10);
/// Read-back pages (of 100) searched to settle an ambiguous duplicate.
const READBACK_PAGES: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync is turned off (`[sync] enabled = false`)")]
    Disabled,
    #[error("no server given: pass --server URL or set `[sync] server` in the configuration")]
    NoServer,
    #[error("not signed in: run `waddleperf login`")]
    NotSignedIn,
    #[error("signed out of {server}: {reason}; results keep queueing here, run `waddleperf login` to resume")]
    SignedOut { server: String, reason: String },
    #[error("this device is not enrolled: run `waddleperf enroll --org ID --secret SECRET`")]
    NotEnrolled,
    #[error("this device (id {id}) is no longer enrolled with {server}: {reason}; results keep queueing here (none is lost), run `waddleperf enroll --force --org ID --secret SECRET` to enroll it again")]
    EnrollmentLost {
        server: String,
        id: i64,
        reason: String,
    },
    #[error("this device is already enrolled with {server} as device {id} of organization {organization_id}; enrolling again creates a second device on the server (use --force if that is what you want)")]
    AlreadyEnrolled {
        server: String,
        id: i64,
        organization_id: i64,
    },
    #[error("enrolled with {enrolled} but signed in to {signed_in}: sign in to the server this device is enrolled with")]
    ServerMismatch { enrolled: String, signed_in: String },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("sync lock {path}: {message}")]
    Lock { path: PathBuf, message: String },
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Runtime(RuntimeError::from(e))
    }
}

pub use crate::runtime::PassSummary;

/// For `status`: account, enrollment, progress and backlog.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SyncStatus {
    pub enabled: bool,
    pub account: Option<Account>,
    /// Where the fallback file is, when the tokens are there.
    pub secrets_file: Option<PathBuf>,
    pub enrollment: Option<Enrolled>,
    pub progress: Progress,
    pub pending: u64,
    pub dead: u64,
}

/// Exponential backoff with full jitter: a random wait up to
/// `BACKOFF_BASE × 2^(attempt-1)`, capped, at least one second.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cap).max(Duration::from_secs(1));
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(1000.min(ms)..=ms))
}

/// `t` plus `d`, saturating at the end of time instead of overflowing.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The wait after a failure: the backoff, or the server's `Retry-After` when
/// longer, never past the backoff cap.
fn wait_after(attempt: u32, cap: Duration, retry_after: Option<Duration>) -> Duration {
    let cap = cap.max(Duration::from_secs(1));
    backoff(attempt, cap).max(retry_after.unwrap_or_default().min(cap))
}

/// The sync side of one runtime. Cheap to clone.
#[derive(Clone)]
pub struct Syncer {
    rt: Runtime,
    secrets: Secrets,
    lock_path: PathBuf,
    wake: Arc<Notify>,
}

/// What sync keeps in the store.
struct Snapshot {
    account: Option<Account>,
    enrollment: Option<Enrolled>,
    progress: Progress,
    /// The earliest deferred row's next attempt.
    next_due: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// Signed in (and not signed out) and enrolled (and not lost).
    fn ready(&self) -> bool {
        self.account
            .as_ref()
            .is_some_and(|a| a.signed_out.is_none())
            && self.enrollment.as_ref().is_some_and(|e| e.lost.is_none())
    }

    /// See [`Syncer::next_pass_at`].
    fn next_pass_at(&self, now: DateTime<Utc>, interval_minutes: u32) -> DateTime<Utc> {
        let interval = chrono::Duration::minutes(i64::from(interval_minutes));
        let mut at = self.progress.last_pass_at.map_or(now, |t| t + interval);
        if let Some(due) = self.next_due {
            at = at.min(due);
        }
        if let Some(nb) = self.progress.not_before {
            at = at.max(nb);
        }
        at
    }
}

impl Syncer {
    pub fn new(rt: Runtime, data_dir: &Path) -> Syncer {
        Syncer {
            rt,
            secrets: Secrets::new(data_dir),
            lock_path: data_dir.join("sync.lock"),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Asks the worker loop for a pass now.
    pub fn sync_soon(&self) {
        self.wake.notify_one();
    }

    fn api(&self, server: &str) -> Result<Api, SyncError> {
        let cfg = self.rt.config().sync;
        Ok(Api::new(server, cfg.ca_file.as_deref())?)
    }

    async fn load<T>(&self, key: &'static str) -> Result<Option<T>, SyncError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        Ok(self.rt.with_store(move |s| s.state_get::<T>(key)).await?)
    }

    async fn save<T>(&self, key: &'static str, v: T) -> Result<(), SyncError>
    where
        T: Serialize + Send + 'static,
    {
        Ok(self.rt.with_store(move |s| s.state_set(key, &v)).await?)
    }

    pub async fn progress(&self) -> Result<Progress, SyncError> {
        Ok(self.load(PROGRESS).await?.unwrap_or_default())
    }

    /// Everything sync keeps in the store, read in one trip.
    async fn snapshot(&self) -> Result<Snapshot, SyncError> {
        Ok(self
            .rt
            .with_store(|s| {
                Ok(Snapshot {
                    account: s.state_get(ACCOUNT)?,
                    enrollment: s.state_get(ENROLLMENT)?,
                    progress: s.state_get(PROGRESS)?.unwrap_or_default(),
                    next_due: s.outbox_next_due()?,
                })
            })
            .await?)
    }

    pub async fn status(&self) -> Result<SyncStatus, SyncError> {
        let snap = self.snapshot().await?;
        let secrets_file = snap
            .account
            .as_ref()
            .filter(|a| a.secret_store == SecretStoreKind::File)
            .map(|_| self.secrets.file_path().to_owned());
        let stats = self.rt.with_store(|s| s.stats()).await?;
        Ok(SyncStatus {
            enabled: self.rt.config().sync.enabled,
            account: snap.account,
            secrets_file,
            enrollment: snap.enrollment,
            progress: snap.progress,
            pending: stats.outbox_pending,
            dead: stats.outbox_dead,
        })
    }

    /// When the worker should pass next, by the wall clock: at once after a
    /// sign-in or enrollment (`sync_soon`), after a run (plus a random spread),
    /// when a deferred row falls due, and every `interval_minutes`; never
    /// before the backoff allows.
    pub async fn next_pass_at(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, SyncError> {
        let interval = self.rt.config().sync.interval_minutes;
        Ok(self.snapshot().await?.next_pass_at(now, interval))
    }

    /// The worker loop until the runtime shuts down.
    pub async fn run(self, clock: Arc<dyn Clock>) {
        /// The longest sleep, so a wall-clock jump (sleep, resume) is noticed.
        const TICK: Duration = Duration::from_secs(60);
        let mut events = self.rt.subscribe();
        let mut soon: Option<DateTime<Utc>> = None;
        loop {
            if self.rt.is_closing() {
                return;
            }
            let now = clock.now();
            let cfg = self.rt.config().sync;
            let (ready, due) = match self.snapshot().await {
                Ok(snap) if cfg.enabled && snap.ready() => {
                    let mut at = snap.next_pass_at(now, cfg.interval_minutes);
                    if let Some(s) = soon {
                        let nb = snap.progress.not_before;
                        at = at.min(nb.map_or(s, |nb| s.max(nb)));
                    }
                    (true, at)
                }
                Ok(_) => (false, now + chrono::Duration::minutes(1)),
                Err(e) => {
                    tracing::error!("sync: {e}");
                    (false, now + chrono::Duration::minutes(1))
                }
            };
            if ready && due <= now {
                soon = None;
                match self.pass(now).await {
                    Ok(s) if s.error.is_some() => tracing::warn!(
                        "sync: delivered {}, {} waiting; {}",
                        s.delivered,
                        s.remaining,
                        s.error.as_deref().unwrap_or_default()
                    ),
                    Ok(s) => tracing::info!(
                        "sync: delivered {} ({} already there), {} waiting, {} dead letters",
                        s.delivered,
                        s.settled,
                        s.remaining,
                        s.dead_total
                    ),
                    Err(e) => tracing::warn!("sync: {e}"),
                }
                continue;
            }
            let wait = (due - now).to_std().unwrap_or(Duration::ZERO).min(TICK);
            tokio::select! {
                _ = self.rt.closed() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => soon = Some(clock.now()),
                ev = events.recv() => match ev {
                    Ok(Event::RunFinished { .. }) => {
                        let delay = fastrand::u32(0..=cfg.spread_seconds);
                        let at = clock.now() + chrono::Duration::seconds(i64::from(delay));
                        soon = Some(soon.map_or(at, |s| s.min(at)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
            }
        }
    }
}

/// Starts the worker on the runtime's tokio runtime.
pub fn spawn(syncer: Syncer, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(syncer.run(clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_full_jitter_and_is_capped() {
        let cap = Duration::from_secs(3600);
        for attempt in 1..30 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(cap);
            for _ in 0..50 {
                let d = backoff(attempt, cap);
                assert!(
                    d >= Duration::from_secs(1) && d <= ceiling,
                    "{attempt}: {d:?}"
                );
            }
        }
        // Full jitter: the waits of one attempt spread over the range.
        let waits: Vec<_> = (0..200).map(|_| backoff(8, cap)).collect();
        let lo = waits.iter().filter(|d| d.as_secs() < 1200).count();
        let hi = waits.iter().filter(|d| d.as_secs() > 2400).count();
        assert!(lo > 20 && hi > 20, "{lo} low, {hi} high");
    }

    #[test]
    fn waits_never_overflow_and_honour_the_cap() {
        let cap = Duration::from_secs(3600);
        let huge = Some(Duration::from_secs(u64::MAX));
        for attempt in [0, 1, 5, u32::MAX] {
            let w = wait_after(attempt, cap, huge);
            assert_eq!(w, cap, "{attempt}");
            assert!(later(Utc::now(), w) > Utc::now());
        }
        assert_eq!(
            later(Utc::now(), Duration::from_secs(u64::MAX)),
            DateTime::<Utc>::MAX_UTC
        );
        // A short Retry-After is honoured when longer than the backoff.
        let w = wait_after(1, cap, Some(Duration::from_secs(120)));
        assert!(w >= Duration::from_secs(120));
    }

    #[test]
    fn servers_compare_without_trailing_slash() {
        assert!(same_server("http://a:1/", "http://a:1"));
        assert!(!same_server("http://a:1", "http://b:1"));
    }
}
