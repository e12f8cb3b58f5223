//! The runtime handle: one per process, shared by the CLI, the scheduler and
//! the desktop shell. It owns the store and the configuration, runs suites
//! (one run at a time: a request during a run joins it) and broadcasts events.

use crate::config::Config;
use crate::model::{ErrorKind, Measurement, TestType};
use crate::probe::http::HttpProbe;
use crate::probe::tcp::TcpProbe;
use crate::probe::Probe;
use crate::store::{HistoryQuery, Series, SeriesQuery, Store, StoreError, StoreStats};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, watch, Semaphore};
use uuid::Uuid;

/// Latency probes run at most this many at a time inside a run, so they do
/// not disturb each other's timings much.
const RUN_CONCURRENCY: usize = 4;

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
}

/// Something that happened, for the tray, the UI, notifications and logs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: Uuid,
        #[serde(with = "crate::model::rfc3339_utc")]
        started_at: DateTime<Utc>,
        total: usize,
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
}

/// What one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: Uuid,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub finished_at: DateTime<Utc>,
    /// In suite order.
    pub results: Vec<Measurement>,
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
    pub targets: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    pub store: StoreStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub run_id: Uuid,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub finished_at: DateTime<Utc>,
    pub total: usize,
    pub failed: usize,
}

/// A probe of any type, as built from the configuration or the CLI.
#[derive(Debug, Clone)]
pub enum AnyProbe {
    Http(HttpProbe),
    Tcp(TcpProbe),
}

impl AnyProbe {
    pub async fn run(&self) -> Measurement {
        match self {
            AnyProbe::Http(p) => p.run().await,
            AnyProbe::Tcp(p) => p.run().await,
        }
    }

    pub fn test_type(&self) -> TestType {
        match self {
            AnyProbe::Http(p) => p.test_type(),
            AnyProbe::Tcp(p) => p.test_type(),
        }
    }

    pub fn target(&self) -> String {
        match self {
            AnyProbe::Http(p) => p.target(),
            AnyProbe::Tcp(p) => p.target(),
        }
    }
}

/// The configured suite as probes, in config order.
pub fn suite(cfg: &Config) -> Vec<AnyProbe> {
    let http = cfg
        .suite
        .http
        .iter()
        .map(|t| AnyProbe::Http(HttpProbe::from_target(t.get_ref(), cfg)));
    let tcp = cfg
        .suite
        .tcp
        .iter()
        .map(|t| AnyProbe::Tcp(TcpProbe::from_target(t.get_ref(), cfg)));
    http.chain(tcp).collect()
}

type RunSlot = Option<watch::Receiver<Option<Arc<RunSummary>>>>;

struct Inner {
    store: Mutex<Store>,
    config: RwLock<Config>,
    events: broadcast::Sender<Event>,
    current: tokio::sync::Mutex<RunSlot>,
    last: Mutex<Option<LastRun>>,
}

