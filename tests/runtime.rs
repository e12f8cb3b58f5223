//! The runtime handle: one run at a time, joiners share it, events in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::time::Duration;
use support::servers::SilentServer;
use waddleperf_engine::autoperf::Health;
use waddleperf_engine::config::{Config, TcpMode, TcpTarget};
use waddleperf_engine::runtime::{Event, RunReason, Runtime, RuntimeError};
use waddleperf_engine::store::{HistoryQuery, Store};

fn config(targets: Vec<TcpTarget>) -> Config {
    // Only these targets: none of the default suite's.
    let mut cfg = Config {
        suite: Default::default(),
        ..Config::default()
    };
    cfg.suite.tcp = targets
        .into_iter()
        .map(|t| toml::Spanned::new(0..0, t))
        .collect();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_join_one_run_and_events_come_in_order() {
    // A silent server in SSH mode keeps the run going until its timeout.
    let silent = SilentServer::start(b"");
    let mut slow = TcpTarget::new(silent.addr.to_string(), TcpMode::Ssh);
    slow.timeout_ms = Some(600);
    let fast = TcpTarget::new(silent.addr.to_string(), TcpMode::Raw);
    let rt = Runtime::new(Store::open_in_memory().unwrap(), config(vec![slow, fast]));
    let mut events = rt.subscribe();

    let (a, b) = tokio::join!(rt.run_now(), async {
        // Join once the first run has started (its slow test takes 600 ms).
        while !rt.is_running().await {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        rt.run_now().await
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.run_id, b.run_id,
        "the second request joined the first run"
    );
    assert_eq!(a.results.len(), 2);
    assert_eq!(a.failed(), 1, "the silent SSH target times out");
    let stored = rt.history(HistoryQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 2, "one run stored, not two");

    // Run events: started, a test started and a result per test, health
    // news, finished — for that one run, in that order.
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    assert!(
        matches!(
            seen.first(),
            Some(Event::RunStarted {
                total: 2,
                reason: RunReason::OnDemand,
                ..
            })
        ),
        "{seen:?}"
    );
    let started = seen
        .iter()
        .filter(|e| matches!(e, Event::TestStarted { .. }))
        .count();
    assert_eq!(started, 2, "{seen:?}");
    let results: Vec<(usize, usize)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Result { done, total, .. } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(results, vec![(1, 2), (2, 2)]);
    let health: Vec<(Option<Health>, Health)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::HealthChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(health.len(), 2, "first sight of both targets: {seen:?}");
    assert!(health.contains(&(None, Health::Ok)) && health.contains(&(None, Health::Down)));
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::OverallHealth {
            health: Health::Down
        }
    )));
    match seen.last() {
        Some(Event::RunFinished { summary }) => assert_eq!(summary.run_id, a.run_id),
        other => panic!("expected RunFinished last, got {other:?}"),
    }
    let first_result = seen
        .iter()
        .position(|e| matches!(e, Event::Result { .. }))
        .unwrap();
    let first_health = seen
        .iter()
        .position(|e| matches!(e, Event::HealthChanged { .. }))
        .unwrap();
    assert!(first_result < first_health, "health follows the results");

    // After it finished, a new request starts a new run.
    let c = rt.run_now().await.unwrap();
    assert_ne!(c.run_id, a.run_id);
    let status = rt.status().await.unwrap();
    assert!(!status.running);
    assert_eq!(status.store.results, 4);
    assert_eq!(status.last_run.unwrap().run_id, c.run_id);
    assert_eq!(status.targets, 2);
    assert_eq!(status.health, Some(Health::Down));
    assert_eq!(status.targets_health.len(), 2);
    // Unchanged health: no new health events on the third run.
    let mut events = rt.subscribe();
    rt.run_now().await.unwrap();
    while let Ok(ev) = events.try_recv() {
        assert!(!matches!(ev, Event::HealthChanged { .. }), "{ev:?}");
    }
}

#[tokio::test]
async fn settings_are_validated_before_they_apply() {
    let rt = Runtime::new(Store::open_in_memory().unwrap(), Config::default());
    let mut bad = Config::default();
    bad.schedule.interval_minutes = 0;
    let e = rt.set_config(bad).unwrap_err();
    assert!(e.to_string().contains("schedule.interval_minutes"), "{e}");
    assert_eq!(rt.config().schedule.interval_minutes, 60, "unchanged");
    let mut good = Config::default();
    good.schedule.interval_minutes = 15;
    rt.set_config(good).unwrap();
    assert_eq!(rt.config().schedule.interval_minutes, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_is_kept_in_the_database_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let rt = Runtime::new(Store::open(&db).unwrap(), config(Vec::new()));
    assert!(!rt.is_paused().await.unwrap());
    let mut events = rt.subscribe();
    rt.pause().await.unwrap();
    rt.pause().await.unwrap(); // no second event
    assert!(matches!(events.try_recv(), Ok(Event::Paused)));
    assert!(events.try_recv().is_err());
    drop(rt);

    let rt = Runtime::new(Store::open(&db).unwrap(), config(Vec::new()));
    assert!(rt.is_paused().await.unwrap(), "paused survives a restart");
    assert!(rt.status().await.unwrap().paused);
    // Another process (another store on the same file) sees a resume at once.
    let other = Runtime::new(Store::open(&db).unwrap(), config(Vec::new()));
    other.resume().await.unwrap();
    assert!(!rt.is_paused().await.unwrap());
    let log = rt.event_log(None, None, 10).await.unwrap();
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["paused", "resumed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_unfinished_tests_and_refuses_new_runs() {
    let silent = SilentServer::start(b"");
    let mut slow = TcpTarget::new(silent.addr.to_string(), TcpMode::Ssh);
    slow.timeout_ms = Some(20_000);
    let fast = TcpTarget::new(silent.addr.to_string(), TcpMode::Raw);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let rt = Runtime::new(Store::open(&db).unwrap(), config(vec![slow, fast]));
    let mut events = rt.subscribe();
    let run = tokio::spawn({
        let rt = rt.clone();
        async move { rt.run_now().await }
    });
    // Shut down once the fast test is stored and the slow one still waits.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Result { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await
    .expect("the fast test's result");
    let t = std::time::Instant::now();
    rt.shutdown(Duration::from_millis(200)).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown waited for the slow test"
    );
    let summary = run.await.unwrap().unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.results.len(), 1, "only the finished test is kept");
    assert!(matches!(
        rt.run_now().await,
        Err(RuntimeError::ShuttingDown)
    ));
    drop(rt);

    let store = Store::open(&db).unwrap();
    assert!(store.check().unwrap().is_empty());
    let stored = store.history(&HistoryQuery::default()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], summary.results[0]);
    assert_eq!(store.stats().unwrap().outbox_pending, 1);
}
