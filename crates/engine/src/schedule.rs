//! The scheduler: runs the suite every `schedule.interval_minutes`, at a
//! stable per-device offset into the interval, so that a fleet does not test
//! at the same second.
//!
//! Runs fall on wall-clock slots (`epoch + offset + k × interval`). The loop
//! sleeps at most [`TICK`] at a time and looks at the wall clock each time it
//! wakes, because the monotonic clock stops while the machine sleeps: after
//! sleep, hibernation or a forward clock jump it finds the slot passed and
//! makes exactly one catch-up run, then continues from the next slot after
//! now (missed slots are skipped, not replayed). A backward clock jump
//! reschedules from the new time. One run at a time: the next slot is planned
//! only once a run has finished.

use crate::config::Schedule;
use crate::runtime::{RunReason, Runtime};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;

/// The longest the scheduler sleeps before looking at the wall clock again.
pub const TICK: Duration = Duration::from_secs(60);

/// A run starting later than this after its slot is a catch-up run.
pub const LATE: Duration = Duration::from_secs(120);

/// A wall clock going back by more than this is a clock jump.
const BACKWARD_JUMP: Duration = Duration::from_secs(30);

/// The wall clock (tests supply one that can jump).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// When runs happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub interval: Duration,
    pub offset: Duration,
    pub run_on_start: bool,
}

/// A stable offset in `[0, interval)` derived from the device id.
pub fn device_offset(device_id: &str, interval: Duration) -> Duration {
    let secs = interval.as_secs().max(1);
    let digest = Sha256::digest(format!("waddleperf-schedule:{device_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_secs(u64::from_be_bytes(first) % secs)
}

impl Plan {
    pub fn new(s: &Schedule, device_id: &str) -> Plan {
        let interval = Duration::from_secs(u64::from(s.interval_minutes.max(1)) * 60);
        let offset = match s.offset_seconds {
            Some(o) => Duration::from_secs(u64::from(o)).min(interval - Duration::from_secs(1)),
            None => device_offset(device_id, interval),
        };
        Plan {
            interval,
            offset,
            run_on_start: s.run_on_start,
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let iv = self.interval.as_secs().max(1) as i64;
        let off = self.offset.as_secs() as i64;
        let secs = t.timestamp();
        let k = (secs - off).div_euclid(iv) + 1;
        let slot = off + k * iv;
        DateTime::from_timestamp(slot, 0).unwrap_or(t)
    }
}

/// What the scheduler drives: the runtime, or a test double.
pub trait Runner: Send + Sync {
    /// The schedule settings now (they may change while running).
    fn schedule(&self) -> Schedule;
    /// Whether scheduled runs are paused.
    fn paused(&self) -> impl Future<Output = bool> + Send;
    /// Runs the suite (or joins the run already going) to its end.
    fn run(&self, reason: RunReason) -> impl Future<Output = ()> + Send;
    /// Records the next planned run.
    fn next_run(&self, at: Option<DateTime<Utc>>) -> impl Future<Output = ()> + Send;
    /// Resolves when settings or the pause state may have changed.
    fn changed(&self) -> impl Future<Output = ()> + Send;
    /// Whether the scheduler should stop.
    fn closing(&self) -> bool;
}

impl Runner for Runtime {
    fn schedule(&self) -> Schedule {
        self.config().schedule
    }

    async fn paused(&self) -> bool {
        match self.is_paused().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the pause state, running anyway: {e}");
                false
            }
        }
    }

    async fn run(&self, reason: RunReason) {
        if let Err(e) = Runtime::run(self, reason).await {
            tracing::error!("scheduled run failed: {e}");
        }
    }

    async fn next_run(&self, at: Option<DateTime<Utc>>) {
        if let Err(e) = self.set_next_run(at).await {
            tracing::warn!("next run not recorded: {e}");
        }
    }

    async fn changed(&self) {
        Runtime::changed(self).await
    }

    fn closing(&self) -> bool {
        self.is_closing()
    }
}

/// Runs the schedule until the runner is closing.
pub async fn run<R: Runner, C: Clock>(runner: &R, clock: &C, device_id: &str) {
    let mut plan = Plan::new(&runner.schedule(), device_id);
    let start = clock.now();
    let mut next = if plan.run_on_start {
        start
    } else {
        plan.next_after(start)
    };
    let mut first = plan.run_on_start;
    tracing::info!(
        interval_s = plan.interval.as_secs(),
        offset_s = plan.offset.as_secs(),
        %next,
        "scheduler started"
    );
    runner.next_run(Some(next)).await;
    let mut last_seen = start;
    while !runner.closing() {
        let now = clock.now();
        if now + BACKWARD_JUMP < last_seen {
            next = plan.next_after(now);
            tracing::info!(%now, %next, "the clock moved back; rescheduled");
            runner.next_run(Some(next)).await;
        }
        last_seen = now;
        if now >= next {
            let late = (now - next).to_std().unwrap_or(Duration::ZERO);
            let reason = if first {
                RunReason::Start
            } else if late > LATE {
                tracing::info!(
                    late_s = late.as_secs(),
                    "a scheduled run was missed (sleep or clock change): one catch-up run"
                );
                RunReason::CatchUp
            } else {
                RunReason::Scheduled
            };
            first = false;
            if runner.paused().await {
                tracing::info!("monitoring is paused: scheduled run skipped");
            } else {
                runner.run(reason).await;
            }
            let after = clock.now();
            next = plan.next_after(after);
            last_seen = after;
            runner.next_run(Some(next)).await;
            continue;
        }
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO).min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = runner.changed() => {
                let p = Plan::new(&runner.schedule(), device_id);
                if p != plan {
                    plan = p;
                    next = plan.next_after(clock.now());
                    tracing::info!(interval_s = plan.interval.as_secs(), %next, "schedule changed");
                    runner.next_run(Some(next)).await;
                }
            }
        }
    }
    runner.next_run(None).await;
    tracing::info!("scheduler stopped");
}

