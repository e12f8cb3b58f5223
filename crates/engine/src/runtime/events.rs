//! What the runtime tells: why a run started, the events of runs and
//! settings, a run's summary, and the status documents.

use super::*;

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    /// Someone asked for a speed test: the bandwidth servers, download then
    /// upload, nothing else.
    SpeedTest,
    /// The machine moved to another network: the first minutes on it are
    /// measured.
    NetworkChange,
}

/// Something that happened, for the tray, the UI, notifications and logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Event {
    RunStarted {
        run_id: Uuid,
        #[serde(with = "crate::model::rfc3339_utc")]
        #[cfg_attr(test, ts(type = "string"))]
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
    /// A bandwidth test running now, about once a second.
    BandwidthProgress {
        run_id: Uuid,
        target: String,
        interim: crate::model::Interim,
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
        summary: PassSummary,
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
    /// A newer release was downloaded and its signature verified: ready for
    /// the person to install (`update.rs`).
    UpdateReady {
        version: String,
        path: String,
    },
    /// The machine is on another network now (`network`: `None` when it has
    /// none: no default route).
    NetworkChanged {
        from: Option<String>,
        network: Option<Box<crate::store::KnownNetwork>>,
    },
    /// A network's label was changed.
    NetworksChanged,
    /// A captive portal answered the check (told once per network):
    /// results behind it are marked and do not count as outages.
    CaptivePortal {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// When the scheduler will run next (`None`: no agent scheduling).
    NextRun {
        #[serde(with = "crate::model::opt_rfc3339_utc")]
        #[cfg_attr(test, ts(type = "string | null"))]
        at: Option<DateTime<Utc>>,
    },
}

/// What one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct RunSummary {
    pub run_id: Uuid,
    pub reason: RunReason,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

impl RunSummary {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.success).count()
    }
}

/// A snapshot for status lines and `waddleperf status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Status {
    pub running: bool,
    pub paused: bool,
    pub targets: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// The next scheduled run, as the agent (daemon or desktop app) planned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentState>,
    /// The worst health over all targets (`None` before the first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    pub targets_health: Vec<TargetHealth>,
    pub autoperf: EscalationState,
    pub connectivity: Connectivity,
    pub store: StoreStats,
    /// Background tasks that failed (and were restarted) since the agent
    /// started.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(test, ts(as = "Option<TaskFailures>", optional))]
    pub task_failures: TaskFailures,
    /// The network the machine is on (`None`: none, or the OS cannot say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::store::KnownNetwork>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct LastRun {
    pub run_id: Uuid,
    pub reason: RunReason,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub finished_at: DateTime<Utc>,
    pub tiers: Vec<u8>,
    pub total: usize,
    pub failed: usize,
}

/// What the agent running the schedule last said about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct AgentState {
    pub pid: u32,
    #[serde(with = "crate::model::opt_rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string | null"))]
    pub next_run: Option<DateTime<Utc>>,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub updated_at: DateTime<Utc>,
}

/// One target's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct TargetHealth {
    pub test_type: TestType,
    pub target: String,
    pub health: Health,
    /// Since when it has had this health.
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether the network as a whole answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Connectivity {
    /// Every tier 1 test failed to reach its target (DNS, unreachable, timeout).
    pub lost: bool,
    #[serde(
        default,
        with = "crate::model::opt_rfc3339_utc",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(test, ts(type = "string | null"))]
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PauseState {
    pub(crate) paused: bool,
}

/// What one sync pass did (the sync worker fills it in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct PassSummary {
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
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
    #[cfg_attr(test, ts(type = "string | null"))]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The `state` key of the supervised tasks' failures since the agent started.
pub const TASKS: &str = "agent.tasks";

/// A supervised task that has failed since the agent started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct TaskFailure {
    /// Times it failed (each followed by a restart).
    pub failures: u32,
    pub last_error: String,
    pub last_failed_at: DateTime<Utc>,
}

/// Failures by task name.
pub type TaskFailures = std::collections::BTreeMap<String, TaskFailure>;
