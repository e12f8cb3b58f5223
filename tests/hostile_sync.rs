//! The sync client against a hostile or broken server (the contract double
//! with faults injected), as real `waddleperf` processes: answers of 100 MB,
//! `Retry-After` values no clock can hold, redirects to another host, a
//! device deleted by an administrator, and `sync --json` when it cannot run.
//! Each case checks bounded time and peak memory of the process, the error
//! shown, and that nothing is lost: results still queued, none sent twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use chrono::Utc;
use std::time::Duration;
use support::cli_home::{
    blocking, config, double, results, run_measured, sign_in, text, Footprint, Home,
};
use support::unified_api::{ApiDouble, Fault};
use waddleperf_engine::store::Store;

/// A hostile answer's size.
const HUGE: usize = 100 << 20;
/// The most a `waddleperf` process may hold while refusing it: the CLI
/// idles near 15 MB; the old client took 3.4 GB.
const PEAK_RSS_LIMIT_KB: u64 = 64 * 1024;
/// The most it may take (the call's own limit is 30 s).
const TIME_LIMIT: Duration = Duration::from_secs(20);

fn bounded(what: &str, f: &Footprint) {
    println!(
        "{what}: peak RSS {} KB, {:.2} s",
        f.peak_rss_kb,
        f.elapsed.as_secs_f64()
    );
    assert!(f.peak_rss_kb > 0, "{what}: peak RSS not measured");
    assert!(
        f.peak_rss_kb < PEAK_RSS_LIMIT_KB,
        "{what}: peak RSS {} KB",
        f.peak_rss_kb
    );
    assert!(f.elapsed < TIME_LIMIT, "{what}: took {:?}", f.elapsed);
}

