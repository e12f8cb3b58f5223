//! The runtime handle: one per process, shared by the CLI, the scheduler and
//! the desktop shell. It owns the store and the configuration, runs suites
//! (one run at a time: a request during a run joins it), applies AutoPerf
//! (health per target, tier escalation), keeps pause/resume and broadcasts
//! events.

use crate::autoperf::{self, Breach, EscalationState, Health, Tier3, Transition};
use crate::config::Config;
use crate::model::{ErrorKind, Measurement, TestType};
use crate::plan::{Planned, Plans};
pub use crate::probe::AnyProbe;
use crate::store::{
    HistoryQuery, NewEvent, Series, SeriesQuery, Store, StoreError, StoreStats, StoredEvent,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use uuid::Uuid;

/// Keys of the state documents in the store.
mod key {
    pub const PAUSED: &str = "paused";
    pub const AUTOPERF: &str = "autoperf";
    pub const HEALTH: &str = "health";
    pub const CONNECTIVITY: &str = "connectivity";
    pub const LAST_RUN: &str = "last_run";
    pub const AGENT: &str = "agent";
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store is unavailable: a previous operation panicked")]
    Poisoned,
    #[error("internal task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("WaddlePerf is shutting down; no new runs start")]
    ShuttingDown,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunReason {
    /// The monitor just started (`schedule.run_on_start`).
    Start,
    /// The hourly (or configured) schedule.
    Scheduled,
    /// The scheduled time was missed (sleep, hibernation, a clock jump): one
    /// run to catch up, not one per missed slot.
    CatchUp,
    /// Someone asked (CLI, tray, UI).
    OnDemand,
}

/// Something that happened, for the tray, the UI, notifications and logs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: Uuid,
        #[serde(with = "crate::model::rfc3339_utc")]
        started_at: DateTime<Utc>,
        reason: RunReason,
        /// Tests of tier 1 (escalation may add more: see `TierStarted`).
        total: usize,
    },
    /// A further tier joins the run (AutoPerf escalation).
    TierStarted {
        run_id: Uuid,
        tier: u8,
        /// The run's new total number of tests.
        total: usize,
    },
    /// A test begins (for live progress).
    TestStarted {
        run_id: Uuid,
        tier: u8,
        test_type: TestType,
        target: String,
    },
    Result {
        run_id: Uuid,
        /// 1-based position of this result among the run's tests.
        done: usize,
        total: usize,
        result: Box<Measurement>,
    },
    RunFinished {
        summary: Arc<RunSummary>,
    },
    HealthChanged {
        test_type: TestType,
        target: String,
        /// `None` the first time a target is seen.
        from: Option<Health>,
        to: Health,
        /// What made it so (a breach or the failure), for `degraded` and `down`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The worst health over all targets changed (the tray colour).
    OverallHealth {
        health: Health,
    },
    Escalated {
        transition: Transition,
    },
    Deescalated {
        transition: Transition,
    },
    ConnectivityLost {
        message: String,
    },
    ConnectivityRestored {
        message: String,
    },
    Paused,
    Resumed,
    /// A sync pass begins with this many results waiting.
    SyncStarted {
        pending: u64,
    },
    /// Uploads so far in this pass, and what is left.
    SyncProgress {
        delivered: u64,
        remaining: u64,
    },
    SyncFinished {
        summary: crate::sync::PassSummary,
    },
    /// The server ended the session (refresh refused): results keep
    /// queueing until the person signs in again.
    SignedOut {
        message: String,
    },
    /// The server no longer knows this device: results keep queueing until
    /// the person enrolls again.
    EnrollmentLost {
        message: String,
    },
    /// A background task of the agent (scheduler, sync worker, notifier)
    /// failed and is being restarted.
    TaskFailed {
        task: String,
        message: String,
        /// Restarts so far.
        restarts: u32,
    },
    /// When the scheduler will run next (`None`: no agent scheduling).
    NextRun {
        #[serde(with = "crate::model::opt_rfc3339_utc")]
        at: Option<DateTime<Utc>>,
    },
}

/// What one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: Uuid,
    pub reason: RunReason,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub finished_at: DateTime<Utc>,
    /// The tiers that ran, in order.
    pub tiers: Vec<u8>,
    /// In the order the tiers and their suites list them.
    pub results: Vec<Measurement>,
    /// Tier changes this run made.
    pub transitions: Vec<Transition>,
    /// The run was cut short by a shutdown; tests not finished were not stored.
    pub interrupted: bool,
    /// Why results could not be stored (the run itself still completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

impl RunSummary {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.success).count()
    }
}

