//! Notifications for real: a private D-Bus session bus (dbus-daemon), a
//! notification server on it (a double of the desktop's, recording what it
//! is asked to show), and the runtime telling it that a target went down,
//! once, in plain words.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::servers::SilentServer;
use waddleperf::config::{Config, TcpMode, TcpTarget};
use waddleperf::notify::{self, DesktopSink, Sink};
use waddleperf::runtime::Runtime;
use waddleperf::store::Store;

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
