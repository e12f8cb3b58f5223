//! One pass: the session, draining the outbox in measured order, settling
//! ambiguous attempts by reading back, and the summary.

use super::account::same_server;
use super::*;

/// The tokens of a pass, refreshed at most once per stale token.
pub(super) struct Session {
    pub(super) api: Api,
    pub(super) tokens: Mutex<Tokens>,
    pub(super) changed: std::sync::atomic::AtomicBool,
}

impl Session {
    pub(super) async fn access(&self) -> String {
        self.tokens.lock().await.access_token.clone()
    }

    /// A fresh access token unless another task already replaced `stale`.
    pub(super) async fn refresh_after(&self, stale: &str) -> Result<String, ApiError> {
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
    pub(super) async fn authed<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
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

/// Why a pass stops dispatching.
pub(super) enum Stop {
    Transient(ApiError, Option<Duration>),
    SignedOut(String),
    /// The server no longer knows this device.
    DeviceGone(String),
    Closing,
}

/// The running state of one pass.
pub(super) struct Pass {
    pub(super) summary: PassSummary,
    /// The device's test_ids on the server, read once when first needed.
    pub(super) readback: Option<HashSet<String>>,
    pub(super) stop: Option<Stop>,
    /// The longest backoff (`backoff_max_minutes`).
    pub(super) cap: Duration,
    /// Whether the server still knows this device, asked once per pass
    /// when it first refuses a result.
    pub(super) device_known: Option<bool>,
}

impl Syncer {
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
    pub(super) async fn lock(&self) -> Result<std::fs::File, SyncError> {
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

    pub(super) async fn pass_until(
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
    pub(super) async fn refresh_ahead(&self, session: &Session, pass: &mut Pass) {
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
    pub(super) async fn drain(
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
        let sharing = self.rt.config().sync.network_context;
        // The networks as recorded, for `everything` (read once a pass).
        let networks: std::collections::HashMap<String, crate::store::KnownNetwork> =
            if sharing == crate::config::NetworkSharing::Everything {
                self.rt
                    .with_store(|s| s.networks())
                    .await?
                    .into_iter()
                    .map(|n| (n.id.clone(), n))
                    .collect()
            } else {
                Default::default()
            };
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
                let share = super::super::payload::NetworkShare {
                    sharing,
                    network: item
                        .result
                        .network_id
                        .as_ref()
                        .and_then(|id| networks.get(id)),
                };
                let body = upload_body(&item.result, to, share);
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
    pub(super) async fn settle(
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
    pub(super) async fn on_server(
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
    pub(super) async fn device_known(
        &self,
        session: &Session,
        enrolled: &Enrolled,
        pass: &mut Pass,
    ) -> bool {
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

    /// Records the pass's outcome and backoff; reports it.
    pub(super) async fn finish(
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
}
