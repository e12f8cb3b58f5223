//! Store benchmark: batched insert rate and chart queries over a year of
//! generated data. `cargo bench --bench store` prints a Markdown table
//! (figures are recorded in docs/benchmarks.md). Timings are medians of
//! repeated runs in one process; compare them as ratios to the targets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use std::time::Instant;
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::store::{HistoryQuery, SeriesQuery, Store};

const TARGETS: usize = 20;
const TOTAL: usize = 1_000_000;
const BATCH: usize = 1_000;

fn result(i: usize) -> Measurement {
    let target = i % TARGETS;
    let year_secs = 365 * 86_400;
    let t = Utc.with_ymd_and_hms(2025, 11, 22, 0, 0, 0).unwrap()
        + Duration::seconds((i as i64 * year_secs) / TOTAL as i64);
    let http = target.is_multiple_of(2);
    let mut m = Measurement::begin(
        if http { TestType::Http } else { TestType::Tcp },
        format!("target-{target}"),
    );
    m.started_at = t;
    m.success = !i.is_multiple_of(97);
    let lat = 5.0 + (i * 7919 % 1000) as f64 / 10.0;
    m.latency_ms = Some(lat);
    m.duration_ms = lat * 2.0;
    m.metrics.connect_ms = Some(lat / 3.0);
    if http {
        m.metrics.dns_ms = Some(1.5);
        m.metrics.tls_ms = Some(lat / 2.0);
        m.metrics.ttfb_ms = Some(lat);
        m.metrics.total_ms = Some(lat * 2.0);
        m.metrics.status_code = Some(200);
        m.metrics.http_version = Some("2".into());
        m.metrics.bytes = Some(17_000);
        m.metrics.throughput_mbps = Some(80.0);
    }
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut store = Store::open(&path).unwrap();

    let started = Instant::now();
    let mut batch_rates = Vec::new();
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(BATCH) {
        let batch: Vec<Measurement> = chunk.iter().map(|&i| result(i)).collect();
        let t = Instant::now();
        store.insert(&batch).unwrap();
        batch_rates.push(BATCH as f64 / t.elapsed().as_secs_f64());
    }
    let total_s = started.elapsed().as_secs_f64();
    let insert_rate = median(batch_rates);
    let db_mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6
        + std::fs::metadata(dir.path().join("bench.db-wal"))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0);

    let end = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let time = |f: &mut dyn FnMut() -> usize| -> (f64, usize) {
        let mut runs = Vec::new();
        let mut n = 0;
        for _ in 0..15 {
            let t = Instant::now();
            n = f();
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (median(runs), n)
    };
    let q = |targets: Vec<String>, days: i64, bucket: i64| SeriesQuery {
        targets,
        test_type: None,
        metric: "latency_ms".into(),
        since: end - Duration::days(days),
        until: end,
        bucket_secs: bucket,
        network: None,
    };
    let (all_30d, n1) = time(&mut || {
        store
            .series(&q(vec![], 30, 3600))
            .unwrap()
            .iter()
            .map(|s| s.buckets.len())
            .sum()
    });
    let (one_30d, n2) = time(&mut || {
        store.series(&q(vec!["target-3".into()], 30, 3600)).unwrap()[0]
            .buckets
            .len()
    });
    let (all_1y, n3) = time(&mut || {
        store
            .series(&q(vec![], 365, 86_400))
            .unwrap()
            .iter()
            .map(|s| s.buckets.len())
            .sum()
    });
    let (raw_24h, n4) = time(&mut || {
        store
            .series(&q(vec![], 1, 300))
            .unwrap()
            .iter()
            .map(|s| s.buckets.len())
            .sum()
    });
    let (hist_24h, n5) = time(&mut || {
        store
            .history(&HistoryQuery {
                since: Some(end - Duration::days(1)),
                until: Some(end),
                ..Default::default()
            })
            .unwrap()
            .len()
    });

    println!(
        "| store benchmark ({TOTAL} results, {TARGETS} targets, one year) | figure | target |"
    );
    println!("|---|---|---|");
    println!("| batched insert ({BATCH} per transaction, with outbox and roll-up), median | {insert_rate:.0} results/s | ≥ 20 000 results/s |");
    println!(
        "| whole load ({TOTAL} results) | {total_s:.1} s ({:.0} results/s) | |",
        TOTAL as f64 / total_s
    );
    println!("| database size | {db_mb:.0} MB | |");
    println!("| chart: 30 days, hourly buckets, all 20 targets ({n1} buckets) | {all_30d:.2} ms | < 50 ms |");
    println!("| chart: 30 days, hourly buckets, one target ({n2} buckets) | {one_30d:.2} ms | |");
    println!("| chart: 1 year, daily buckets, all 20 targets ({n3} buckets) | {all_1y:.2} ms | |");
    println!("| chart: 24 h, 5-minute buckets from raw rows, all targets ({n4} buckets) | {raw_24h:.2} ms | |");
    println!("| history: 24 h of raw results ({n5} rows, decoded) | {hist_24h:.2} ms | |");
}