/// Signed in and enrolled as device 1, with `n` results waiting.
fn ready(h: &Home, n: usize) {
    sign_in(h);
    h.ok(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
    Store::open(&h.db()).unwrap().insert(&results(n)).unwrap();
}

fn sync_status(h: &Home) -> serde_json::Value {
    h.status_json()["sync"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_100_mb_are_refused_unread_and_nothing_is_lost() {
    let srv = std::sync::Arc::new(double().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let s = std::sync::Arc::clone(&srv);
    blocking(move || {
        // Login answered with 100 MB.
        s.fault(
            "/api/v1/auth/login",
            Fault::Huge {
                status: 200,
                bytes: HUGE,
            },
        );
        let cmd = h.cmd(&["login", "--username", "alice", "--password-stdin"]);
        let (o, f) = run_measured(&cmd, "correct horse\n");
        bounded("login", &f);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("larger than 4096 KiB"), "{err}");
        assert!(err.len() < 2000, "the error quotes {} bytes", err.len());

        ready(&h, 3);
        // Health answered with 100 MB: the pass stops, the error is short,
        // and what `status` keeps of it is short too.
        s.fault(
            "/health",
            Fault::Huge {
                status: 200,
                bytes: HUGE,
            },
        );
        let (o, f) = run_measured(&h.cmd(&["sync"]), "");
        bounded("sync (health)", &f);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(o.stderr.len() < 2000, "{}", o.stderr.len());
        let st = h.ok(&["status"]);
        assert!(st.len() < 4000, "status printed {} bytes", st.len());
        assert!(st.contains("larger than 4096 KiB"), "{st}");

        // An upload answered with 100 MB: the result stays queued (its
        // outcome unknown), then goes exactly once.
        s.fault(
            "/api/v1/tests/",
            Fault::Huge {
                status: 201,
                bytes: HUGE,
            },
        );
        let (o, f) = run_measured(&h.cmd(&["sync"]), "");
        bounded("sync (upload)", &f);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        // The faulted upload stays queued (others may have gone meanwhile).
        let sync = sync_status(&h);
        assert!(sync["pending"].as_u64() >= Some(1), "{sync}");
        assert_eq!(sync["dead"], 0, "{sync}");
        h.ok(&["sync"]);
        let mut ids = s.test_ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(s.test_ids().len(), 3, "none sent twice");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_beyond_any_clock_is_capped_and_never_panics() {
    let srv = std::sync::Arc::new(double().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let s = std::sync::Arc::clone(&srv);
    blocking(move || {
        ready(&h, 2);
        for (prefix, value) in [
            ("/health", "10000000000000"),
            ("/health", "18446744073709551615"),
            ("/health", "Fri, 31 Dec 9999 23:59:59 GMT"),
            ("/api/v1/tests/", "18446744073709551615"),
        ] {
            s.fault(prefix, Fault::RetryAfter(value.into()));
            let before = Utc::now();
            let o = h.wp(&["sync"]);
            assert_eq!(o.status.code(), Some(1), "{value}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("panicked"), "{value}: {err}");
            assert!(err.contains("429"), "{value}: {err}");
            // The next attempt is within the backoff cap (60 min here).
            let sync = sync_status(&h);
            let nb: chrono::DateTime<Utc> = sync["progress"]["not_before"]
                .as_str()
                .unwrap_or_else(|| panic!("{value}: no not_before in {sync}"))
                .parse()
                .unwrap();
            assert!(
                nb <= before + chrono::Duration::minutes(61),
                "{value}: next attempt {nb}"
            );
            assert_eq!(sync["dead"], 0, "{value}: {sync}");
        }
        // The server recovers: everything goes, once.
        h.ok(&["sync"]);
        assert_eq!(h.status_json()["sync"]["pending"], 0);
        assert_eq!(s.test_ids().len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_never_carry_credentials_or_results_elsewhere() {
    let srv = std::sync::Arc::new(double().await);
    let elsewhere = std::sync::Arc::new(ApiDouble::start().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let (s, other) = (
        std::sync::Arc::clone(&srv),
        std::sync::Arc::clone(&elsewhere),
    );
    blocking(move || {
        for status in [301, 302, 307, 308] {
            let location = format!("{}/api/v1/auth/login", other.url);
            s.fault(
                "/api/v1/auth/login",
                Fault::Redirect {
                    status,
                    location: location.clone(),
                },
            );
            let o = h.wp_in(
                &["login", "--username", "alice", "--password-stdin"],
                "correct horse\n",
            );
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&format!("redirects ({status}) to {location}")),
                "{err}"
            );
        }
        sign_in(&h);
        s.fault(
            "/api/v1/devices/enroll",
            Fault::Redirect {
                status: 307,
                location: format!("{}/api/v1/devices/enroll", other.url),
            },
        );
        let o = h.wp(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("redirects (307)"), "{}", text(&o));
        h.ok(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
        Store::open(&h.db()).unwrap().insert(&results(2)).unwrap();
        s.fault(
            "/api/v1/tests/",
            Fault::Redirect {
                status: 307,
                location: format!("{}/api/v1/tests/", other.url),
            },
        );
        let o = h.wp(&["sync"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let sync = sync_status(&h);
        assert!(
            sync["pending"].as_u64() >= Some(1),
            "a redirected upload stays queued: {sync}"
        );
        assert_eq!(sync["dead"], 0, "{sync}");
        assert!(
            other.requests().is_empty(),
            "the other host was sent {:?}",
            other.requests()
        );
        h.ok(&["sync"]);
        assert_eq!(s.test_ids().len(), 2);
        assert!(other.requests().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_deleted_on_the_server_keeps_results_queued_until_enrolled_again() {
    let srv = std::sync::Arc::new(double().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let s = std::sync::Arc::clone(&srv);
    blocking(move || {
        ready(&h, 2);
        assert!(h.ok(&["sync"]).contains("delivered 2 result(s)"));
        // The heartbeat never overwrites what the administrators own.
        let hb = s.state.lock().unwrap().heartbeats.last().cloned().unwrap();
        assert!(hb.1.get("status").is_none(), "heartbeat sent {}", hb.1);
        assert!(hb.1.get("last_checkin").is_some() && hb.1.get("last_sync").is_some());

        s.remove_device(1);
        Store::open(&h.db()).unwrap().insert(&results(3)).unwrap();
        let o = h.wp(&["sync"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no longer enrolled"), "{err}");
        assert!(err.contains("enroll --force"), "{err}");
        let st = h.ok(&["status"]);
        assert!(st.contains("enrollment    LOST since"), "{st}");
        let sync = sync_status(&h);
        assert_eq!(sync["pending"], 3, "{sync}");
        assert_eq!(sync["dead"], 0, "nothing dead-lettered: {sync}");
        assert!(sync["enrollment"]["lost"]["reason"]
            .as_str()
            .unwrap()
            .contains("Device not found"));
        // Further passes send nothing while the enrollment is lost.
        let uploads = s.count("POST", "/api/v1/tests/");
        assert_eq!(h.wp(&["sync"]).status.code(), Some(1));
        assert_eq!(s.count("POST", "/api/v1/tests/"), uploads);

        let out = h.ok(&[
            "enroll",
            "--force",
            "--org",
            "1",
            "--secret",
            "fleet-secret",
        ]);
        assert!(out.contains("device 2"), "{out}");
        assert!(h.ok(&["sync"]).contains("delivered 3 result(s)"));
        assert_eq!(s.test_ids().len(), 5);
        let sync = sync_status(&h);
        assert_eq!(
            (sync["pending"].clone(), sync["dead"].clone()),
            (0.into(), 0.into())
        );
        assert!(sync["enrollment"].get("lost").is_none(), "{sync}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_json_says_why_it_cannot_run() {
    let srv = std::sync::Arc::new(double().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    blocking(move || {
        let o = h.wp(&["sync", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&o)));
        assert_eq!(v["ok"], false);
        assert_eq!(v["kind"], "not_signed_in");
        assert!(v["error"].as_str().unwrap().contains("waddleperf login"));
    })
    .await;
}
