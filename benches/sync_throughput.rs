//! Sync throughput: results per second from the outbox to the unified API
//! contract double on loopback, at 1, 2 and 4 uploads in flight, against the
//! bare client posting the same bodies (no store bookkeeping) in the same
//! run. `cargo bench --bench sync_throughput` prints a Markdown table
//! (figures are recorded in docs/benchmarks.md). Compare the ratios: the
//! machine is shared and absolute rates vary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit::unified_api;

use chrono::{Duration as ChronoDuration, Utc};
use std::time::Instant;
use unified_api::{ApiDouble, User};
use waddleperf_engine::config::Config;
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::store::Store;
use waddleperf_engine::sync::api::{Api, EnrollRequest};
use waddleperf_engine::sync::payload::{upload_body, Destination};
use waddleperf_engine::sync::secrets::SecretPreference;
use waddleperf_engine::sync::Syncer;

const N: usize = 2_000;

fn results(n: usize) -> Vec<Measurement> {
    let t0 = Utc::now() - ChronoDuration::hours(n as i64);
    (0..n)
        .map(|i| {
            let mut m = Measurement::begin(TestType::Http, format!("https://t{}.example/", i % 20));
            m.started_at = t0 + ChronoDuration::hours(i as i64);
            m.success = true;
            m.duration_ms = 80.0;
            m.latency_ms = Some(40.0);
            m.metrics.dns_ms = Some(2.0);
            m.metrics.connect_ms = Some(10.0);
            m.metrics.tls_ms = Some(20.0);
            m.metrics.ttfb_ms = Some(40.0);
            m.metrics.total_ms = Some(80.0);
            m.metrics.status_code = Some(200);
            m
        })
        .collect()
}

async fn double() -> ApiDouble {
    let srv = ApiDouble::start().await;
    srv.add_user(User {
        id: 1,
        username: "bench".into(),
        email: "bench@example.com".into(),
        password: "pw".into(),
        mfa_code: None,
        active: true,
    });
    srv.add_secret(1, "s");
    srv
}

/// The worker draining N results; results per second.
async fn worker(concurrency: u32) -> f64 {
    let srv = double().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.sync.secret_store = SecretPreference::File;
    cfg.sync.concurrency = concurrency;
    let store = Store::open(&dir.path().join("b.db")).unwrap();
    let rt = Runtime::new(store, cfg);
    let sync = Syncer::new(rt.clone(), dir.path());
    sync.login(Some(&srv.url), "bench", "pw", None)
        .await
        .unwrap();
    sync.enroll(None, 1, "s", None, false).await.unwrap();
    let batch = results(N);
    rt.with_store(move |s| s.insert(&batch)).await.unwrap();
    let t = Instant::now();
    let s = sync.pass(Utc::now()).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.delivered as usize, N);
    assert_eq!(srv.test_ids().len(), N);
    N as f64 / secs
}

/// The bare client posting the same bodies one after another.
async fn bare() -> f64 {
    let srv = double().await;
    let api = Api::new(&srv.url, None).unwrap();
    let tokens = api.login("bench", "pw", None).await.unwrap();
    // Uploads name an enrolled device (the server refuses unknown ones).
    let device = api
        .enroll(
            Some(&tokens.access_token),
            &EnrollRequest {
                enrollment_secret: "s".into(),
                org_id: 1,
                device_name: "bench".into(),
                device_type: "desktop".into(),
                os_type: "linux".into(),
                os_version: "bench".into(),
                hardware_id: "00".repeat(32),
                device_metadata: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    let to = Destination {
        organization_id: 1,
        device_id: device.id,
    };
    let bodies: Vec<_> = results(N)
        .iter()
        .map(|m| upload_body(m, to, waddleperf_engine::sync::payload::NetworkShare::NONE))
        .collect();
    let t = Instant::now();
    for b in &bodies {
        api.upload(Some(&tokens.access_token), b).await.unwrap();
    }
    N as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bare = bare().await;
        println!("| {N} results to the double on loopback | results/s | vs bare client |");
        println!("|---|---|---|");
        println!("| bare client, 1 in flight, no store | {bare:.0} | 1.00 |");
        for c in [1, 2, 4] {
            let r = worker(c).await;
            println!(
                "| sync worker, {c} in flight (write-ahead mark + delete per result) | {r:.0} | {:.2} |",
                r / bare
            );
        }
    });
}