/// A snapshot for status lines and `waddleperf status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub running: bool,
    pub paused: bool,
    pub targets: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// The next scheduled run, as the agent (daemon or desktop app) planned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentState>,
    /// The worst health over all targets (`None` before the first run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    pub targets_health: Vec<TargetHealth>,
    pub autoperf: EscalationState,
    pub connectivity: Connectivity,
    pub store: StoreStats,
    /// Background tasks that failed (and were restarted) since the agent
    /// started.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub task_failures: crate::supervise::TaskFailures,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastRun {
    pub run_id: Uuid,
    pub reason: RunReason,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub finished_at: DateTime<Utc>,
    pub tiers: Vec<u8>,
    pub total: usize,
    pub failed: usize,
}

/// What the agent running the schedule last said about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub pid: u32,
    #[serde(with = "crate::model::opt_rfc3339_utc")]
    pub next_run: Option<DateTime<Utc>>,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub updated_at: DateTime<Utc>,
}

/// One target's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub test_type: TestType,
    pub target: String,
    pub health: Health,
    /// Since when it has had this health.
    #[serde(with = "crate::model::rfc3339_utc")]
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether the network as a whole answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Connectivity {
    /// Every tier 1 test failed to reach its target (DNS, unreachable, timeout).
    pub lost: bool,
    #[serde(
        default,
        with = "crate::model::opt_rfc3339_utc",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PauseState {
    paused: bool,
}

/// A state document, or its default when absent or unreadable (logged).
fn state_or_default<T: serde::de::DeserializeOwned + Default>(s: &Store, key: &str) -> T {
    s.state_get(key)
        .unwrap_or_else(|e| {
            tracing::warn!("state `{key}` unreadable, starting afresh: {e}");
            None
        })
        .unwrap_or_default()
}

type RunSlot = Option<watch::Receiver<Option<Arc<RunSummary>>>>;

struct Inner {
    store: Mutex<Store>,
    /// The configuration and its tiers' probes, planned once per change.
    config: RwLock<(Config, Arc<Plans>)>,
    events: broadcast::Sender<Event>,
    current: tokio::sync::Mutex<RunSlot>,
    /// Pause/resume, settings and shutdown wake the scheduler.
    changes: Notify,
    /// `true` once shutdown began: no new runs.
    closing: watch::Sender<bool>,
    /// `true` when the run in progress must stop now.
    cancel: watch::Sender<bool>,
}

/// Cheap to clone; all clones share one runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Running totals of one run, for progress events.
struct Progress {
    run_id: Uuid,
    done: usize,
    total: usize,
    store_error: Option<String>,
    interrupted: bool,
}

impl Runtime {
    pub fn new(store: Store, config: Config) -> Runtime {
        let (events, _) = broadcast::channel(1024);
        Runtime {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                config: RwLock::new({
                    let plans = Arc::new(Plans::new(&config));
                    (config, plans)
                }),
                events,
                current: tokio::sync::Mutex::new(None),
                changes: Notify::new(),
                closing: watch::channel(false).0,
                cancel: watch::channel(false).0,
            }),
        }
    }

    /// Events from now on. A slow subscriber that falls more than 1024 events
    /// behind gets `Lagged` and continues from the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub(crate) fn emit(&self, ev: Event) {
        let _ = self.inner.events.send(ev);
    }

    pub fn config(&self) -> Config {
        self.config_and_plans().0
    }

    /// The configuration and the probes of its tiers, as one snapshot.
    fn config_and_plans(&self) -> (Config, Arc<Plans>) {
        match self.inner.config.read() {
            Ok(c) => (c.0.clone(), Arc::clone(&c.1)),
            Err(p) => {
                let c = p.into_inner();
                (c.0.clone(), Arc::clone(&c.1))
            }
        }
    }

    /// Replaces the configuration after validating it; the next run (and the
    /// scheduler, at once) uses it.
    pub fn set_config(&self, cfg: Config) -> Result<(), RuntimeError> {
        cfg.validate("settings", None)?;
        let next = {
            let plans = Arc::new(Plans::new(&cfg));
            (cfg, plans)
        };
        match self.inner.config.write() {
            Ok(mut c) => *c = next,
            Err(p) => *p.into_inner() = next,
        }
        self.inner.changes.notify_waiters();
        Ok(())
    }

    /// Resolves when settings, pause state or shutdown change.
    pub async fn changed(&self) {
        self.inner.changes.notified().await
    }

    /// Runs the tier 1 suite now (AutoPerf may add tiers 2 and 3), or joins
    /// the run already going, and returns its summary.
    pub async fn run_now(&self) -> Result<Arc<RunSummary>, RuntimeError> {
        self.run(RunReason::OnDemand).await
    }

    /// Like [`Runtime::run_now`], saying why.
    pub async fn run(&self, reason: RunReason) -> Result<Arc<RunSummary>, RuntimeError> {
        self.start(reason, None).await
    }

    /// Runs one tier's suite alone (a manual diagnosis: no escalation, no
    /// health change), or joins the run already going.
    pub async fn run_tier(&self, tier: u8) -> Result<Arc<RunSummary>, RuntimeError> {
        self.start(RunReason::OnDemand, Some(tier.clamp(1, 3)))
            .await
    }

    async fn start(
        &self,
        reason: RunReason,
        forced: Option<u8>,
    ) -> Result<Arc<RunSummary>, RuntimeError> {
        let mut rx = {
            let mut slot = self.inner.current.lock().await;
            match slot.as_ref() {
                Some(rx) => rx.clone(),
                None => {
                    if *self.inner.closing.borrow() {
                        return Err(RuntimeError::ShuttingDown);
                    }
                    let (tx, rx) = watch::channel(None);
                    *slot = Some(rx.clone());
                    let rt = self.clone();
                    tokio::spawn(async move {
                        let summary = rt.execute(reason, forced).await;
                        // Clear the slot first: a request after this starts a new run.
                        rt.inner.current.lock().await.take();
                        let _ = tx.send(Some(summary));
                    });
                    rx
                }
            }
        };
        let done = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::Task("the run ended without a summary".into()))?;
        done.clone()
            .ok_or_else(|| RuntimeError::Task("the run ended without a summary".into()))
    }

    /// Whether a run is going now.
    pub async fn is_running(&self) -> bool {
        self.inner.current.lock().await.is_some()
    }

    /// Stops: no new runs; the run in progress gets `grace` to finish, then
    /// its unfinished tests are abandoned (nothing half-written: each result
    /// is stored whole or not at all). Returns once nothing is running.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closing.send_replace(true);
        self.inner.changes.notify_waiters();
        let current = self.inner.current.lock().await.clone();
        if let Some(mut rx) = current {
            let finished = tokio::time::timeout(grace, rx.wait_for(Option::is_some))
                .await
                .is_ok();
            if !finished {
                tracing::warn!("the run in progress did not finish in {grace:?}; stopping it");
                self.inner.cancel.send_replace(true);
                let _ = rx.wait_for(Option::is_some).await;
            }
        }
    }

    /// Whether shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn closed(&self) {
        let mut rx = self.inner.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Pauses scheduled runs (on-demand runs still work). Kept in the store,
    /// so it survives restarts and every process sharing the database sees it.
    pub async fn pause(&self) -> Result<(), RuntimeError> {
        self.set_paused(true).await
    }

    pub async fn resume(&self) -> Result<(), RuntimeError> {
        self.set_paused(false).await
    }

    async fn set_paused(&self, paused: bool) -> Result<(), RuntimeError> {
        let was = self.is_paused().await?;
        if was == paused {
            return Ok(());
        }
        let (kind, message) = if paused {
            ("paused", "monitoring paused: scheduled runs are skipped")
        } else {
            ("resumed", "monitoring resumed")
        };
        let ev = NewEvent {
            at: Utc::now(),
            kind: kind.into(),
            target: None,
            message: message.into(),
            details: serde_json::Value::Null,
        };
        self.with_store(move |s| {
            s.state_set(key::PAUSED, &PauseState { paused })?;
            s.log_events(&[ev])
        })
        .await?;
        tracing::info!("{message}");
        self.emit(if paused {
            Event::Paused
        } else {
            Event::Resumed
        });
        self.inner.changes.notify_waiters();
        Ok(())
    }

    /// Whether scheduled runs are paused (read from the store each time).
    pub async fn is_paused(&self) -> Result<bool, RuntimeError> {
        let st: Option<PauseState> = self
            .with_store(|s| Ok(s.state_get(key::PAUSED).unwrap_or_default()))
            .await?;
        Ok(st.is_some_and(|p| p.paused))
    }

    /// Records when the scheduler runs next (for `status` and the tray).
    pub async fn set_next_run(&self, at: Option<DateTime<Utc>>) -> Result<(), RuntimeError> {
        let agent = AgentState {
            pid: std::process::id(),
            next_run: at,
            updated_at: Utc::now(),
        };
        self.with_store(move |s| s.state_set(key::AGENT, &agent))
            .await?;
        self.emit(Event::NextRun { at });
        Ok(())
    }

    /// Runs one ad hoc probe; stores its result when `store` is true.
    pub async fn test(&self, probe: &AnyProbe, store: bool) -> Result<Measurement, RuntimeError> {
        let m = probe.run().await;
        if store {
            self.store_results(vec![m.clone()]).await?;
        }
        Ok(m)
    }

    pub async fn status(&self) -> Result<Status, RuntimeError> {
        let running = self.is_running().await;
        let targets = self.config().target_count();
        self.with_store(move |s| {
            // A state document this version cannot read is treated as absent.
            let health: Vec<TargetHealth> =
                s.state_get(key::HEALTH).ok().flatten().unwrap_or_default();
            Ok(Status {
                running,
                paused: s
                    .state_get::<PauseState>(key::PAUSED)
                    .ok()
                    .flatten()
                    .is_some_and(|p| p.paused),
                targets,
                last_run: s.state_get(key::LAST_RUN).ok().flatten(),
                agent: s.state_get(key::AGENT).ok().flatten(),
                health: health.iter().map(|h| h.health).max(),
                targets_health: health,
                autoperf: s
                    .state_get(key::AUTOPERF)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                connectivity: s
                    .state_get(key::CONNECTIVITY)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                store: s.stats()?,
                task_failures: s
                    .state_get(crate::supervise::TASKS)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn history(&self, q: HistoryQuery) -> Result<Vec<Measurement>, RuntimeError> {
        self.with_store(move |s| s.history(&q)).await
    }

    pub async fn series(&self, q: SeriesQuery) -> Result<Vec<Series>, RuntimeError> {
        self.with_store(move |s| s.series(&q)).await
    }

    /// The event log (escalations, health changes, pause…), oldest first.
    pub async fn event_log(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, RuntimeError> {
        self.with_store(move |s| s.events(since, until, limit))
            .await
    }

    /// Applies the configured retention now.
    pub async fn apply_retention(&self) -> Result<usize, RuntimeError> {
        let days = self.config().store.retention_days;
        self.with_store(move |s| {
            let enrolled = s
                .state_get::<serde_json::Value>(crate::sync::state::ENROLLMENT)?
                .is_some();
            s.apply_retention(days, enrolled)
        })
        .await
    }

    async fn store_results(&self, results: Vec<Measurement>) -> Result<usize, RuntimeError> {
        self.with_store(move |s| s.insert(&results)).await
    }

    /// One run: tier 1 (or a forced tier), then AutoPerf — health, tier
    /// changes, and tiers 2 and 3 when escalated.
    async fn execute(&self, reason: RunReason, forced: Option<u8>) -> Arc<RunSummary> {
        let (cfg, plans) = self.config_and_plans();
        let run_id = Uuid::now_v7();
        let started_at = Utc::now();
        let first_tier = forced.unwrap_or(1);
        let tier1 = plans.tier(first_tier);
        let mut progress = Progress {
            run_id,
            done: 0,
            total: tier1.len(),
            store_error: None,
            interrupted: false,
        };
        tracing::info!(%run_id, ?reason, total = progress.total, "run started");
        self.emit(Event::RunStarted {
            run_id,
            started_at,
            reason,
            total: progress.total,
        });

        let mut results = Vec::new();
        let mut tiers = vec![first_tier];
        let mut transitions = Vec::new();
        let first = self
            .run_tier_suite(first_tier, tier1, &cfg, &mut progress)
            .await;
        // Each tier 1 result's breaches, computed once for health and escalation.
        let tier1_breaches: Vec<Vec<Breach>> = tier1
            .iter()
            .zip(&first)
            .map(|(p, m)| autoperf::tier1_breaches(m, &p.thresholds))
            .collect();
        if forced.is_none() && !progress.interrupted {
            self.after_tier1(&first, &tier1_breaches).await;
        }
        results.extend(first.iter().cloned());

        if forced.is_none() && cfg.autoperf.enabled && !progress.interrupted {
            let mut state = self.load_state::<EscalationState>(key::AUTOPERF).await;
            let breaches: Vec<Breach> = tier1_breaches.into_iter().flatten().collect();
            if let Some(tr) = state.after_tier1(&breaches, &cfg.autoperf) {
                self.transition(&tr).await;
                transitions.push(tr);
            }
            if state.level >= 2 {
                let tier2 = plans.tier(2);
                let second = self.more_tier(2, tier2, &cfg, &mut progress).await;
                tiers.push(2);
                results.extend(second.iter().cloned());
                if !progress.interrupted {
                    let b2: Vec<Breach> = tier2
                        .iter()
                        .zip(&second)
                        .flat_map(|(p, m)| autoperf::tier2_breaches(m, &p.thresholds))
                        .collect();
                    match state.after_tier2(&b2, Utc::now(), &cfg.autoperf) {
                        Tier3::Run(tr) => {
                            self.transition(&tr).await;
                            transitions.push(tr);
                            let tier3 = plans.tier(3);
                            let third = self.more_tier(3, tier3, &cfg, &mut progress).await;
                            tiers.push(3);
                            results.extend(third);
                        }
                        Tier3::CoolingDown { until } => {
                            tracing::info!(
                                "tier 2 still crosses thresholds; tier 3 ran recently and may run again after {until}"
                            );
                        }
                        Tier3::No => {}
                    }
                }
            }
            if let Err(e) = self
                .with_store(move |s| s.state_set(key::AUTOPERF, &state))
                .await
            {
                tracing::error!("AutoPerf state not saved: {e}");
            }
        }

        if let Err(e) = self.apply_retention().await {
            tracing::warn!("retention not applied: {e}");
        }
        let summary = RunSummary {
            run_id,
            reason,
            started_at,
            finished_at: Utc::now(),
            tiers,
            results,
            transitions,
            interrupted: progress.interrupted,
            store_error: progress.store_error,
        };
        let last = LastRun {
            run_id,
            reason,
            started_at,
            finished_at: summary.finished_at,
            tiers: summary.tiers.clone(),
            total: summary.results.len(),
            failed: summary.failed(),
        };
        if let Err(e) = self
            .with_store(move |s| s.state_set(key::LAST_RUN, &last))
            .await
        {
            tracing::error!("last run not recorded: {e}");
        }
        tracing::info!(
            %run_id,
            failed = summary.failed(),
            interrupted = summary.interrupted,
            "run finished"
        );
        let summary = Arc::new(summary);
        self.emit(Event::RunFinished {
            summary: Arc::clone(&summary),
        });
        summary
    }

    /// Runs a further tier inside the current run.
    async fn more_tier(
        &self,
        tier: u8,
        planned: &[Planned],
        cfg: &Config,
        progress: &mut Progress,
    ) -> Vec<Measurement> {
        progress.total += planned.len();
        tracing::info!(run_id = %progress.run_id, tier, tests = planned.len(), "tier started");
        self.emit(Event::TierStarted {
            run_id: progress.run_id,
            tier,
            total: progress.total,
        });
        self.run_tier_suite(tier, planned, cfg, progress).await
    }

    /// Health per target and connectivity from a tier 1 run's results.
    async fn after_tier1(&self, results: &[Measurement], breaches: &[Vec<Breach>]) {
        let now = Utc::now();
        // Both earlier states in one trip to the store.
        let (old, old_conn): (Vec<TargetHealth>, Connectivity) = self
            .with_store(|s| {
                Ok((
                    state_or_default(s, key::HEALTH),
                    state_or_default(s, key::CONNECTIVITY),
                ))
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("health state unreadable, starting afresh: {e}");
                Default::default()
            });
        let old_overall = old.iter().map(|h| h.health).max();
        let mut new = Vec::with_capacity(results.len());
        let mut log = Vec::new();
        let mut events = Vec::new();
        for (m, b) in results.iter().zip(breaches) {
            let health = autoperf::health_from(m, b);
            let reason = b.first().map(ToString::to_string);
            let prev = old
                .iter()
                .find(|h| h.test_type == m.test_type && h.target == m.target);
            let since = match prev {
                Some(h) if h.health == health => h.since,
                _ => now,
            };
            if prev.map(|h| h.health) != Some(health) {
                let from = prev.map(|h| h.health);
                let from_part = from.map(|f| format!("{f} → ")).unwrap_or_default();
                let why = reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let message = format!("{} {}: {from_part}{health}{why}", m.test_type, m.target);
                log.push(NewEvent {
                    at: now,
                    kind: "health_changed".into(),
                    target: Some(m.target.clone()),
                    message,
                    details: serde_json::json!({
                        "test_type": m.test_type,
                        "from": from,
                        "to": health,
                        "reason": reason,
                    }),
                });
                events.push(Event::HealthChanged {
                    test_type: m.test_type,
                    target: m.target.clone(),
                    from,
                    to: health,
                    reason: reason.clone(),
                });
            }
            new.push(TargetHealth {
                test_type: m.test_type,
                target: m.target.clone(),
                health,
                since,
                reason,
            });
        }
        let overall = new.iter().map(|h| h.health).max();

        // Connectivity: lost when no tier 1 test could reach its target.
        let unreachable = |m: &Measurement| {
            !m.success
                && matches!(
                    m.error_kind,
                    Some(ErrorKind::Dns | ErrorKind::Unreachable | ErrorKind::Timeout)
                )
        };
        let lost = !results.is_empty() && results.iter().all(unreachable);
        let mut conn_event = None;
        let conn = if lost != old_conn.lost {
            let message = if lost {
                format!(
                    "connectivity lost: none of the {} tests reached its target",
                    results.len()
                )
            } else {
                "connectivity restored".to_owned()
            };
            let kind = if lost {
                "connectivity_lost"
            } else {
                "connectivity_restored"
            };
            log.push(NewEvent {
                at: now,
                kind: kind.into(),
                target: None,
                message: message.clone(),
                details: serde_json::Value::Null,
            });
            conn_event = Some(if lost {
                Event::ConnectivityLost { message }
            } else {
                Event::ConnectivityRestored { message }
            });
            Connectivity {
                lost,
                since: Some(now),
            }
        } else {
            old_conn
        };
        let saved = self
            .with_store(move |s| {
                s.state_set(key::HEALTH, &new)?;
                s.state_set(key::CONNECTIVITY, &conn)?;
                s.log_events(&log)
            })
            .await;
        if let Err(e) = saved {
            tracing::error!("health not saved: {e}");
        }
        for ev in events {
            if let Event::HealthChanged {
                target, from, to, ..
            } = &ev
            {
                tracing::info!(%target, ?from, %to, "health changed");
            }
            self.emit(ev);
        }
        if let Some(ev) = conn_event {
            if let Event::ConnectivityLost { message } | Event::ConnectivityRestored { message } =
                &ev
            {
                tracing::warn!("connectivity: {message}");
            }
            self.emit(ev);
        }
        if let Some(h) = overall.filter(|h| Some(*h) != old_overall) {
            self.emit(Event::OverallHealth { health: h });
        }
    }

    /// Logs and broadcasts a tier change.
    async fn transition(&self, tr: &Transition) {
        let kind = if tr.to > tr.from {
            "escalated"
        } else {
            "deescalated"
        };
        tracing::warn!("AutoPerf: {}", tr.message);
        let ev = NewEvent {
            at: Utc::now(),
            kind: kind.into(),
            target: None,
            message: tr.message.clone(),
            details: serde_json::json!({
                "from": tr.from,
                "to": tr.to,
                "breaches": tr.breaches,
            }),
        };
        if let Err(e) = self.with_store(move |s| s.log_events(&[ev])).await {
            tracing::error!("escalation not logged: {e}");
        }
        self.emit(if tr.to > tr.from {
            Event::Escalated {
                transition: tr.clone(),
            }
        } else {
            Event::Deescalated {
                transition: tr.clone(),
            }
        });
    }

    /// A state document, or its default when absent or unreadable.
    async fn load_state<T>(&self, key: &'static str) -> T
    where
        T: serde::de::DeserializeOwned + Default + Send + 'static,
    {
        self.with_store(move |s| Ok(state_or_default(s, key)))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("state `{key}` unreadable, starting afresh: {e}");
                T::default()
            })
    }

    /// One tier's suite: probes with bounded concurrency (exclusive ones
    /// alone), each result stored as soon as it is measured (a crash mid-run
    /// keeps the finished ones), events for each step. Returns the results in
    /// suite order; on shutdown, the finished ones only.
    async fn run_tier_suite(
        &self,
        tier: u8,
        planned: &[Planned],
        cfg: &Config,
        progress: &mut Progress,
    ) -> Vec<Measurement> {
        let permits = cfg.schedule.concurrency.max(1);
        let gate = Arc::new(Semaphore::new(permits as usize));
        let mut tasks = tokio::task::JoinSet::new();
        // Which probe each task runs, so that even a crashed task leaves a result.
        let mut by_task = std::collections::HashMap::new();
        let (events, run_id) = (self.inner.events.clone(), progress.run_id);
        for (i, p) in planned.iter().enumerate() {
            let gate = Arc::clone(&gate);
            let probe = p.probe.clone();
            let what = (i, probe.test_type(), probe.target());
            let events = events.clone();
            let handle = tasks.spawn(async move {
                let want = if probe.exclusive() { permits } else { 1 };
                let _permit = gate.acquire_many_owned(want).await;
                let _ = events.send(Event::TestStarted {
                    run_id,
                    tier,
                    test_type: probe.test_type(),
                    target: probe.target(),
                });
                (i, probe.run().await)
            });
            by_task.insert(handle.id(), what);
        }
        let mut results: Vec<Option<Measurement>> = vec![None; planned.len()];
        let mut cancel = self.inner.cancel.subscribe();
        loop {
            let joined = tokio::select! {
                biased;
                _ = cancel.wait_for(|c| *c) => {
                    tasks.abort_all();
                    progress.interrupted = true;
                    break;
                }
                j = tasks.join_next() => match j {
                    Some(j) => j,
                    None => break,
                },
            };
            let (i, mut m) = match joined {
                Ok(x) => x,
                Err(e) => match by_task.get(&e.id()) {
                    Some((i, test_type, target)) => {
                        tracing::error!(%target, "the probe crashed: {e}");
                        let mut m = Measurement::begin(*test_type, target.clone());
                        m.fail(ErrorKind::Io, format!("the probe crashed: {e}"));
                        (*i, m)
                    }
                    None => continue,
                },
            };
            m.tier = tier;
            progress.done += 1;
            let stored = self.store_results(vec![m.clone()]).await;
            if let Err(e) = stored {
                tracing::error!(target = %m.target, "result not stored: {e}");
                progress.store_error.get_or_insert_with(|| e.to_string());
            }
            tracing::info!(
                target = %m.target,
                test_type = %m.test_type,
                tier,
                success = m.success,
                latency_ms = m.latency_ms,
                "{}",
                m.summary()
            );
            self.emit(Event::Result {
                run_id,
                done: progress.done,
                total: progress.total,
                result: Box::new(m.clone()),
            });
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(m);
            }
        }
        results.into_iter().flatten().collect()
    }

    /// Runs `f` on the store on a blocking thread (one writer at a time).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, RuntimeError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.store.lock().map_err(|_| RuntimeError::Poisoned)?;
            f(&mut guard).map_err(RuntimeError::from)
        })
        .await
        .map_err(|e| RuntimeError::Task(e.to_string()))?
    }
}
