//! Metered links: NetworkManager's `Metered` property, from a double of
//! NetworkManager on a private bus given to WaddlePerf as its system bus.
//! On a metered link the scheduled suite's bandwidth tests are skipped (and
//! the skip logged) unless `[network] allow_metered` is on; an unmetered
//! link runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::sync::{Arc, Mutex};
use support::cli_home::Home;
use support::session_bus::SessionBus;

/// The part of NetworkManager's D-Bus API WaddlePerf reads.
struct Nm {
    metered: Arc<Mutex<u32>>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl Nm {
    #[zbus(property)]
    fn metered(&self) -> u32 {
        *self.metered.lock().unwrap()
    }
}

/// Serves the double on `address` until the test ends.
fn network_manager(address: &str, metered: Arc<Mutex<u32>>) -> std::thread::JoinHandle<()> {
    let address = address.to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let _conn = zbus::connection::Builder::address(address.as_str())
                .name("org.freedesktop.NetworkManager")
                .serve_at("/org/freedesktop/NetworkManager", Nm { metered })
                .build()
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the NetworkManager double is on the bus");
    t
}

fn config(allow: bool, closed: u16) -> String {
    format!(
        "[schedule]\ninterval_minutes = 1440\nrun_on_start = false\n\n\
         [network]\ncaptive_portal_check = false\nallow_metered = {allow}\n\n\
         [[suite.tcp]]\ntarget = \"127.0.0.1:9\"\n\n\
         [[suite.bandwidth]]\nserver = \"127.0.0.1:{closed}\"\nseconds = 1\n"
    )
}

fn types(home: &Home) -> Vec<String> {
    home.ok(&["run", "--tier", "2", "--json"])
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["test_type"].to_string())
        .collect()
}

#[test]
fn bandwidth_tests_wait_for_an_unmetered_link_unless_allowed() {
    let bus = SessionBus::start();
    let metered = Arc::new(Mutex::new(1u32));
    let _nm = network_manager(&bus.address, Arc::clone(&metered));
    let closed = support::free_port();
    let with_bus = |mut h: Home| {
        h.env
            .push(("DBUS_SYSTEM_BUS_ADDRESS".into(), bus.address.clone()));
        h
    };

    let home = with_bus(Home::new(&config(false, closed)));
    let net: serde_json::Value = serde_json::from_str(&home.ok(&["network", "--json"])).unwrap();
    assert_eq!(net["metered"], true, "{net}");
    assert!(home.ok(&["network"]).contains("metered       yes"));
    let bw = "\"bandwidth\"".to_owned();
    assert!(!types(&home).contains(&bw), "the bandwidth test is skipped");
    let events = home.ok(&["events", "--json"]);
    assert!(
        events.contains("\"metered\"") && events.contains("allow_metered"),
        "the skip is logged and says how to allow it: {events}"
    );

    // Allowed: it runs (and fails: nothing listens there).
    let home = with_bus(Home::new(&config(true, closed)));
    assert!(types(&home).contains(&bw));

    // NetworkManager guesses "not metered": it runs.
    *metered.lock().unwrap() = 4;
    let home = with_bus(Home::new(&config(false, closed)));
    let net: serde_json::Value = serde_json::from_str(&home.ok(&["network", "--json"])).unwrap();
    assert_eq!(net["metered"], false, "{net}");
    assert!(types(&home).contains(&bw));

    // No NetworkManager at all: the OS does not say; nothing is skipped.
    drop(bus);
    let home = Home::new(&config(false, closed));
    let net: serde_json::Value = serde_json::from_str(&home.ok(&["network", "--json"])).unwrap();
    assert!(net.get("metered").is_none(), "{net}");
    assert!(types(&home).contains(&bw));
}
