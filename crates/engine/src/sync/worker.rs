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

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PassSummary {
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    /// Uploaded and acknowledged.
    pub delivered: u64,
    /// Of those, found already on the server after an ambiguous attempt.
    pub settled: u64,
    /// Put off to a later pass (backoff).
    pub deferred: u64,
    /// Refused by the server this pass.
    pub dead_lettered: u64,
    /// Still waiting after the pass.
    pub remaining: u64,
    /// All dead letters after the pass.
    pub dead_total: u64,
    /// Why the pass stopped early (server unreachable, 5xx, 429...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// No pass before this (backoff).
    #[serde(
        with = "crate::model::opt_rfc3339_utc",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// For `status`: account, enrollment, progress and backlog.
#[derive(Debug, Clone, Serialize)]
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

/// The tokens of a pass, refreshed at most once per stale token.
struct Session {
    api: Api,
    tokens: Mutex<Tokens>,
    changed: std::sync::atomic::AtomicBool,
}

impl Session {
    async fn access(&self) -> String {
        self.tokens.lock().await.access_token.clone()
    }

    /// A fresh access token unless another task already replaced `stale`.
    async fn refresh_after(&self, stale: &str) -> Result<String, ApiError> {
        let mut t = self.tokens.lock().await;
        if t.access_token != stale {
            return Ok(t.access_token.clone());
        }
        let fresh = self.api.refresh(&t.refresh_token).await?;
        t.access_token = fresh.clone();
        self.changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(fresh)
    }

    /// Runs a call with the access token; on 401, refreshes once and
    /// retries once.
    async fn authed<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let token = self.access().await;
        match f(token.clone()).await {
            Err(ApiError::Unauthorized { .. }) => {
                let fresh = self.refresh_after(&token).await?;
                f(fresh).await
            }
            other => other,
        }
    }
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

/// Why a pass stops dispatching.
enum Stop {
    Transient(ApiError, Option<Duration>),
    SignedOut(String),
    /// The server no longer knows this device.
    DeviceGone(String),
    Closing,
}

/// The running state of one pass.
struct Pass {
    summary: PassSummary,
    /// The device's test_ids on the server, read once when first needed.
    readback: Option<HashSet<String>>,
    stop: Option<Stop>,
    /// The longest backoff (`backoff_max_minutes`).
    cap: Duration,
    /// Whether the server still knows this device, asked once per pass
    /// when it first refuses a result.
    device_known: Option<bool>,
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

    pub async fn account(&self) -> Result<Option<Account>, SyncError> {
        self.load(ACCOUNT).await
    }

    pub async fn enrollment(&self) -> Result<Option<Enrolled>, SyncError> {
        self.load(ENROLLMENT).await
    }

    /// The server to sign in to: given, else the configured one, else the
    /// one this device is enrolled with or was signed in to.
    async fn server_for(&self, given: Option<&str>) -> Result<String, SyncError> {
        if let Some(s) = given {
            return Ok(s.trim().to_owned());
        }
        if let Some(s) = self.rt.config().sync.server {
            return Ok(s);
        }
        if let Some(e) = self.enrollment().await? {
            return Ok(e.server);
        }
        if let Some(a) = self.account().await? {
            return Ok(a.server);
        }
        Err(SyncError::NoServer)
    }

    /// Signs in. `Err(Api(MfaRequired))` asks for a code: call again with it.
    pub async fn login(
        &self,
        server: Option<&str>,
        username: &str,
        password: &str,
        mfa_code: Option<&str>,
    ) -> Result<Account, SyncError> {
        let server = self.server_for(server).await?;
        let api = self.api(&server)?;
        if let Some(e) = self.enrollment().await? {
            if !same_server(&e.server, &server) {
                return Err(SyncError::ServerMismatch {
                    enrolled: e.server,
                    signed_in: server,
                });
            }
        }
        let tokens = api.login(username, password, mfa_code).await?;
        let previous = self.account().await?;
        let key = format!("session-{}", uuid::Uuid::now_v7());
        let pref = self.rt.config().sync.secret_store;
        let saved = self.secrets.save(&key, &tokens, pref).await?;
        let account = Account {
            server: api.base().as_str().trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            user_id: tokens.user_id,
            secret_key: key,
            secret_store: saved.kind,
            secret_note: saved.note,
            signed_in_at: Utc::now(),
            signed_out: None,
        };
        self.save(ACCOUNT, account.clone()).await?;
        if let Some(old) = previous {
            if let Err(e) = self.secrets.delete(&old.secret_key, old.secret_store).await {
                tracing::warn!("the previous session's tokens could not be removed: {e}");
            }
        }
        // Results that waited for a sign-in can go now.
        self.save(
            PROGRESS,
            Progress {
                not_before: None,
                failures: 0,
                ..self.progress().await?
            },
        )
        .await?;
        self.sync_soon();
        Ok(account)
    }

    /// Signs out: the server revokes the refresh tokens (best effort when it
    /// cannot be reached), the tokens are forgotten here. The enrollment and
    /// the queue stay.
    pub async fn logout(&self) -> Result<Option<Account>, SyncError> {
        let Some(account) = self.account().await? else {
            return Ok(None);
        };
        match self
            .secrets
            .load(&account.secret_key, account.secret_store)
            .await
        {
            Ok(Some(t)) if account.signed_out.is_none() => {
                if let Err(e) = self.api(&account.server)?.logout(&t.access_token).await {
                    tracing::warn!("the server did not confirm the sign-out: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("the saved session could not be read: {e}"),
        }
        self.secrets
            .delete(&account.secret_key, account.secret_store)
            .await?;
        self.rt.with_store(|s| s.state_delete(ACCOUNT)).await?;
        Ok(Some(account))
    }

    /// Enrolls this device once with an organization's enrollment secret.
    pub async fn enroll(
        &self,
        server: Option<&str>,
        org_id: i64,
        secret: &str,
        name: Option<&str>,
        force: bool,
    ) -> Result<Enrolled, SyncError> {
        if let Some(e) = self.enrollment().await? {
            // A device the server has lost can enroll again: no duplicate.
            if !force && e.lost.is_none() {
                return Err(SyncError::AlreadyEnrolled {
                    server: e.server,
                    id: e.id,
                    organization_id: e.organization_id,
                });
            }
        }
        let account = self.account().await?;
        let server = match (server, &account) {
            (Some(s), _) => s.trim().to_owned(),
            (None, Some(a)) => a.server.clone(),
            (None, None) => self.server_for(None).await?,
        };
        let api = self.api(&server)?;
        let device = DeviceInfo::detect();
        let device_name = name.map_or_else(|| device.hostname.clone(), str::to_owned);
        let req = EnrollRequest {
            enrollment_secret: secret.to_owned(),
            org_id,
            device_name: device_name.clone(),
            device_type: "desktop".into(),
            os_type: std::env::consts::OS.to_owned(),
            os_version: format!("{} {}", device.os, device.os_version),
            hardware_id: device.device_id.clone(),
            device_metadata: serde_json::json!({
                "client": crate::version::client(),
                "client_version": crate::version::VERSION,
                "arch": device.arch,
            }),
        };
        let access = match &account {
            Some(a) if a.signed_out.is_none() && same_server(&a.server, &server) => self
                .secrets
                .load(&a.secret_key, a.secret_store)
                .await?
                .map(|t| t.access_token),
            _ => None,
        };
        let e = api.enroll(access.as_deref(), &req).await?;
        let enrolled = Enrolled {
            server: api.base().as_str().trim_end_matches('/').to_owned(),
            id: e.id,
            device_id: e.device_id,
            organization_id: e.organization_id,
            device_name,
            enrolled_at: Utc::now(),
            lost: None,
        };
        self.save(ENROLLMENT, enrolled.clone()).await?;
        // Results that waited for an enrollment can go now.
        self.save(
            PROGRESS,
            Progress {
                not_before: None,
                failures: 0,
                last_error: None,
                ..self.progress().await?
            },
        )
        .await?;
        self.sync_soon();
        Ok(enrolled)
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

    /// The dead letters, oldest result first.
    pub async fn dead_letters(&self) -> Result<Vec<crate::store::DeadLetter>, SyncError> {
        Ok(self.rt.with_store(|s| s.dead_letters()).await?)
    }

    /// Puts dead letters back in the queue (all, or those listed).
    pub async fn retry_dead(&self, ids: Option<Vec<uuid::Uuid>>) -> Result<usize, SyncError> {
        let n = self
            .rt
            .with_store(move |s| s.retry_dead(ids.as_deref(), Utc::now()))
            .await?;
        self.sync_soon();
        Ok(n)
    }

    /// Holds the per-database sync lock (waiting for another process's pass
    /// to end).
    async fn lock(&self) -> Result<std::fs::File, SyncError> {
        let path = self.lock_path.clone();
        let err = |message: String| SyncError::Lock {
            path: self.lock_path.clone(),
            message,
        };
        tokio::task::spawn_blocking(move || {
            crate::fsutil::create_private_file(&path)?;
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.lock()?;
            Ok::<_, std::io::Error>(f)
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(|e| err(e.to_string()))
    }

    /// One pass: everything due at `now` goes up, in order, or backs off.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<PassSummary, SyncError> {
        self.pass_until(now, now).await
    }

    /// A pass asked for by the user (`waddleperf sync`, "Sync now"): every
    /// waiting result is tried, including those still backing off.
    pub async fn pass_all(&self, now: DateTime<Utc>) -> Result<PassSummary, SyncError> {
        self.pass_until(now, DateTime::<Utc>::MAX_UTC).await
    }

    async fn pass_until(
        &self,
        now: DateTime<Utc>,
        due_by: DateTime<Utc>,
    ) -> Result<PassSummary, SyncError> {
        let cfg = self.rt.config().sync;
        if !cfg.enabled {
            return Err(SyncError::Disabled);
        }
        let snap = self.snapshot().await?;
        let account = snap.account.ok_or(SyncError::NotSignedIn)?;
        if let Some(so) = &account.signed_out {
            return Err(SyncError::SignedOut {
                server: account.server.clone(),
                reason: so.reason.clone(),
            });
        }
        let enrolled = snap.enrollment.ok_or(SyncError::NotEnrolled)?;
        if let Some(lost) = &enrolled.lost {
            return Err(SyncError::EnrollmentLost {
                server: enrolled.server.clone(),
                id: enrolled.id,
                reason: lost.reason.clone(),
            });
        }
        if !same_server(&enrolled.server, &account.server) {
            return Err(SyncError::ServerMismatch {
                enrolled: enrolled.server,
                signed_in: account.server,
            });
        }
        let _lock = self.lock().await?;
        let tokens = match self
            .secrets
            .load(&account.secret_key, account.secret_store)
            .await?
        {
            Some(t) => t,
            None => {
                let reason = "the saved session is gone from the secret store".to_owned();
                self.sign_out(&account, &reason).await?;
                return Err(SyncError::SignedOut {
                    server: account.server,
                    reason,
                });
            }
        };
        let session = Arc::new(Session {
            api: self.api(&account.server)?,
            tokens: Mutex::new(tokens),
            changed: Default::default(),
        });
        let pending = self.rt.with_store(|s| s.stats()).await?.outbox_pending;
        self.rt.emit(Event::SyncStarted { pending });
        let mut pass = Pass {
            summary: PassSummary {
                started_at: now,
                ..PassSummary::default()
            },
            readback: None,
            stop: None,
            cap: Duration::from_secs(u64::from(cfg.backoff_max_minutes) * 60),
            device_known: None,
        };
        match session.api.health().await {
            Ok(h) if h.status == "healthy" => {
                self.refresh_ahead(&session, &mut pass).await;
                if pass.stop.is_none() {
                    self.drain(&session, &enrolled, now, due_by, &mut pass, cfg.concurrency)
                        .await?;
                }
            }
            Ok(h) => {
                pass.stop = Some(Stop::Transient(
                    ApiError::Server {
                        url: format!("{}health", session.api.base()),
                        status: 200,
                        message: format!("the server reports itself {}", h.status),
                    },
                    None,
                ))
            }
            Err(e) => pass.stop = Some(Stop::Transient(e, None)),
        }
        if session.changed.load(std::sync::atomic::Ordering::Relaxed) {
            let t = session.tokens.lock().await.clone();
            let pref = match account.secret_store {
                SecretStoreKind::Keychain => SecretPreference::Keychain,
                SecretStoreKind::File => SecretPreference::File,
            };
            if let Err(e) = self.secrets.save(&account.secret_key, &t, pref).await {
                tracing::warn!("the refreshed session could not be saved: {e}");
            }
        }
        let reached = matches!(pass.stop, None | Some(Stop::Closing));
        if reached {
            let id = enrolled.id;
            let hb = session
                .authed(|t| {
                    let api = session.api.clone();
                    async move { api.heartbeat(Some(&t), id, Some(now)).await }
                })
                .await;
            match hb {
                Ok(()) => {}
                Err(ApiError::DeviceGone { message, .. }) => {
                    pass.stop = Some(Stop::DeviceGone(message));
                }
                Err(e) => tracing::warn!("heartbeat not accepted: {e}"),
            }
        }
        self.finish(now, &account, &enrolled, pass).await
    }

    /// Refreshes the access token before it expires.
    async fn refresh_ahead(&self, session: &Session, pass: &mut Pass) {
        let access = session.access().await;
        let expiring = jwt_expiry(&access).is_some_and(|exp| exp - Utc::now() < REFRESH_AHEAD);
        if !expiring {
            return;
        }
        if let Err(e) = session.refresh_after(&access).await {
            pass.stop = Some(match e {
                ApiError::Unauthorized { message } | ApiError::Refused { message, .. } => {
                    Stop::SignedOut(message)
                }
                other => Stop::Transient(other, None),
            });
        }
    }

    /// Uploads the due rows in order, a few at a time.
    async fn drain(
        &self,
        session: &Arc<Session>,
        enrolled: &Enrolled,
        now: DateTime<Utc>,
        due_by: DateTime<Utc>,
        pass: &mut Pass,
        concurrency: u32,
    ) -> Result<(), SyncError> {
        let to = Destination {
            organization_id: enrolled.organization_id,
            device_id: enrolled.id,
        };
        let limit = concurrency.max(1) as usize;
        loop {
            let batch = self
                .rt
                .with_store(move |s| s.outbox_due(due_by, BATCH))
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut inflight = JoinSet::new();
            for item in batch {
                // A free slot, and every finished upload settled first, so a
                // stop (server down, signed out) is seen before the next one.
                while inflight.len() >= limit {
                    if let Some(done) = inflight.join_next().await {
                        self.settle(session, enrolled, now, pass, done).await?;
                    }
                }
                while let Some(done) = inflight.try_join_next() {
                    self.settle(session, enrolled, now, pass, done).await?;
                }
                if self.rt.is_closing() {
                    pass.stop.get_or_insert(Stop::Closing);
                }
                if pass.stop.is_some() {
                    break;
                }
                let id = item.result.id;
                self.rt.with_store(move |s| s.outbox_attempt(&id)).await?;
                let body = upload_body(&item.result, to);
                let session = Arc::clone(session);
                inflight.spawn(async move {
                    let r = session
                        .authed(|t| {
                            let (api, body) = (session.api.clone(), &body);
                            async move { api.upload(Some(&t), body).await }
                        })
                        .await;
                    (item, r)
                });
            }
            while let Some(done) = inflight.join_next().await {
                self.settle(session, enrolled, now, pass, done).await?;
            }
            if pass.stop.is_some() {
                return Ok(());
            }
            let remaining = self.rt.with_store(|s| s.stats()).await?.outbox_pending;
            self.rt.emit(Event::SyncProgress {
                delivered: pass.summary.delivered,
                remaining,
            });
        }
    }

    /// Applies one upload's outcome to the store.
    async fn settle(
        &self,
        session: &Session,
        enrolled: &Enrolled,
        now: DateTime<Utc>,
        pass: &mut Pass,
        done: Result<(OutboxItem, Result<(), ApiError>), tokio::task::JoinError>,
    ) -> Result<(), SyncError> {
        let (item, outcome) = done.map_err(|e| RuntimeError::Task(e.to_string()))?;
        let id = item.result.id;
        match outcome {
            Ok(()) => {
                self.rt.with_store(move |s| s.outbox_delivered(&id)).await?;
                pass.summary.delivered += 1;
            }
            Err(ApiError::Unauthorized { message }) => {
                // The server did not take it: not ambiguous, no backoff.
                let uncertain = item.uncertain;
                self.rt
                    .with_store(move |s| s.outbox_defer(&id, now, "signed out", uncertain))
                    .await?;
                pass.stop.get_or_insert(Stop::SignedOut(message));
            }
            Err(ApiError::Refused { status, message }) => {
                let on_server = if item.uncertain {
                    self.on_server(session, enrolled, pass, &id).await?
                } else {
                    Some(false)
                };
                match on_server {
                    Some(true) => {
                        self.rt.with_store(move |s| s.outbox_delivered(&id)).await?;
                        pass.summary.delivered += 1;
                        pass.summary.settled += 1;
                        tracing::info!(
                            "result {id} was already on the server (an earlier attempt got through)"
                        );
                    }
                    Some(false) if !self.device_known(session, enrolled, pass).await => {
                        // Refused because the device is gone: kept, not dead.
                        let uncertain = item.uncertain;
                        self.rt
                            .with_store(move |s| {
                                s.outbox_defer(&id, now, "device unknown to the server", uncertain)
                            })
                            .await?;
                    }
                    Some(false) => {
                        let error = format!("{status}: {message}");
                        tracing::warn!("result {id} refused by the server: {error}");
                        self.rt
                            .with_store(move |s| s.outbox_dead(&id, &error))
                            .await?;
                        pass.summary.dead_lettered += 1;
                    }
                    // Could not read back: deferred, still ambiguous.
                    None => {}
                }
            }
            Err(e) if e.is_transient() => {
                let retry_after = match &e {
                    ApiError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                let wait = wait_after(item.attempts + 1, pass.cap, retry_after);
                let next = later(now, wait);
                let uncertain = item.uncertain || e.maybe_received();
                let msg = e.to_string();
                self.rt
                    .with_store(move |s| s.outbox_defer(&id, next, &msg, uncertain))
                    .await?;
                pass.summary.deferred += 1;
                pass.stop.get_or_insert(Stop::Transient(e, retry_after));
            }
            Err(e) => {
                let uncertain = item.uncertain;
                let msg = e.to_string();
                self.rt
                    .with_store(move |s| s.outbox_defer(&id, now, &msg, uncertain))
                    .await?;
                pass.stop.get_or_insert(Stop::Transient(e, None));
            }
        }
        Ok(())
    }

    /// Whether the server already holds `id` (reading the device's results
    /// back once per pass); `None` when it could not be read back (the row
    /// is deferred, still ambiguous).
    async fn on_server(
        &self,
        session: &Session,
        enrolled: &Enrolled,
        pass: &mut Pass,
        id: &uuid::Uuid,
    ) -> Result<Option<bool>, SyncError> {
        if pass.readback.is_none() {
            let mut ids = HashSet::new();
            for page in 0..READBACK_PAGES {
                let (org, dev) = (enrolled.organization_id, enrolled.id);
                let rows = session
                    .authed(|t| {
                        let api = session.api.clone();
                        async move { api.list_test_ids(Some(&t), org, dev, 100, page * 100).await }
                    })
                    .await;
                match rows {
                    Ok(rows) => {
                        let last = rows.len() < 100;
                        ids.extend(rows);
                        if last || ids.contains(&id.to_string()) {
                            break;
                        }
                    }
                    Err(e) => {
                        // Cannot settle now: keep the row ambiguous, retry later.
                        let msg = format!("could not read results back: {e}");
                        let next = later(Utc::now(), BACKOFF_BASE);
                        let id = *id;
                        self.rt
                            .with_store(move |s| s.outbox_defer(&id, next, &msg, true))
                            .await?;
                        pass.summary.deferred += 1;
                        pass.stop.get_or_insert(Stop::Transient(e, None));
                        return Ok(None);
                    }
                }
            }
            pass.readback = Some(ids);
        }
        Ok(Some(
            pass.readback
                .as_ref()
                .is_some_and(|ids| ids.contains(&id.to_string())),
        ))
    }

    /// Whether the server still knows this device (asked once per pass,
    /// by a heartbeat); a failure to ask counts as "known", so the refusal
    /// stands as the server gave it.
    async fn device_known(&self, session: &Session, enrolled: &Enrolled, pass: &mut Pass) -> bool {
        if let Some(known) = pass.device_known {
            return known;
        }
        let id = enrolled.id;
        let hb = session
            .authed(|t| {
                let api = session.api.clone();
                async move { api.heartbeat(Some(&t), id, None).await }
            })
            .await;
        let known = match hb {
            Err(ApiError::DeviceGone { message, .. }) => {
                pass.stop.get_or_insert(Stop::DeviceGone(message));
                false
            }
            _ => true,
        };
        pass.device_known = Some(known);
        known
    }

    /// Marks the enrollment lost: nothing is sent until the person enrolls
    /// again, and they are told.
    async fn lose_enrollment(&self, enrolled: &Enrolled, reason: &str) -> Result<(), SyncError> {
        let mut e = enrolled.clone();
        e.lost = Some(Lost {
            at: Utc::now(),
            reason: reason.to_owned(),
        });
        self.save(ENROLLMENT, e).await?;
        tracing::warn!(
            "device {} is no longer enrolled with {}: {reason}",
            enrolled.id,
            enrolled.server
        );
        self.rt.emit(Event::EnrollmentLost {
            message: format!(
                "the server {} no longer knows this device ({reason}). Results are kept and will upload after you enroll again (`waddleperf enroll --force`, or Settings > Account)",
                enrolled.server
            ),
        });
        Ok(())
    }

    async fn sign_out(&self, account: &Account, reason: &str) -> Result<(), SyncError> {
        let mut a = account.clone();
        a.signed_out = Some(SignedOut {
            at: Utc::now(),
            reason: reason.to_owned(),
        });
        self.save(ACCOUNT, a).await?;
        if let Err(e) = self
            .secrets
            .delete(&account.secret_key, account.secret_store)
            .await
        {
            tracing::warn!("the ended session's tokens could not be removed: {e}");
        }
        tracing::warn!("signed out of {}: {reason}", account.server);
        self.rt.emit(Event::SignedOut {
            message: format!(
                "signed out of {}: {reason}. Results are kept and will upload after you sign in again",
                account.server
            ),
        });
        Ok(())
    }

    /// Records the pass's outcome and backoff; reports it.
    async fn finish(
        &self,
        now: DateTime<Utc>,
        account: &Account,
        enrolled: &Enrolled,
        mut pass: Pass,
    ) -> Result<PassSummary, SyncError> {
        let mut progress = self.progress().await?;
        progress.last_pass_at = Some(now);
        progress.delivered_total += pass.summary.delivered;
        let mut signed_out = None;
        let mut device_gone = None;
        match pass.stop.take() {
            Some(Stop::Transient(e, retry_after)) => {
                progress.failures = progress.failures.saturating_add(1);
                let wait = wait_after(progress.failures, pass.cap, retry_after);
                progress.not_before = Some(later(now, wait));
                progress.last_error = Some(e.to_string());
                pass.summary.error = Some(e.to_string());
                pass.summary.next_attempt_at = progress.not_before;
            }
            Some(Stop::SignedOut(reason)) => {
                progress.last_error = Some(format!("signed out: {reason}"));
                signed_out = Some(reason);
            }
            Some(Stop::DeviceGone(reason)) => {
                progress.last_error = Some(format!("device no longer enrolled: {reason}"));
                pass.summary.error = progress.last_error.clone();
                device_gone = Some(reason);
            }
            Some(Stop::Closing) | None => {
                progress.failures = 0;
                progress.not_before = None;
                progress.last_error = None;
                progress.last_success_at = Some(now);
            }
        }
        self.save(PROGRESS, progress).await?;
        let stats = self.rt.with_store(|s| s.stats()).await?;
        pass.summary.remaining = stats.outbox_pending;
        pass.summary.dead_total = stats.outbox_dead;
        if pass.summary.next_attempt_at.is_none() && stats.outbox_pending > 0 {
            pass.summary.next_attempt_at = self.rt.with_store(|s| s.outbox_next_due()).await?;
        }
        self.rt.emit(Event::SyncFinished {
            summary: pass.summary.clone(),
        });
        if let Some(reason) = signed_out {
            self.sign_out(account, &reason).await?;
            return Err(SyncError::SignedOut {
                server: account.server.clone(),
                reason,
            });
        }
        if let Some(reason) = device_gone {
            self.lose_enrollment(enrolled, &reason).await?;
            return Err(SyncError::EnrollmentLost {
                server: enrolled.server.clone(),
                id: enrolled.id,
                reason,
            });
        }
        Ok(pass.summary)
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

/// Whether two server URLs name the same server (trailing slashes aside).
fn same_server(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
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
