//! The outbox worker against the contract double of the unified API: every
//! result delivered once and in order, through a week offline, a connection
//! dropped after the server stored a result, 401 → refresh, a session the
//! server ended, 429 with Retry-After, and a refused result retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Duration;
use support::unified_api::{ApiDouble, Fault, User};
use waddleperf_engine::config::Config;
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::runtime::{Event, Runtime};
use waddleperf_engine::store::Store;
use waddleperf_engine::sync::secrets::{SecretPreference, SecretStoreKind};
use waddleperf_engine::sync::{SyncError, Syncer};

struct Rig {
    _dir: tempfile::TempDir,
    srv: ApiDouble,
    rt: Runtime,
    sync: Syncer,
}

fn alice() -> User {
    User {
        id: 1,
        username: "alice".into(),
        email: "alice@example.com".into(),
        password: "correct horse".into(),
        mfa_code: None,
        active: true,
    }
}

/// A runtime signed in to a fresh double and enrolled in organization 1.
async fn rig(concurrency: u32) -> Rig {
    let srv = ApiDouble::start().await;
    srv.add_user(alice());
    srv.add_secret(1, "fleet-secret");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.sync.secret_store = SecretPreference::File;
    cfg.sync.concurrency = concurrency;
    cfg.sync.server = Some(srv.url.clone());
    let store = Store::open(&dir.path().join("w.db")).unwrap();
    let rt = Runtime::new(store, cfg);
    let sync = Syncer::new(rt.clone(), dir.path());
    let a = sync
        .login(None, "alice", "correct horse", None)
        .await
        .unwrap();
    assert_eq!(a.secret_store, SecretStoreKind::File);
    let e = sync
        .enroll(None, 1, "fleet-secret", Some("ci-laptop"), false)
        .await
        .unwrap();
    assert_eq!(e.organization_id, 1);
    Rig {
        _dir: dir,
        srv,
        rt,
        sync,
    }
}

fn result_at(target: &str, at: DateTime<Utc>) -> Measurement {
    let mut m = Measurement::begin(TestType::Tcp, target);
    m.started_at = at;
    m.success = true;
    m.duration_ms = 1.5;
    m.latency_ms = Some(1.2);
    m.metrics.connect_ms = Some(1.2);
    m
}

async fn insert(rt: &Runtime, results: Vec<Measurement>) -> Vec<String> {
    let ids = results.iter().map(|m| m.id.to_string()).collect();
    rt.with_store(move |s| s.insert(&results)).await.unwrap();
    ids
}

async fn pending(rt: &Runtime) -> (u64, u64) {
    let s = rt.with_store(|s| s.stats()).await.unwrap();
    (s.outbox_pending, s.outbox_dead)
}

