//! The runtime handle: one run at a time, joiners share it, events in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::servers::SilentServer;
use waddleperf::config::{Config, TcpMode, TcpTarget};
use waddleperf::runtime::{Event, Runtime};
use waddleperf::store::{HistoryQuery, Store};

fn config(targets: Vec<TcpTarget>) -> Config {
    let mut cfg = Config::default();
    cfg.suite.http.clear();
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
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(rt.is_running().await, "the first run is still going");
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

    // Events: started, one per result, finished — for that one run.
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    assert!(
        matches!(seen.first(), Some(Event::RunStarted { total: 2, .. })),
        "{seen:?}"
    );
    assert!(matches!(
        seen.get(1),
        Some(Event::Result {
            done: 1,
            total: 2,
            ..
        })
    ));
    assert!(matches!(
        seen.get(2),
        Some(Event::Result {
            done: 2,
            total: 2,
            ..
        })
    ));
    match seen.get(3) {
        Some(Event::RunFinished { summary }) => assert_eq!(summary.run_id, a.run_id),
        other => panic!("expected RunFinished, got {other:?}"),
    }
    assert_eq!(seen.len(), 4);

    // After it finished, a new request starts a new run.
    let c = rt.run_now().await.unwrap();
    assert_ne!(c.run_id, a.run_id);
    let status = rt.status().await.unwrap();
    assert!(!status.running);
    assert_eq!(status.store.results, 4);
    assert_eq!(status.last_run.unwrap().run_id, c.run_id);
    assert_eq!(status.targets, 2);
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
