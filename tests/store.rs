//! Store behaviour on real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::SmallDisk;
use waddleperf_engine::model::{ErrorKind, Measurement, TestType};
use waddleperf_engine::store::{HistoryQuery, SeriesQuery, Store, StoreError, SCHEMA_VERSION};

fn at(t: DateTime<Utc>, target: &str, latency: Option<f64>, ok: bool) -> Measurement {
    let mut m = Measurement::begin(TestType::Tcp, target);
    m.started_at = t;
    m.success = ok;
    m.latency_ms = latency;
    m.metrics.connect_ms = latency;
    m.duration_ms = latency.unwrap_or(1.0);
    if !ok {
        m.fail(ErrorKind::Timeout, "no answer");
    }
    m
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

#[test]
fn migrates_from_empty_and_reopens_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/wp.db");
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let m = at(t0(), "a:1", Some(5.0), true);
    assert_eq!(s.insert(std::slice::from_ref(&m)).unwrap(), 1);
    assert_eq!(
        s.insert(std::slice::from_ref(&m)).unwrap(),
        0,
        "same id is not stored twice"
    );
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.get(&m.id).unwrap().unwrap(), m);
    let stats = s.stats().unwrap();
    assert_eq!(
        (stats.results, stats.outbox_pending),
        (1, 1),
        "an outbox row per result"
    );
    assert!(s.check().unwrap().is_empty());
}

#[test]
fn refuses_corrupt_foreign_and_newer_databases_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();

    let garbage = dir.path().join("garbage.db");
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let e = Store::open(&garbage)
        .err()
        .expect("garbage must be refused");
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(std::fs::read(&garbage).unwrap(), bytes, "file unchanged");

    let foreign = dir.path().join("foreign.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep me');")
            .unwrap();
    }
    let e = Store::open(&foreign)
        .err()
        .expect("foreign db must be refused");
    assert!(matches!(e, StoreError::Foreign { .. }), "{e}");
    let c = rusqlite::Connection::open(&foreign).unwrap();
    let kept: String = c
        .query_row("SELECT x FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "keep me");

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let e = Store::open(&newer)
        .err()
        .expect("newer schema must be refused");
    match e {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 5, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {other}"),
    }
}

/// A known data set: three targets, five days, a result every 10 minutes
/// with latencies from a formula, every 7th one failed.
fn known_data() -> Vec<Measurement> {
    let mut v = Vec::new();
    for (ti, target) in ["a:1", "b:2", "c:3"].iter().enumerate() {
        for i in 0..(5 * 24 * 6) {
            let t = t0() + Duration::minutes(10 * i);
            let ok = i % 7 != 3;
            let lat = ok.then(|| 10.0 + ti as f64 + ((i * 37) % 100) as f64 / 10.0);
            v.push(at(t, target, lat, ok));
        }
    }
    v
}

/// (bucket start, count, failed, min, mean, max, loss %)
type NaiveBucket = (i64, u64, u64, Option<f64>, Option<f64>, Option<f64>, f64);

/// The same aggregates computed naively in Rust.
fn naive(
    data: &[Measurement],
    target: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket: i64,
) -> Vec<NaiveBucket> {
    let mut map: std::collections::BTreeMap<i64, Vec<&Measurement>> = Default::default();
    for m in data.iter().filter(|m| m.target == target) {
        let ts = m.started_at.timestamp();
        let first = since.timestamp().div_euclid(bucket) * bucket;
        let end = (until.timestamp() + bucket - 1).div_euclid(bucket) * bucket;
        if ts >= first && ts < end {
            map.entry(ts.div_euclid(bucket) * bucket)
                .or_default()
                .push(m);
        }
    }
    map.into_iter()
        .map(|(b, ms)| {
            let lats: Vec<f64> = ms.iter().filter_map(|m| m.latency_ms).collect();
            let failed = ms.iter().filter(|m| !m.success).count() as u64;
            let mean = (!lats.is_empty()).then(|| lats.iter().sum::<f64>() / lats.len() as f64);
            let min = lats.iter().cloned().reduce(f64::min);
            let max = lats.iter().cloned().reduce(f64::max);
            let loss = failed as f64 * 100.0 / ms.len() as f64;
            (b, ms.len() as u64, failed, min, mean, max, loss)
        })
        .collect()
}