/// Every id once on the server (the double refuses duplicates, so also no
/// result may be missing).
fn assert_all_once(srv: &ApiDouble, local: &[String]) {
    let server = srv.test_ids();
    let mut sorted = server.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), server.len(), "duplicates on the server");
    let mut want = local.to_vec();
    want.sort();
    assert_eq!(sorted, want, "the server's set differs from the local one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_results_arrive_once_and_in_order() {
    let r = rig(1).await;
    let t0 = Utc::now() - ChronoDuration::hours(1000);
    let local = insert(
        &r.rt,
        (0..1000)
            .map(|i| {
                result_at(
                    &format!("10.0.0.{}:443", i % 250),
                    t0 + ChronoDuration::hours(i),
                )
            })
            .collect(),
    )
    .await;
    let mut events = r.rt.subscribe();
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(
        (s.delivered, s.remaining, s.dead_total),
        (1000, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.error, None);
    assert_all_once(&r.srv, &local);
    // In order: one upload in flight, so the server got them exactly in the
    // order they were measured.
    assert_eq!(r.srv.test_ids(), local);
    // The body the server kept carries the enrolled ids and canonical names.
    let row = r.srv.state.lock().unwrap().tests[0].clone();
    assert_eq!(row["organization_id"], 1);
    assert_eq!(row["device_id"], 1);
    assert_eq!(row["metadata"]["test_type"], "tcp");
    assert_eq!(row["metrics"]["connect_ms"], 1.2);
    // A heartbeat after the pass; progress events on the handle.
    assert_eq!(r.srv.state.lock().unwrap().heartbeats.len(), 1);
    let mut seen = (false, false, false);
    while let Ok(ev) = events.try_recv() {
        match ev {
            Event::SyncStarted { pending } => {
                assert_eq!(pending, 1000);
                seen.0 = true
            }
            Event::SyncProgress { .. } => seen.1 = true,
            Event::SyncFinished { summary } => {
                assert_eq!(summary.delivered, 1000);
                seen.2 = true
            }
            _ => {}
        }
    }
    assert_eq!(seen, (true, true, true));
    // A second pass sends nothing again.
    let posts = r.srv.count("POST", "/api/v1/tests/");
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(s.delivered, 0);
    assert_eq!(r.srv.count("POST", "/api/v1/tests/"), posts);
    assert_eq!(posts, 1000);
}

/// The worker's own timing (`next_pass_at`) drives a simulated wall clock
/// through a week: a result every hour while the server is down, then the
/// server comes back.
/// With several uploads in flight they start in order; neighbours may land
/// swapped, but each lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_deliver_each_once() {
    let r = rig(4).await;
    let t0 = Utc::now() - ChronoDuration::hours(300);
    let local = insert(
        &r.rt,
        (0..300)
            .map(|i| result_at("192.0.2.9:443", t0 + ChronoDuration::hours(i)))
            .collect(),
    )
    .await;
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!((s.delivered, s.remaining), (300, 0));
    assert_all_once(&r.srv, &local);
    let server = r.srv.test_ids();
    let worst = server
        .iter()
        .enumerate()
        .map(|(i, id)| i.abs_diff(local.iter().position(|l| l == id).unwrap()))
        .max()
        .unwrap();
    println!("300 results, 4 in flight: largest displacement {worst}");
}

#[tokio::test]
async fn a_week_offline_loses_nothing_and_sends_nothing_twice() {
    let r = rig(2).await;
    let cap = ChronoDuration::minutes(60);
    r.srv.set_down(true);
    let t0 = Utc::now();
    let mut now = t0;
    let mut local = Vec::new();
    let mut passes = 0;
    let mut waits = Vec::new();
    for hour in 0..168 {
        let produced = t0 + ChronoDuration::hours(hour);
        // The worker's passes before this hour's result.
        loop {
            let next = r.sync.next_pass_at(now).await.unwrap();
            if next > produced {
                break;
            }
            waits.push((next - now).num_seconds());
            now = next.max(now);
            let s = r.sync.pass(now).await.unwrap();
            assert!(s.error.is_some(), "the server is down: {s:?}");
            passes += 1;
        }
        now = produced;
        local.extend(insert(&r.rt, vec![result_at("192.0.2.1:443", produced)]).await);
    }
    let back = t0 + ChronoDuration::hours(168);
    now = back;
    r.srv.set_down(false);
    let mut delivered = 0;
    while delivered < 168 {
        let next = r.sync.next_pass_at(now).await.unwrap();
        assert!(
            next - back <= cap,
            "next pass {next} is beyond the backoff cap"
        );
        now = next.max(now);
        let s = r.sync.pass(now).await.unwrap();
        delivered += s.delivered;
    }
    let caught_up = now - back;
    println!(
        "a week offline: {passes} passes while down (waits {}..{} s), caught up {} s after the server returned",
        waits.iter().min().unwrap(),
        waits.iter().max().unwrap(),
        caught_up.num_seconds()
    );
    // Backoff: far fewer passes than one a minute; never longer than the cap.
    assert!(passes < 168 * 6, "{passes} passes in a week");
    assert!(waits.iter().all(|w| *w <= cap.num_seconds()));
    assert!(caught_up <= cap);
    assert_all_once(&r.srv, &local);
    assert_eq!(r.srv.count("POST", "/api/v1/tests/"), 168);
    assert_eq!(pending(&r.rt).await, (0, 0));
}

