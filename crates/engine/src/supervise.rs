//! Background tasks of the agent (scheduler, sync worker, notifier) under
//! supervision: a task that panics or ends while the runtime is still up is
//! logged at once, recorded where `status` and the UI read it, announced as
//! an event (tray, window, notification), and started again after a backoff
//! (1 s, doubling, at most 5 minutes). Nothing is silently gone.

use crate::runtime::{Event, Runtime};
use chrono::Utc;
use std::future::Future;
use std::time::Duration;

pub use crate::runtime::{TaskFailure, TaskFailures, TASKS};

/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Starts supervising for one agent: the failures of an earlier agent are
/// forgotten.
pub async fn reset(rt: &Runtime) {
    if let Err(e) = rt.with_store(|s| s.state_delete(TASKS)).await {
        tracing::warn!("cannot clear the task failures of an earlier agent: {e}");
    }
}

/// The wait before the `n`th restart.
fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(9)).min(MAX_BACKOFF)
}

/// What a task's end says: a panic's message, or that it returned.
fn why(outcome: Result<(), tokio::task::JoinError>) -> String {
    match outcome {
        Ok(()) => "ended while the agent was still running".into(),
        Err(e) if e.is_panic() => {
            let p = e.into_panic();
            let text = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            format!("panicked: {text}")
        }
        Err(e) => e.to_string(),
    }
}

/// Starts the agent's background tasks under supervision: the notifier
/// always; with `schedule` (this process owns the schedule: the device id
/// that places its runs, and the sync worker) the scheduler and the sync
/// worker too, after forgetting an earlier agent's failures, and the
/// update check (downloads into `updates`). The same for the daemon and
/// the desktop app. Each task ends with the runtime.
pub async fn start_agent(
    rt: &Runtime,
    sink: std::sync::Arc<dyn crate::notify::Sink>,
    schedule: Option<(String, crate::sync::Syncer)>,
    updates: std::path::PathBuf,
) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
    use crate::schedule::{self, SystemClock};
    let r = rt.clone();
    let mut tasks = vec![(
        "notifications",
        spawn(rt.clone(), "notifications", move || {
            crate::notify::run(r.clone(), std::sync::Arc::clone(&sink))
        }),
    )];
    if let Some((device_id, syncer)) = schedule {
        reset(rt).await;
        let r = rt.clone();
        tasks.push((
            "scheduler",
            spawn(rt.clone(), "scheduler", move || {
                let (r, id) = (r.clone(), device_id.clone());
                async move { schedule::run(&r, &SystemClock, &id).await }
            }),
        ));
        tasks.push((
            "sync",
            spawn(rt.clone(), "sync", move || {
                syncer.clone().run(std::sync::Arc::new(SystemClock))
            }),
        ));
        let r = rt.clone();
        tasks.push((
            "network",
            spawn(rt.clone(), "network", move || {
                let r = r.clone();
                async move { r.watch_network().await }
            }),
        ));
        let r = rt.clone();
        tasks.push((
            "update",
            spawn(rt.clone(), "update", move || {
                crate::update::run(r.clone(), updates.clone())
            }),
        ));
    }
    tasks
}

/// Runs `make()` and starts it again whenever it fails, until the runtime
/// shuts down.
pub fn spawn<F, Fut>(rt: Runtime, name: &'static str, make: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut restarts = 0u32;
        loop {
            let outcome = tokio::spawn(make()).await;
            if rt.is_closing() {
                return;
            }
            restarts = restarts.saturating_add(1);
            let message = why(outcome);
            tracing::error!(
                task = name,
                restarts,
                "background task failed: {message}; restarting it"
            );
            let (m, at) = (message.clone(), Utc::now());
            let recorded = rt
                .with_store(move |s| {
                    let mut all: TaskFailures =
                        s.state_get(TASKS).ok().flatten().unwrap_or_default();
                    let entry = all.entry(name.to_owned()).or_insert(TaskFailure {
                        failures: 0,
                        last_error: String::new(),
                        last_failed_at: at,
                    });
                    entry.failures = entry.failures.saturating_add(1);
                    entry.last_error = m;
                    entry.last_failed_at = at;
                    s.state_set(TASKS, &all)
                })
                .await;
            if let Err(e) = recorded {
                tracing::error!(task = name, "cannot record the failure: {e}");
            }
            rt.emit(Event::TaskFailed {
                task: name.to_owned(),
                message,
                restarts,
            });
            tokio::select! {
                _ = tokio::time::sleep(backoff(restarts)) => {}
                _ = rt.closed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
