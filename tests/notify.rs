//! Notifications for real: a private D-Bus session bus (dbus-daemon), a
//! notification server on it (a double of the desktop's, recording what it
//! is asked to show), and the runtime telling it that a target went down,
//! once, in plain words.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::servers::SilentServer;
use waddleperf_engine::config::{Config, TcpMode, TcpTarget};
use waddleperf_engine::notify::{self, DesktopSink, Sink};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::store::Store;

type Shown = Arc<Mutex<Vec<(String, String, String)>>>;

struct Server {
    shown: Shown,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut s = self.shown.lock().unwrap();
        s.push((app_name, summary, body));
        s.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "waddleperf".into(), "1".into(), "1.2".into())
    }

    fn close_notification(&self, _id: u32) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changes_and_escalations_reach_the_desktop_once_each() {
    let bus = support::session_bus::SessionBus::start();
    let address = bus.address.clone();
    // The only process-wide setting this test binary changes.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
    let shown: Shown = Arc::default();
    let _conn = zbus::connection::Builder::address(address.as_str())
        .name("org.freedesktop.Notifications")
        .serve_at(
            "/org/freedesktop/Notifications",
            Server {
                shown: Arc::clone(&shown),
            },
        )
        .build()
        .await
        .unwrap();

    // The sink alone.
    tokio::task::spawn_blocking(|| DesktopSink.show("WaddlePerf: hello", "a body"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        shown.lock().unwrap().pop(),
        Some((
            "WaddlePerf".into(),
            "WaddlePerf: hello".into(),
            "a body".into()
        ))
    );

    // Through the runtime: a closed port is down (one notification on the
    // first run, none after while it stays down); the second breach in a row
    // escalates to tier 2 (one more); a third run changes nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let silent = SilentServer::start(b"");
    // Only these targets: none of the default suite's.
    let mut cfg = Config {
        suite: Default::default(),
        ..Config::default()
    };
    cfg.suite.tcp = vec![
        toml::Spanned::new(0..0, TcpTarget::new(addr.to_string(), TcpMode::Raw)),
        toml::Spanned::new(0..0, TcpTarget::new(silent.addr.to_string(), TcpMode::Raw)),
    ];
    let rt = Runtime::new(Store::open_in_memory().unwrap(), cfg);
    let task = notify::spawn(rt.clone(), Arc::new(DesktopSink));
    for _ in 0..3 {
        rt.run_now().await.unwrap();
    }
    let t = std::time::Instant::now();
    while shown.lock().unwrap().len() < 2 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.shutdown(Duration::from_secs(1)).await;
    task.await.unwrap();
    let shown = shown.lock().unwrap().clone();
    println!("{shown:?}");
    assert_eq!(shown.len(), 2, "one notification per change: {shown:?}");
    let (app, title, body) = &shown[0];
    assert_eq!(app, "WaddlePerf");
    assert_eq!(title, &format!("WaddlePerf: {addr} is down"));
    assert!(
        body.starts_with(&format!("{addr} is down: tcp {addr} failed: refused")),
        "{body}"
    );
    let (_, title, body) = &shown[1];
    assert_eq!(title, "WaddlePerf: running tier 2 tests");
    assert!(
        body.starts_with("Escalated to tier 2 after 2 runs"),
        "{body}"
    );
}

/// Records what it is asked to show (the D-Bus path is the test above's).
struct Recorder(Shown);

impl Sink for Recorder {
    fn show(&self, title: &str, body: &str) -> Result<(), String> {
        let mut s = self.0.lock().unwrap();
        s.push(("WaddlePerf".into(), title.into(), body.into()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_notifications_off_and_changing_their_interval_apply_at_once() {
    let held = support::closed_port();
    let port = held.port;
    let mut cfg = Config {
        suite: Default::default(),
        ..Config::default()
    };
    cfg.autoperf.enabled = false;
    cfg.notifications.enabled = false;
    cfg.notifications.min_interval_minutes = 30;
    cfg.suite.tcp = vec![toml::Spanned::new(
        0..0,
        TcpTarget::new(format!("127.0.0.1:{port}"), TcpMode::Raw),
    )];
    let rt = Runtime::new(Store::open_in_memory().unwrap(), cfg.clone());
    let shown: Shown = Arc::default();
    let task = notify::spawn(rt.clone(), Arc::new(Recorder(Arc::clone(&shown))));
    let count = || shown.lock().unwrap().len();
    // Waits for `n` notes; then a moment more to see that no other follows.
    let settle = |n: usize| {
        let shown = Arc::clone(&shown);
        async move {
            let t = std::time::Instant::now();
            while shown.lock().unwrap().len() < n && t.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };

    // Off: the target goes down, nothing is shown.
    rt.run_now().await.unwrap();
    settle(0).await;
    assert_eq!(count(), 0, "notifications are off");

    // On: the target comes back; one note.
    cfg.notifications.enabled = true;
    rt.set_config(cfg.clone()).unwrap();
    drop(held);
    let up = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    rt.run_now().await.unwrap();
    settle(1).await;
    assert_eq!(count(), 1, "{:?}", shown.lock().unwrap());

    // Down again within the 30-minute interval: held back.
    drop(up);
    rt.run_now().await.unwrap();
    settle(1).await;
    assert_eq!(count(), 1, "rate-limited: {:?}", shown.lock().unwrap());

    // The interval set to 0 at runtime: the next change is shown.
    cfg.notifications.min_interval_minutes = 0;
    rt.set_config(cfg.clone()).unwrap();
    let _up = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    rt.run_now().await.unwrap();
    settle(2).await;
    assert_eq!(count(), 2, "{:?}", shown.lock().unwrap());
    rt.shutdown(Duration::from_secs(1)).await;
    task.await.unwrap();
}