#[tokio::test]
async fn a_dropped_answer_after_the_server_stored_is_settled_by_reading_back() {
    let r = rig(1).await;
    let t0 = Utc::now() - ChronoDuration::hours(3);
    let local = insert(
        &r.rt,
        (0..3)
            .map(|i| result_at("192.0.2.2:443", t0 + ChronoDuration::hours(i)))
            .collect(),
    )
    .await;
    r.srv.fault("/api/v1/tests/", Fault::DropAfterWork);
    let now = Utc::now();
    let s = r.sync.pass(now).await.unwrap();
    assert!(s.error.is_some(), "{s:?}");
    assert_eq!(s.delivered, 0);
    assert_eq!(
        r.srv.test_ids(),
        vec![local[0].clone()],
        "stored, unacknowledged"
    );
    // Retry: the server answers the duplicate with its generic 400; reading
    // back settles it as delivered.
    let later = now + ChronoDuration::hours(2);
    let s = r.sync.pass(later).await.unwrap();
    assert_eq!((s.delivered, s.settled, s.dead_total), (3, 1, 0), "{s:?}");
    assert_all_once(&r.srv, &local);
    assert_eq!(r.srv.count("GET", "/api/v1/tests/"), 1, "one read-back");
}

#[tokio::test]
async fn unauthorized_refreshes_once_and_retries() {
    let r = rig(1).await;
    let local = insert(&r.rt, vec![result_at("192.0.2.3:443", Utc::now())]).await;
    r.srv.fault("/api/v1/tests/", Fault::Status(401));
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(s.delivered, 1, "{s:?}");
    assert_eq!(r.srv.count("POST", "/api/v1/auth/refresh"), 1);
    assert_eq!(r.srv.count("POST", "/api/v1/tests/"), 2);
    assert_all_once(&r.srv, &local);
}

#[tokio::test]
async fn an_access_token_near_expiry_is_refreshed_ahead() {
    let srv_ttl = 120; // seconds: less than the 10 minutes kept in hand
    let r = rig(1).await;
    r.srv.state.lock().unwrap().access_ttl_s = srv_ttl;
    r.sync
        .login(None, "alice", "correct horse", None)
        .await
        .unwrap();
    insert(&r.rt, vec![result_at("192.0.2.4:443", Utc::now())]).await;
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(s.delivered, 1);
    let log = r.srv.state.lock().unwrap().log.clone();
    let refresh = log.iter().position(|(_, p)| p == "/api/v1/auth/refresh");
    let upload = log.iter().position(|(_, p)| p == "/api/v1/tests/");
    assert!(refresh.is_some() && refresh < upload, "{log:?}");
}

#[tokio::test]
async fn a_refused_refresh_signs_out_and_results_keep_queueing() {
    let r = rig(1).await;
    let mut events = r.rt.subscribe();
    let mut local = insert(&r.rt, vec![result_at("192.0.2.5:443", Utc::now())]).await;
    r.srv.fault("/api/v1/tests/", Fault::Status(401));
    r.srv.fault("/api/v1/auth/refresh", Fault::RefreshRefused);
    let e = r.sync.pass(Utc::now()).await.unwrap_err();
    assert!(matches!(e, SyncError::SignedOut { .. }), "{e}");
    assert!(e.to_string().contains("Refresh token revoked"), "{e}");
    let account = r.sync.account().await.unwrap().unwrap();
    assert!(account.signed_out.is_some());
    let mut told = false;
    while let Ok(ev) = events.try_recv() {
        if let Event::SignedOut { message } = ev {
            assert!(message.contains("sign in again"), "{message}");
            told = true;
        }
    }
    assert!(told, "the user is told");
    // Nothing lost, nothing dead; new results queue without touching the server.
    local.extend(insert(&r.rt, vec![result_at("192.0.2.5:443", Utc::now())]).await);
    assert_eq!(pending(&r.rt).await, (2, 0));
    let before = r.srv.state.lock().unwrap().log.len();
    assert!(matches!(
        r.sync.pass(Utc::now()).await,
        Err(SyncError::SignedOut { .. })
    ));
    assert_eq!(r.srv.state.lock().unwrap().log.len(), before);
    let status = r.sync.status().await.unwrap();
    assert_eq!(status.pending, 2);
    // Signing in again resumes.
    r.sync
        .login(None, "alice", "correct horse", None)
        .await
        .unwrap();
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(s.delivered, 2);
    assert_all_once(&r.srv, &local);
}