#[test]
fn bucketed_aggregates_match_a_naive_computation() {
    let mut s = Store::open_in_memory().unwrap();
    let data = known_data();
    assert_eq!(s.insert(&data).unwrap(), data.len());
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    };
    // Hourly and daily buckets come from the roll-up; 30-minute ones from raw rows.
    for (bucket, since, until) in [
        (3600, t0() + Duration::hours(5), t0() + Duration::hours(40)),
        (86_400, t0(), t0() + Duration::days(5)),
        (
            1800,
            t0() + Duration::minutes(95),
            t0() + Duration::hours(9),
        ),
    ] {
        let series = s
            .series(&SeriesQuery {
                targets: vec!["b:2".into()],
                test_type: Some(TestType::Tcp),
                metric: "latency_ms".into(),
                since,
                until,
                bucket_secs: bucket,
                network: None,
            })
            .unwrap();
        assert_eq!(series.len(), 1);
        let want = naive(&data, "b:2", since, until, bucket);
        let got = &series[0].buckets;
        assert_eq!(got.len(), want.len(), "bucket {bucket}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.start.timestamp(), w.0);
            assert_eq!(
                (g.count, g.failed),
                (w.1, w.2),
                "bucket {bucket} at {}",
                g.start
            );
            assert!(
                close(g.min, w.3) && close(g.mean, w.4) && close(g.max, w.5),
                "{g:?} vs {w:?}"
            );
            assert!(close(g.loss_pct, Some(w.6)), "{g:?} vs {w:?}");
        }
    }
    // Every target when none is named, one series each.
    let all = s
        .series(&SeriesQuery {
            targets: vec![],
            test_type: None,
            metric: "connect_ms".into(),
            since: t0(),
            until: t0() + Duration::days(1),
            bucket_secs: 3600,
            network: None,
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.target.as_str()).collect::<Vec<_>>(),
        ["a:1", "b:2", "c:3"]
    );
    assert!(all.iter().all(|s| s.buckets.len() == 24));
    // Unknown metrics are refused, not spliced into SQL.
    let e = s
        .series(&SeriesQuery {
            targets: vec![],
            test_type: None,
            metric: "latency_ms); DROP TABLE results; --".into(),
            since: t0(),
            until: t0() + Duration::days(1),
            bucket_secs: 3600,
            network: None,
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Query(_)));
}

#[test]
fn history_filters_and_orders() {
    let mut s = Store::open_in_memory().unwrap();
    let data = known_data();
    s.insert(&data).unwrap();
    let q = HistoryQuery {
        target: Some("c:3".into()),
        since: Some(t0() + Duration::hours(1)),
        until: Some(t0() + Duration::hours(2)),
        ..Default::default()
    };
    let got = s.history(&q).unwrap();
    assert_eq!(got.len(), 6);
    assert!(
        got.windows(2).all(|w| w[0].started_at < w[1].started_at),
        "oldest first"
    );
    assert!(got.iter().all(|m| m.target == "c:3"));
    let newest = s.recent(4).unwrap();
    assert_eq!(newest.len(), 4);
    assert_eq!(
        newest.last().unwrap().started_at,
        data.iter().map(|m| m.started_at).max().unwrap()
    );
    assert_eq!(s.targets().unwrap().len(), 3);
}

#[test]
fn retention_deletes_only_older_results_and_keeps_rollup_exact() {
    let mut s = Store::open_in_memory().unwrap();
    let data = known_data();
    s.insert(&data).unwrap();
    // A cutoff in the middle of an hour.
    let cutoff = t0() + Duration::hours(30) + Duration::minutes(25);
    let older = data.iter().filter(|m| m.started_at < cutoff).count();
    assert_eq!(s.purge_older_than(cutoff, false).unwrap(), older);
    let left = s.history(&HistoryQuery::default()).unwrap();
    assert_eq!(left.len(), data.len() - older);
    assert!(left.iter().all(|m| m.started_at >= cutoff));
    assert_eq!(
        s.stats().unwrap().outbox_pending as usize,
        left.len(),
        "outbox rows went with them"
    );
    // The boundary hour's roll-up equals the raw rows left in it.
    let hour = |bucket| SeriesQuery {
        targets: vec!["a:1".into()],
        test_type: None,
        metric: "latency_ms".into(),
        since: t0() + Duration::hours(30),
        until: t0() + Duration::hours(31),
        bucket_secs: bucket,
        network: None,
    };
    let rolled = s.series(&hour(3600)).unwrap();
    let raw = s.series(&hour(600)).unwrap();
    let want = naive(
        &left,
        "a:1",
        t0() + Duration::hours(30),
        t0() + Duration::hours(31),
        3600,
    );
    assert_eq!(rolled[0].buckets.len(), 1);
    assert_eq!(rolled[0].buckets[0].count, want[0].1);
    assert_eq!(rolled[0].buckets[0].count, 3, "minutes 30, 40, 50 remain");
    assert_eq!(rolled[0].buckets[0].min, want[0].3);
    assert_eq!(raw[0].buckets.iter().map(|b| b.count).sum::<u64>(), 3);
    // Nothing before the cutoff is left in the roll-up either.
    let before = s
        .series(&SeriesQuery {
            targets: vec![],
            test_type: None,
            metric: "latency_ms".into(),
            since: t0(),
            until: t0() + Duration::hours(30),
            bucket_secs: 3600,
            network: None,
        })
        .unwrap();
    assert!(before.is_empty(), "{before:?}");
}

