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

mod events;
mod network;
mod run;
pub use events::*;
pub use network::NetworkUpdate;

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
    #[error("cannot read the network context: {0}")]
    Network(String),
    #[error(
        "no bandwidth server is configured: add an iperf3 server in Settings \
         (or a [[suite.bandwidth]] entry in the configuration file)"
    )]
    NoBandwidthServer,
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
    /// The network the machine is on (`network.rs`).
    network: Mutex<network::NetState>,
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
    /// A captive portal is in the way: results are marked, not outages.
    portal: bool,
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
                network: Mutex::new(network::NetState::default()),
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

    /// A speed test now: each configured bandwidth server, download then
    /// upload, alone (after a run already going has finished).
    pub async fn speed_test(&self) -> Result<Arc<RunSummary>, RuntimeError> {
        if self.config_and_plans().1.speed().is_empty() {
            return Err(RuntimeError::NoBandwidthServer);
        }
        loop {
            let s = self.start(RunReason::SpeedTest, Some(1)).await?;
            if s.reason == RunReason::SpeedTest {
                return Ok(s);
            }
        }
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
        let mut m = probe.run().await;
        m.network_id = self.network_now().await.map(|c| c.network_id.clone());
        if store {
            self.store_results(vec![m.clone()]).await?;
        }
        Ok(m)
    }

    pub async fn status(&self) -> Result<Status, RuntimeError> {
        let running = self.is_running().await;
        let targets = self.config().target_count();
        let net = self.network_now().await.map(|c| c.network_id.clone());
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
                task_failures: s.state_get(TASKS).ok().flatten().unwrap_or_default(),
                network: match net {
                    Some(id) => s.network(&id)?,
                    None => None,
                },
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
                .state_get::<serde_json::Value>(crate::store::ENROLLMENT)?
                .is_some();
            s.apply_retention(days, enrolled)
        })
        .await
    }

    /// Stores results, each stamped with the network it was measured on.
    async fn store_results(&self, mut results: Vec<Measurement>) -> Result<usize, RuntimeError> {
        if results.iter().any(|m| m.network_id.is_none()) {
            let net = self.network_now().await.map(|c| c.network_id.clone());
            for m in results.iter_mut().filter(|m| m.network_id.is_none()) {
                m.network_id.clone_from(&net);
            }
        }
        self.with_store(move |s| s.insert(&results)).await
    }

    /// Logs one event (untargeted) in the store; a failure is only warned of.
    pub(crate) async fn log_event(&self, kind: &str, message: String, details: serde_json::Value) {
        let ev = NewEvent {
            at: Utc::now(),
            kind: kind.to_owned(),
            target: None,
            message,
            details,
        };
        if let Err(e) = self.with_store(move |s| s.log_events(&[ev])).await {
            tracing::warn!("event not logged: {e}");
        }
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