#[tokio::test]
async fn rate_limits_and_server_errors_back_off() {
    let r = rig(1).await;
    let local = insert(&r.rt, vec![result_at("192.0.2.6:443", Utc::now())]).await;
    r.srv.fault(
        "/api/v1/tests/",
        Fault::TooMany {
            retry_after_s: Some(600),
        },
    );
    let now = Utc::now();
    let s = r.sync.pass(now).await.unwrap();
    assert!(s.error.as_deref().unwrap().contains("429"), "{s:?}");
    let next = s.next_attempt_at.unwrap();
    assert!(
        next >= now + ChronoDuration::seconds(600),
        "Retry-After honoured: {next}"
    );
    assert!(r.sync.next_pass_at(now).await.unwrap() >= now + ChronoDuration::seconds(600));
    // Too early: the row is not due, nothing is sent.
    let s = r
        .sync
        .pass(now + ChronoDuration::seconds(60))
        .await
        .unwrap();
    assert_eq!(s.delivered, 0);
    assert_eq!(r.srv.count("POST", "/api/v1/tests/"), 1);
    // A 500 backs off too.
    r.srv.fault("/api/v1/tests/", Fault::Status(500));
    let t = now + ChronoDuration::seconds(601);
    let s = r.sync.pass(t).await.unwrap();
    assert!(s.error.as_deref().unwrap().contains("500"), "{s:?}");
    let s = r.sync.pass(t + ChronoDuration::hours(2)).await.unwrap();
    assert_eq!(s.delivered, 1);
    assert_all_once(&r.srv, &local);
}

#[tokio::test]
async fn a_refused_result_is_a_dead_letter_until_retried() {
    let r = rig(2).await;
    let t0 = Utc::now() - ChronoDuration::hours(3);
    let long = format!("https://refused.example/{}", "x".repeat(600));
    let local = insert(
        &r.rt,
        vec![
            result_at("192.0.2.7:443", t0),
            result_at(&long, t0 + ChronoDuration::hours(1)),
            result_at("192.0.2.7:443", t0 + ChronoDuration::hours(2)),
        ],
    )
    .await;
    r.srv.refuse_name("refused.example");
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!(
        (s.delivered, s.dead_lettered, s.remaining),
        (2, 1, 0),
        "{s:?}"
    );
    let dead = r.rt.with_store(|s| s.dead_letters()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].result_id.to_string(), local[1]);
    assert_eq!(dead[0].error, "400: Failed to create test result");
    // The administrator fixes the server; the user retries.
    r.srv.accept_all();
    assert_eq!(r.sync.retry_dead(None).await.unwrap(), 1);
    let s = r.sync.pass(Utc::now()).await.unwrap();
    assert_eq!((s.delivered, s.dead_total), (1, 0));
    assert_all_once(&r.srv, &local);
}

#[tokio::test]
async fn enrollment_happens_once() {
    let r = rig(1).await;
    let e = r
        .sync
        .enroll(None, 1, "fleet-secret", None, false)
        .await
        .unwrap_err();
    assert!(matches!(e, SyncError::AlreadyEnrolled { .. }), "{e}");
    assert_eq!(r.srv.state.lock().unwrap().devices.len(), 1);
    let wrong = r
        .sync
        .enroll(None, 1, "nope", None, true)
        .await
        .unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains("Invalid or expired enrollment secret"),
        "{wrong}"
    );
}