/// Child half of the kill test: writes batches forever, printing the total
/// after each commit. Does nothing unless the parent set the variable.
#[test]
fn kill_child_writer() {
    let Ok(path) = std::env::var("WADDLEPERF_KILL_TEST_DB") else {
        return;
    };
    let mut s = Store::open(std::path::Path::new(&path)).unwrap();
    let mut total = 0usize;
    loop {
        let batch: Vec<Measurement> = (0..50)
            .map(|i| at(Utc::now(), "k:1", Some(i as f64), true))
            .collect();
        total += s.insert(&batch).unwrap();
        println!("committed {total}");
    }
}

#[test]
fn results_survive_a_kill_between_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WADDLEPERF_KILL_TEST_DB", &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0usize;
    while last < 2_000 {
        let line = lines.next().expect("child stopped early").unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            last = n.parse().unwrap();
        }
    }
    // SIGKILL: no destructor, no checkpoint.
    child.kill().unwrap();
    child.wait().unwrap();
    let s = Store::open(&db).unwrap();
    assert!(
        s.check().unwrap().is_empty(),
        "database consistent after the kill"
    );
    let stats = s.stats().unwrap();
    let n = stats.results as usize;
    assert!(n >= last, "{n} stored, {last} were reported committed");
    assert_eq!(n % 50, 0, "no half batch: {n}");
    assert_eq!(
        stats.outbox_pending as usize, n,
        "every result has its outbox row"
    );
    let rolled: u64 = s
        .series(&SeriesQuery {
            targets: vec!["k:1".into()],
            test_type: None,
            metric: "latency_ms".into(),
            since: Utc::now() - Duration::hours(2),
            until: Utc::now() + Duration::hours(1),
            bucket_secs: 3600,
            network: None,
        })
        .unwrap()
        .iter()
        .flat_map(|s| s.buckets.iter().map(|b| b.count))
        .sum();
    assert_eq!(rolled as usize, n, "roll-up agrees with the results");
    println!("killed after {last} reported commits; {n} results intact");
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing_committed() {
    let disk = SmallDisk::new("1m");
    let path = disk.path().join("wp.db");
    let mut s = Store::open(&path).unwrap();
    let mut committed = 0;
    let err = loop {
        let batch: Vec<Measurement> = (0..100)
            .map(|i| at(Utc::now(), "full:1", Some(i as f64), true))
            .collect();
        match s.insert(&batch) {
            Ok(n) => committed += n,
            Err(e) => break e,
        }
        assert!(committed < 1_000_000, "the disk never filled");
    };
    assert!(matches!(err, StoreError::Full(_)), "{err}");
    assert!(err.to_string().contains("out of space"), "{err}");
    drop(s);
    // Everything committed before the failure is intact, the file consistent.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.stats().unwrap().results as usize, committed);
    assert!(s.check().unwrap().is_empty());
    println!("disk full after {committed} results: {err}");
}

