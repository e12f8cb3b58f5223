//! Background tasks under supervision: a task that panics is logged,
//! recorded for `status`, announced as an event and started again with a
//! backoff; a clean shutdown ends it for good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waddleperf_engine::config::Config;
use waddleperf_engine::runtime::{Event, Runtime};
use waddleperf_engine::store::Store;
use waddleperf_engine::supervise;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_is_shown_and_restarted_until_shutdown() {
    let rt = Runtime::new(Store::open_in_memory().unwrap(), Config::default());
    let mut events = rt.subscribe();
    let starts = Arc::new(AtomicU32::new(0));
    let (r, n) = (rt.clone(), Arc::clone(&starts));
    let t0 = Instant::now();
    let task = supervise::spawn(rt.clone(), "flaky", move || {
        let (r, n) = (r.clone(), Arc::clone(&n));
        async move {
            let k = n.fetch_add(1, Ordering::SeqCst) + 1;
            if k <= 2 {
                panic!("boom {k}");
            }
            // The third start lives until the runtime closes.
            r.closed().await;
        }
    });
    for expected in 1..=2u32 {
        let ev = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(Event::TaskFailed {
                    task,
                    message,
                    restarts,
                }) = events.recv().await
                {
                    return (task, message, restarts);
                }
            }
        })
        .await
        .expect("a TaskFailed event");
        assert_eq!(ev.0, "flaky");
        assert_eq!(ev.2, expected);
        assert!(
            ev.1.contains(&format!("panicked: boom {expected}")),
            "{}",
            ev.1
        );
    }
    let status = rt.status().await.unwrap();
    let f = &status.task_failures["flaky"];
    assert_eq!(f.failures, 2);
    assert!(f.last_error.contains("boom 2"));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["task_failures"]["flaky"]["failures"], 2);
    // Restarted after 1 s, then 2 s.
    while starts.load(Ordering::SeqCst) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(10), "not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t0.elapsed() >= Duration::from_secs(3), "{:?}", t0.elapsed());
    rt.shutdown(Duration::from_secs(1)).await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("supervision ends with the runtime")
        .unwrap();
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "no restart after shutdown"
    );

    // A new agent starts with a clean slate.
    let rt2 = Runtime::new(Store::open_in_memory().unwrap(), Config::default());
    supervise::reset(&rt2).await;
    assert!(rt2.status().await.unwrap().task_failures.is_empty());
}