/// Cheap to clone; all clones share one runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    pub fn new(store: Store, config: Config) -> Runtime {
        let (events, _) = broadcast::channel(1024);
        Runtime {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                config: RwLock::new(config),
                events,
                current: tokio::sync::Mutex::new(None),
                last: Mutex::new(None),
            }),
        }
    }

    /// Events from now on. A slow subscriber that falls more than 1024 events
    /// behind gets `Lagged` and continues from the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn config(&self) -> Config {
        match self.inner.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the configuration after validating it; the next run uses it.
    pub fn set_config(&self, cfg: Config) -> Result<(), RuntimeError> {
        cfg.validate("settings", None)?;
        match self.inner.config.write() {
            Ok(mut c) => *c = cfg,
            Err(p) => *p.into_inner() = cfg,
        }
        Ok(())
    }

    /// Runs the configured suite now, or joins the run already going, and
    /// returns its summary.
    pub async fn run_now(&self) -> Result<Arc<RunSummary>, RuntimeError> {
        let mut rx = {
            let mut slot = self.inner.current.lock().await;
            match slot.as_ref() {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    *slot = Some(rx.clone());
                    let rt = self.clone();
                    tokio::spawn(async move {
                        let summary = rt.execute().await;
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

    /// Runs one ad hoc probe; stores its result when `store` is true.
    pub async fn test(&self, probe: &AnyProbe, store: bool) -> Result<Measurement, RuntimeError> {
        let m = probe.run().await;
        if store {
            self.store_results(vec![m.clone()]).await?;
        }
        Ok(m)
    }

    pub async fn status(&self) -> Result<Status, RuntimeError> {
        let store = self.with_store(|s| s.stats()).await?;
        let last = match self.inner.last.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Ok(Status {
            running: self.is_running().await,
            targets: self.config().target_count(),
            last_run: last,
            store,
        })
    }

    pub async fn history(&self, q: HistoryQuery) -> Result<Vec<Measurement>, RuntimeError> {
        self.with_store(move |s| s.history(&q)).await
    }

    pub async fn series(&self, q: SeriesQuery) -> Result<Vec<Series>, RuntimeError> {
        self.with_store(move |s| s.series(&q)).await
    }

    /// Applies the configured retention now.
    pub async fn apply_retention(&self) -> Result<usize, RuntimeError> {
        let days = self.config().store.retention_days;
        self.with_store(move |s| s.apply_retention(days)).await
    }

    async fn store_results(&self, results: Vec<Measurement>) -> Result<usize, RuntimeError> {
        self.with_store(move |s| s.insert(&results)).await
    }

    /// One run of the suite: probes with bounded concurrency, each result
    /// stored as soon as it is measured (a crash mid-run keeps the finished
    /// ones), events for each step.
    async fn execute(&self) -> Arc<RunSummary> {
        let cfg = self.config();
        let probes = suite(&cfg);
        let run_id = Uuid::now_v7();
        let started_at = Utc::now();
        let total = probes.len();
        tracing::info!(%run_id, total, "run started");
        let _ = self.inner.events.send(Event::RunStarted {
            run_id,
            started_at,
            total,
        });

        let gate = Arc::new(Semaphore::new(RUN_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        // Which probe each task runs, so that even a crashed task leaves a result.
        let mut by_task = std::collections::HashMap::new();
        for (i, probe) in probes.into_iter().enumerate() {
            let gate = Arc::clone(&gate);
            let what = (i, probe.test_type(), probe.target());
            let handle = tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (i, probe.run().await)
            });
            by_task.insert(handle.id(), what);
        }
        let mut results: Vec<Option<Measurement>> = vec![None; total];
        let mut store_error = None;
        let mut done = 0;
        while let Some(joined) = tasks.join_next().await {
            let (i, m) = match joined {
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
            done += 1;
            let stored = self.store_results(vec![m.clone()]).await;
            if let Err(e) = stored {
                tracing::error!(target = %m.target, "result not stored: {e}");
                store_error.get_or_insert_with(|| e.to_string());
            }
            tracing::info!(
                target = %m.target,
                test_type = %m.test_type,
                success = m.success,
                latency_ms = m.latency_ms,
                "{}",
                m.summary()
            );
            let _ = self.inner.events.send(Event::Result {
                run_id,
                done,
                total,
                result: Box::new(m.clone()),
            });
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(m);
            }
        }
        if let Err(e) = self.apply_retention().await {
            tracing::warn!("retention not applied: {e}");
        }
        let summary = RunSummary {
            run_id,
            started_at,
            finished_at: Utc::now(),
            results: results.into_iter().flatten().collect(),
            store_error,
        };
        let last = LastRun {
            run_id,
            started_at,
            finished_at: summary.finished_at,
            total: summary.results.len(),
            failed: summary.failed(),
        };
        match self.inner.last.lock() {
            Ok(mut l) => *l = Some(last),
            Err(p) => *p.into_inner() = Some(last),
        }
        tracing::info!(%run_id, failed = summary.failed(), "run finished");
        let summary = Arc::new(summary);
        let _ = self.inner.events.send(Event::RunFinished {
            summary: Arc::clone(&summary),
        });
        summary
    }

    /// Runs `f` on the store on a blocking thread (one writer at a time).
    async fn with_store<T, F>(&self, f: F) -> Result<T, RuntimeError>
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