#[test]
fn outbox_drains_in_order_marks_attempts_and_keeps_dead_letters() {
    let mut s = Store::open_in_memory().unwrap();
    let rs: Vec<Measurement> = (0..4)
        .map(|i| {
            at(
                t0() + Duration::minutes(i),
                &format!("t{i}:1"),
                Some(1.0),
                true,
            )
        })
        .collect();
    // Inserted out of order: drained oldest result first.
    s.insert(&[rs[2].clone(), rs[0].clone(), rs[3].clone(), rs[1].clone()])
        .unwrap();
    let now = Utc::now();
    let due = s.outbox_due(now, 10).unwrap();
    let ids: Vec<_> = due.iter().map(|d| d.result.id).collect();
    assert_eq!(ids, rs.iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(due.iter().all(|d| d.attempts == 0 && !d.uncertain));
    assert_eq!(due[0].result, rs[0], "the stored result comes back whole");
    assert_eq!(s.outbox_due(now, 2).unwrap().len(), 2);

    // An attempt is marked before it goes out.
    s.outbox_attempt(&rs[0].id).unwrap();
    let d = &s.outbox_due(now, 1).unwrap()[0];
    assert_eq!((d.attempts, d.uncertain), (1, true));
    s.outbox_delivered(&rs[0].id).unwrap();

    // Deferred: not due until its time; the error and uncertainty are kept.
    s.outbox_attempt(&rs[1].id).unwrap();
    let later = now + Duration::seconds(30);
    s.outbox_defer(&rs[1].id, later, "connection reset", true)
        .unwrap();
    let due: Vec<_> = s.outbox_due(now, 10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(s.outbox_next_due().unwrap().map(|t| t <= now), Some(true));
    let d = s.outbox_due(later, 10).unwrap();
    assert_eq!(d[0].result.id, rs[1].id);
    assert!(d[0].uncertain);

    // Refused: a dead letter with the server's message, then retried.
    s.outbox_attempt(&rs[2].id).unwrap();
    s.outbox_dead(&rs[2].id, "Missing required field: name")
        .unwrap();
    let dead = s.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].result_id, rs[2].id);
    assert_eq!(dead[0].error, "Missing required field: name");
    assert_eq!(dead[0].attempts, 1);
    let st = s.stats().unwrap();
    assert_eq!((st.outbox_pending, st.outbox_dead), (2, 1));
    assert_eq!(s.retry_dead(Some(&[rs[2].id]), now).unwrap(), 1);
    assert!(s.dead_letters().unwrap().is_empty());
    let st = s.stats().unwrap();
    assert_eq!((st.outbox_pending, st.outbox_dead), (3, 0));
    // The result itself is untouched by delivery.
    assert_eq!(s.stats().unwrap().results, 4);
}

#[test]
fn retention_spares_results_not_yet_uploaded_when_asked() {
    let mut s = Store::open_in_memory().unwrap();
    let data = known_data();
    s.insert(&data).unwrap();
    let cutoff = t0() + Duration::hours(30);
    let older: Vec<_> = data.iter().filter(|m| m.started_at < cutoff).collect();
    assert!(older.len() >= 3);
    // Two old results reached the server; one was refused (dead letter).
    s.outbox_delivered(&older[0].id).unwrap();
    s.outbox_delivered(&older[1].id).unwrap();
    s.outbox_dead(&older[2].id, "400: refused").unwrap();
    let deleted = s.purge_older_than(cutoff, true).unwrap();
    assert_eq!(deleted, 3, "only the delivered and the dead letter go");
    let left = s.history(&HistoryQuery::default()).unwrap();
    assert_eq!(left.len(), data.len() - 3);
    assert!(left
        .iter()
        .filter(|m| m.started_at < cutoff)
        .all(|m| older[3..].iter().any(|o| o.id == m.id)));
    assert_eq!(s.stats().unwrap().outbox_pending as usize, left.len());
}

/// Responsiveness is charted like the rates: RPM results roll up, and the
/// series of `rpm` has their mean, min and max per bucket.
#[test]
fn rpm_results_are_charted() {
    let mut s = Store::open_in_memory().unwrap();
    let mut rows = Vec::new();
    for (i, rpm) in [600.0, 900.0, 3000.0].into_iter().enumerate() {
        let mut m = Measurement::begin(TestType::Bandwidth, "rpm+http://peer.lan:8080/ download");
        m.started_at = t0() + Duration::minutes(10 * i as i64);
        m.success = true;
        m.metrics.rpm = Some(rpm);
        m.metrics.rpm_confidence = Some("high".into());
        m.metrics.download_mbps = Some(47.5);
        rows.push(m);
    }
    s.insert(&rows).unwrap();
    let series = s
        .series(&SeriesQuery {
            targets: vec![],
            test_type: Some(TestType::Bandwidth),
            metric: "rpm".into(),
            since: t0(),
            until: t0() + Duration::hours(1),
            bucket_secs: 3600,
            network: None,
        })
        .unwrap();
    let b = &series[0].buckets[0];
    assert_eq!((b.n, b.min, b.max), (3, Some(600.0), Some(3000.0)));
    assert_eq!(b.mean, Some(1500.0));
}