/// Runs the runtime's schedule on the system clock in a task.
pub fn spawn(rt: Runtime, device_id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { run(&rt, &SystemClock, &device_id).await })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    /// Wall time = start + elapsed tokio time + a skew the test can change
    /// (a machine asleep: wall time moves, the monotonic clock does not).
    struct TestClock {
        wall0: DateTime<Utc>,
        mono0: Instant,
        skew: Mutex<chrono::Duration>,
    }

    impl TestClock {
        fn new(wall0: &str) -> Arc<Self> {
            Arc::new(TestClock {
                wall0: wall0.parse().unwrap(),
                mono0: Instant::now(),
                skew: Mutex::new(chrono::Duration::zero()),
            })
        }
        fn jump(&self, d: chrono::Duration) {
            *self.skew.lock().unwrap() += d;
        }
    }

    impl Clock for Arc<TestClock> {
        fn now(&self) -> DateTime<Utc> {
            let el = chrono::Duration::from_std(self.mono0.elapsed()).unwrap();
            self.wall0 + el + *self.skew.lock().unwrap()
        }
    }

    #[derive(Default)]
    struct Log {
        runs: Vec<(DateTime<Utc>, DateTime<Utc>, RunReason)>,
        next: Vec<Option<DateTime<Utc>>>,
    }

    #[derive(Clone)]
    struct Fake {
        clock: Arc<TestClock>,
        schedule: Arc<Mutex<Schedule>>,
        paused: Arc<Mutex<bool>>,
        run_for: Duration,
        log: Arc<Mutex<Log>>,
        running: Arc<Mutex<bool>>,
        closing: Arc<Mutex<bool>>,
        changes: Arc<tokio::sync::Notify>,
    }

    impl Fake {
        fn new(clock: Arc<TestClock>, s: Schedule) -> Self {
            Fake {
                clock,
                schedule: Arc::new(Mutex::new(s)),
                paused: Arc::default(),
                run_for: Duration::from_secs(5),
                log: Arc::default(),
                running: Arc::default(),
                closing: Arc::default(),
                changes: Arc::default(),
            }
        }
        fn runs(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>, RunReason)> {
            self.log.lock().unwrap().runs.clone()
        }
    }

    impl Runner for Fake {
        fn schedule(&self) -> Schedule {
            self.schedule.lock().unwrap().clone()
        }
        async fn paused(&self) -> bool {
            *self.paused.lock().unwrap()
        }
        async fn run(&self, reason: RunReason) {
            {
                let mut r = self.running.lock().unwrap();
                assert!(!*r, "runs overlap");
                *r = true;
            }
            let start = self.clock.now();
            tokio::time::sleep(self.run_for).await;
            *self.running.lock().unwrap() = false;
            self.log
                .lock()
                .unwrap()
                .runs
                .push((start, self.clock.now(), reason));
        }
        async fn next_run(&self, at: Option<DateTime<Utc>>) {
            self.log.lock().unwrap().next.push(at);
        }
        async fn changed(&self) {
            self.changes.notified().await
        }
        fn closing(&self) -> bool {
            *self.closing.lock().unwrap()
        }
    }

    fn hourly(run_on_start: bool, offset: Option<u32>) -> Schedule {
        Schedule {
            interval_minutes: 60,
            run_on_start,
            offset_seconds: offset,
            concurrency: 4,
        }
    }

    /// Lets `d` of paused time pass: the clock jumps from timer to timer,
    /// so every task wakes exactly when it asked to.
    async fn advance(d: Duration) {
        tokio::time::sleep(d).await;
    }

    #[test]
    fn offsets_are_stable_and_spread() {
        let iv = Duration::from_secs(3600);
        assert_eq!(device_offset("abc", iv), device_offset("abc", iv));
        let offsets: std::collections::HashSet<u64> = (0..200)
            .map(|i| device_offset(&format!("device-{i}"), iv).as_secs())
            .collect();
        assert!(
            offsets.len() > 150,
            "200 devices share few offsets: {}",
            offsets.len()
        );
        assert!(offsets.iter().all(|o| *o < 3600));
        let p = Plan::new(&hourly(false, Some(125)), "x");
        let t: DateTime<Utc> = "2026-03-01T10:02:05Z".parse().unwrap();
        assert_eq!(p.next_after(t).to_rfc3339(), "2026-03-01T11:02:05+00:00");
        let t: DateTime<Utc> = "2026-03-01T10:02:04Z".parse().unwrap();
        assert_eq!(p.next_after(t).to_rfc3339(), "2026-03-01T10:02:05+00:00");
    }

    #[tokio::test(start_paused = true)]
    async fn hourly_cadence_at_the_device_offset() {
        let clock = TestClock::new("2026-03-01T10:00:00Z");
        let fake = Fake::new(clock.clone(), hourly(false, None));
        let offset = device_offset("dev-1", Duration::from_secs(3600)).as_secs() as i64;
        let f = fake.clone();
        let c = clock.clone();
        let task = tokio::spawn(async move { run(&f, &c, "dev-1").await });
        advance(Duration::from_secs(5 * 3600)).await;
        let runs = fake.runs();
        assert_eq!(runs.len(), 5, "{runs:?}");
        for (start, _, reason) in &runs {
            assert_eq!(*reason, RunReason::Scheduled);
            assert_eq!(start.timestamp().rem_euclid(3600), offset, "{start}");
        }
        for w in runs.windows(2) {
            assert_eq!((w[1].0 - w[0].0).num_seconds(), 3600);
        }
        *fake.closing.lock().unwrap() = true;
        fake.changes.notify_waiters();
        task.await.unwrap();
        assert_eq!(fake.log.lock().unwrap().next.last(), Some(&None));
    }

    #[tokio::test(start_paused = true)]
    async fn run_on_start_then_slots_and_no_overlap() {
        let clock = TestClock::new("2026-03-01T10:00:00Z");
        let mut fake = Fake::new(clock.clone(), hourly(true, Some(600)));
        // Each run takes 70 minutes: longer than the interval.
        fake.run_for = Duration::from_secs(70 * 60);
        let f = fake.clone();
        let c = clock.clone();
        tokio::spawn(async move { run(&f, &c, "d").await });
        advance(Duration::from_secs(4 * 3600)).await;
        let runs = fake.runs();
        assert_eq!(runs[0].2, RunReason::Start);
        assert_eq!(runs[0].0.to_rfc3339(), "2026-03-01T10:00:00+00:00");
        // 10:00–11:10, then the 11:10 slot is gone: next at 12:10, 13:10…
        assert_eq!(runs[1].0.to_rfc3339(), "2026-03-01T12:10:00+00:00");
        assert_eq!(runs[1].2, RunReason::Scheduled);
        for w in runs.windows(2) {
            assert!(w[1].0 >= w[0].1, "a run started before the previous ended");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_gives_exactly_one_catch_up_run() {
        let clock = TestClock::new("2026-03-01T10:00:00Z");
        let fake = Fake::new(clock.clone(), hourly(false, Some(0)));
        let f = fake.clone();
        let c = clock.clone();
        tokio::spawn(async move { run(&f, &c, "d").await });
        advance(Duration::from_secs(3600 + 60)).await; // the 11:00 run
        assert_eq!(fake.runs().len(), 1);
        // The machine sleeps 5 hours: the wall clock moves, the monotonic
        // clock does not. Slots 12:00 … 16:00 are missed; it wakes at 16:01.
        clock.jump(chrono::Duration::minutes(300));
        advance(Duration::from_secs(61)).await;
        let runs = fake.runs();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[1].2, RunReason::CatchUp);
        // Then back to the grid: next at 17:00, not a burst.
        advance(Duration::from_secs(40 * 60)).await;
        assert_eq!(fake.runs().len(), 2);
        advance(Duration::from_secs(30 * 60)).await;
        let runs = fake.runs();
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert_eq!(runs[2].0.to_rfc3339(), "2026-03-01T17:00:00+00:00");
        assert_eq!(runs[2].2, RunReason::Scheduled);
    }

    #[tokio::test(start_paused = true)]
    async fn backward_clock_jump_reschedules() {
        let clock = TestClock::new("2026-03-01T10:30:00Z");
        let fake = Fake::new(clock.clone(), hourly(false, Some(0)));
        let f = fake.clone();
        let c = clock.clone();
        tokio::spawn(async move { run(&f, &c, "d").await });
        advance(Duration::from_secs(10)).await;
        // Two hours back: it is now 08:30; the next run is 09:00, not 11:00.
        clock.jump(chrono::Duration::hours(-2));
        advance(Duration::from_secs(31 * 60 + 60)).await;
        let runs = fake.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].0.to_rfc3339(), "2026-03-01T09:00:00+00:00");
    }

    #[tokio::test(start_paused = true)]
    async fn paused_skips_and_schedule_changes_apply_at_once() {
        let clock = TestClock::new("2026-03-01T10:00:00Z");
        let fake = Fake::new(clock.clone(), hourly(false, Some(0)));
        *fake.paused.lock().unwrap() = true;
        let f = fake.clone();
        let c = clock.clone();
        tokio::spawn(async move { run(&f, &c, "d").await });
        advance(Duration::from_secs(3 * 3600 + 1800)).await;
        assert!(fake.runs().is_empty(), "paused: no scheduled runs");
        // 13:30: resumed; the 14:00 run happens.
        *fake.paused.lock().unwrap() = false;
        fake.changes.notify_waiters();
        advance(Duration::from_secs(3600)).await;
        assert_eq!(fake.runs().len(), 1);
        // 14:30: every 10 minutes from now on (14:40, 14:50, 15:00).
        fake.schedule.lock().unwrap().interval_minutes = 10;
        fake.changes.notify_waiters();
        advance(Duration::from_secs(35 * 60)).await;
        let runs = fake.runs();
        assert_eq!(runs.len(), 4, "{runs:?}");
        assert_eq!((runs[3].0 - runs[2].0).num_minutes(), 10);
    }
}