#[tokio::test]
async fn the_worker_uploads_after_a_run_and_stops_with_the_runtime() {
    let r = rig(1).await;
    let mut cfg = r.rt.config();
    cfg.sync.spread_seconds = 1;
    r.rt.set_config(cfg).unwrap();
    let task = waddleperf_engine::sync::worker::spawn(
        r.sync.clone(),
        std::sync::Arc::new(waddleperf_engine::schedule::SystemClock),
    );
    // The first pass (nothing waiting) happens at once.
    for _ in 0..100 {
        if !r.srv.state.lock().unwrap().heartbeats.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let local = insert(&r.rt, vec![result_at("192.0.2.8:443", Utc::now())]).await;
    r.sync.sync_soon();
    for _ in 0..100 {
        if r.srv.test_ids().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_all_once(&r.srv, &local);
    r.rt.shutdown(Duration::from_secs(1)).await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the worker stops with the runtime")
        .unwrap();
}

#[tokio::test]
async fn a_sync_by_hand_tries_results_still_backing_off() {
    let r = rig(1).await;
    let local = insert(&r.rt, vec![result_at("192.0.2.11:443", Utc::now())]).await;
    r.srv.fault(
        "/api/v1/tests/",
        Fault::TooMany {
            retry_after_s: Some(3600),
        },
    );
    let now = Utc::now();
    assert!(r.sync.pass(now).await.unwrap().error.is_some());
    let soon = now + ChronoDuration::seconds(60);
    assert_eq!(r.sync.pass(soon).await.unwrap().delivered, 0, "backing off");
    assert_eq!(
        r.sync.pass_all(soon).await.unwrap().delivered,
        1,
        "asked for"
    );
    assert_all_once(&r.srv, &local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_leaves_the_machine_only_as_far_as_the_setting_allows() {
    use waddleperf_engine::config::NetworkSharing;
    use waddleperf_engine::netctx::{LinkType, NetworkContext};
    let r = rig(1).await;
    let ctx = NetworkContext::new(NetworkContext {
        iface: "wlan9".into(),
        link_type: LinkType::Wifi,
        local_ip: Some("192.168.77.23".into()),
        gateway_ip: Some("192.168.77.1".into()),
        gateway_mac: Some("02:00:5e:10:20:30".into()),
        dns_servers: vec!["192.168.77.1".into()],
        ssid: Some("Cafe Wi-Fi".into()),
        bssid: Some("02:00:5e:10:20:31".into()),
        wifi_rssi_dbm: Some(-61),
        ..NetworkContext::default()
    });
    let id = ctx.network_id.clone();
    let i = id.clone();
    r.rt.with_store(move |s| {
        s.upsert_network(&ctx, Utc::now())?;
        s.set_network_label(&i, "Corner cafe").map(drop)
    })
    .await
    .unwrap();
    for (sharing, target) in [
        (NetworkSharing::None, "none.example:1"),
        (NetworkSharing::Id, "id.example:1"),
        (NetworkSharing::Everything, "all.example:1"),
    ] {
        let mut cfg = r.rt.config();
        cfg.sync.network_context = sharing;
        r.rt.set_config(cfg).unwrap();
        let mut m = result_at(target, Utc::now());
        m.network_id = Some(id.clone());
        insert(&r.rt, vec![m]).await;
        r.sync.pass_all(Utc::now()).await.unwrap();
    }
    let rows = r.srv.state.lock().unwrap().tests.clone();
    let row = |target: &str| {
        rows.iter()
            .find(|t| t["name"] == format!("tcp {target}"))
            .cloned()
            .unwrap_or_else(|| panic!("{target} not uploaded: {rows:?}"))
    };
    let raw = ["Cafe", "Corner", "192.168.77", "02:00:5e", "wlan9"];
    let none = row("none.example:1");
    assert!(none["metadata"].get("network_id").is_none(), "{none}");
    let id_only = row("id.example:1");
    assert_eq!(id_only["metadata"]["network_id"], id.as_str());
    for (what, body) in [("none", &none), ("id", &id_only)] {
        for r in raw {
            assert!(
                !body.to_string().contains(r),
                "{what}: {r} left the machine: {body}"
            );
        }
    }
    let all = row("all.example:1");
    let n = &all["metadata"]["network"];
    assert_eq!(all["metadata"]["network_id"], id.as_str());
    assert_eq!(n["ssid"], "Cafe Wi-Fi");
    assert_eq!(n["bssid"], "02:00:5e:10:20:31");
    assert_eq!(n["gateway_ip"], "192.168.77.1");
    assert_eq!(n["wifi_rssi_dbm"], -61);
    assert_eq!(n["label"], "Corner cafe");
}
