//! Flows that nothing else exercises: upgrading databases of schema 1 and 2
//! that hold data, retention applied by a run (unsent results spared while
//! enrolled), `export --format csv` parsed back against the store,
//! `run --tier`, `pause`/`resume` from the CLI, `config init --force`, and
//! the `history` and `events` filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use chrono::{Duration as ChronoDuration, Utc};
use support::cli_home::{results, text, Home};
use waddleperf_engine::config::{Config, TcpMode, TcpTarget};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::store::{HistoryQuery, Store, SCHEMA_VERSION};

const V1: &str = include_str!("../crates/engine/src/store/migrations/0001_init.sql");
const V2: &str = include_str!("../crates/engine/src/store/migrations/0002_state_events.sql");
const V3: &str = include_str!("../crates/engine/src/store/migrations/0003_outbox_attempts.sql");

/// A database as version `schema` of WaddlePerf left it, holding one result
/// waiting to upload (and, from version 2, a pause and an event).
fn old_database(path: &std::path::Path, schema: i32) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(V1).unwrap();
    if schema >= 2 {
        c.execute_batch(V2).unwrap();
    }
    c.pragma_update(None, "application_id", 0x5750_5246)
        .unwrap();
    c.pragma_update(None, "user_version", schema).unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let at = (Utc::now() - ChronoDuration::hours(2)).timestamp_micros();
    c.execute(
        "INSERT INTO results (id, test_type, target, resolved_ip, started_at, duration_ms, \
         success, error_kind, error, tier, latency_ms, metrics) \
         VALUES (?1, 'tcp', 'old.example:443', '192.0.2.1', ?2, 12.5, 1, NULL, NULL, 1, 12.0, \
         '{\"connect_ms\":12.0}')",
        rusqlite::params![id, at],
    )
    .unwrap();
    c.execute(
        "INSERT INTO outbox (result_id, enqueued_at, next_attempt_at) VALUES (?1, ?2, ?2)",
        rusqlite::params![id, at],
    )
    .unwrap();
    if schema >= 2 {
        c.execute(
            "INSERT INTO state (key, value, updated_at) VALUES ('paused', '{\"paused\":true}', ?1)",
            [at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO events (at, kind, target, message, details) \
             VALUES (?1, 'paused', NULL, 'monitoring paused', '{}')",
            [at],
        )
        .unwrap();
    }
    id
}

#[test]
fn databases_of_schema_1_and_2_are_upgraded_with_their_data() {
    for schema in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let id = old_database(&path, schema);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let all = s.history(&HistoryQuery::default()).unwrap();
        assert_eq!(all.len(), 1, "schema {schema}");
        assert_eq!(all[0].id.to_string(), id);
        assert_eq!(all[0].metrics.connect_ms, Some(12.0));
        // Still waiting to upload, with an attempt history that is certain.
        let due = s.outbox_due(Utc::now(), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(!due[0].uncertain);
        assert!(s.check().unwrap().is_empty());
        if schema >= 2 {
            let paused: serde_json::Value = s.state_get("paused").unwrap().unwrap();
            assert_eq!(paused["paused"], true);
            assert_eq!(s.events(None, None, 10).unwrap().len(), 1);
        }
    }
}

/// Schema 3 kept AutoPerf's tier 3 HTTP/1.1 and HTTP/2 copies of a target in
/// the tier 1 target's series; schema 4 gives each its own (the target id
/// names the forced protocol) and rebuilds the roll-ups the charts read.
#[test]
fn a_database_of_schema_3_moves_tier3_http_copies_to_their_own_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let url = "https://example.com/";
    let hour = (Utc::now() - ChronoDuration::hours(3)).timestamp() / 3600 * 3600;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [V1, V2, V3] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "application_id", 0x5750_5246)
            .unwrap();
        c.pragma_update(None, "user_version", 3).unwrap();
        // (tier, recorded protocol, latency): tier 1 over HTTP/2, the two
        // tier 3 copies, and a tier 3 try that failed before any answer.
        let rows: [(u8, Option<&str>, f64); 4] = [
            (1, Some("2"), 10.0),
            (3, Some("1.1"), 30.0),
            (3, Some("2"), 20.0),
            (3, None, 40.0),
        ];
        for (i, (tier, version, latency)) in rows.iter().enumerate() {
            let metrics = match version {
                Some(v) => format!("{{\"http_version\":\"{v}\"}}"),
                None => "{}".to_owned(),
            };
            c.execute(
                "INSERT INTO results (id, test_type, target, resolved_ip, started_at, \
                 duration_ms, success, error_kind, error, tier, latency_ms, metrics) \
                 VALUES (?1, 'http', ?2, NULL, ?3, 1.0, ?4, NULL, NULL, ?5, ?6, ?7)",
                rusqlite::params![
                    uuid::Uuid::now_v7().to_string(),
                    url,
                    (hour + 60 * i as i64) * 1_000_000,
                    version.is_some(),
                    tier,
                    latency,
                    metrics
                ],
            )
            .unwrap();
        }
        // Schema 3's roll-up: all four results in the one series.
        c.execute(
            "INSERT INTO series (id, target, test_type) VALUES (1, ?1, 'http')",
            [url],
        )
        .unwrap();
        for (table, unit, width) in [
            ("rollup_hourly", "hour", 3600),
            ("rollup_daily", "day", 86_400),
        ] {
            c.execute(
                &format!(
                    "INSERT INTO {table} (series_id, {unit}, count, failed, latency_ms_n, \
                     latency_ms_sum, latency_ms_min, latency_ms_max) \
                     VALUES (1, ?1, 4, 1, 4, 100.0, 10.0, 40.0)"
                ),
                [hour / width],
            )
            .unwrap();
        }
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let mut targets: Vec<String> = s.targets().unwrap().into_iter().map(|t| t.0).collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "https://example.com/",
            "https://example.com/ http1",
            "https://example.com/ http2"
        ]
    );
    // Each series' chart, read from the rebuilt roll-ups over whole days.
    let day = 86_400;
    let since = chrono::DateTime::from_timestamp(hour / day * day, 0).unwrap();
    let series = s
        .series(&waddleperf_engine::store::SeriesQuery {
            targets: vec![],
            test_type: None,
            metric: "latency_ms".into(),
            since,
            until: since + ChronoDuration::days(1),
            bucket_secs: day,
            network: None,
        })
        .unwrap();
    let figures = |t: &str| {
        let b = &series.iter().find(|x| x.target == t).unwrap().buckets[0];
        (b.count, b.failed, b.min, b.max)
    };
    assert_eq!(figures(url), (2, 1, Some(10.0), Some(40.0)));
    assert_eq!(
        figures("https://example.com/ http1"),
        (1, 0, Some(30.0), Some(30.0))
    );
    assert_eq!(
        figures("https://example.com/ http2"),
        (1, 0, Some(20.0), Some(20.0))
    );
    assert!(s.check().unwrap().is_empty());
}

fn tcp_config(target: &str, retention_days: u32) -> Config {
    let mut cfg = Config {
        suite: Default::default(),
        ..Config::default()
    };
    cfg.schedule.run_on_start = false;
    cfg.store.retention_days = retention_days;
    cfg.notifications.enabled = false;
    cfg.suite.tcp = vec![toml::Spanned::new(
        0..0,
        TcpTarget::new(target.to_owned(), TcpMode::Raw),
    )];
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_applies_retention_and_spares_unsent_results_while_enrolled() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    for enrolled in [false, true] {
        let mut store = Store::open_in_memory().unwrap();
        // Three days old: one delivered, one still waiting to upload.
        let mut old = results(2);
        for m in &mut old {
            m.started_at = Utc::now() - ChronoDuration::days(3);
        }
        store.insert(&old).unwrap();
        store.outbox_delivered(&old[0].id).unwrap();
        if enrolled {
            store
                .state_set(
                    "sync.enrollment",
                    &serde_json::json!({"server": "http://127.0.0.1:1", "id": 7,
                        "device_id": "d", "organization_id": 1, "device_name": "x",
                        "enrolled_at": "2026-11-01T00:00:00Z"}),
                )
                .unwrap();
        }
        let rt = Runtime::new(store, tcp_config(&target, 1));
        let summary = rt.run_now().await.unwrap();
        assert_eq!(summary.results.len(), 1);
        let kept = rt.history(HistoryQuery::default()).await.unwrap();
        let ids: Vec<_> = kept.iter().map(|m| m.id).collect();
        assert!(!ids.contains(&old[0].id), "delivered and old: gone");
        assert_eq!(
            ids.contains(&old[1].id),
            enrolled,
            "unsent and old: kept only while enrolled (enrolled = {enrolled})"
        );
        assert!(ids.contains(&summary.results[0].id), "today's result stays");
    }
}

#[test]
fn exports_parse_back_to_the_stored_results() {
    let h = Home::new("");
    let mut rs = results(5);
    rs[2].target = "weird, \"quoted\" target:1".into();
    rs[3].success = false;
    rs[3].error = Some("refused, twice".into());
    Store::open(&h.db()).unwrap().insert(&rs).unwrap();
    let stored = Store::open(&h.db())
        .unwrap()
        .history(&HistoryQuery::default())
        .unwrap();

    let csv = h.ok(&["export", "--format", "csv"]);
    let (header, rows) = support::parse_csv(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), stored.len());
    for (row, m) in rows.iter().zip(&stored) {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[col("id")], m.id.to_string());
        assert_eq!(row[col("target")], m.target);
        assert_eq!(row[col("success")], m.success.to_string());
        assert_eq!(row[col("error")], m.error.clone().unwrap_or_default());
        let latency: f64 = row[col("latency_ms")].parse().unwrap();
        assert!((latency - m.latency_ms.unwrap()).abs() < 1e-3);
        let connect: f64 = row[col("connect_ms")].parse().unwrap();
        assert!((connect - m.metrics.connect_ms.unwrap()).abs() < 1e-3);
    }

    let json = h.ok(&["export", "--format", "json"]);
    let back: Vec<waddleperf_engine::Measurement> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, stored);

    // Filters: --until, --limit (the newest N, oldest first), --type.
    let until = stored[2].started_at.to_rfc3339();
    let o = h.ok(&["history", "--json", "--until", &until]);
    assert_eq!(o.lines().count(), 2, "strictly before --until");
    let o = h.ok(&["history", "--json", "--limit", "2"]);
    let ids: Vec<String> = o
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(
        ids,
        [
            format!("\"{}\"", stored[3].id),
            format!("\"{}\"", stored[4].id)
        ]
    );
    assert_eq!(
        h.ok(&["history", "--json", "--type", "http"])
            .lines()
            .count(),
        0
    );
}

#[test]
fn run_tier_pause_resume_events_and_config_init() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let t1 = listener.local_addr().unwrap().to_string();
    let t2_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let t2 = t2_listener.local_addr().unwrap().to_string();
    let h = Home::new(&format!(
        "[schedule]\nrun_on_start = false\n[notifications]\nenabled = false\n\
         [[suite.tcp]]\ntarget = \"{t1}\"\n[[tier2.tcp]]\ntarget = \"{t2}\"\n"
    ));
    // `run --tier 2`: that tier's suite alone, health unchanged.
    let out = h.ok(&["run", "--tier", "2", "--json"]);
    let rs: Vec<waddleperf_engine::Measurement> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rs.len(), 1, "{out}");
    assert_eq!((rs[0].target.as_str(), rs[0].tier), (t2.as_str(), 2));
    let st = h.status_json();
    assert_eq!(st["targets_health"].as_array().unwrap().len(), 0, "{st}");

    // pause / resume from the CLI, seen by status and the event log.
    assert!(h.ok(&["pause"]).contains("monitoring paused"));
    assert_eq!(h.status_json()["paused"], true);
    assert!(h.ok(&["resume"]).contains("monitoring resumed"));
    assert_eq!(h.status_json()["paused"], false);
    let events = h.ok(&["events", "--json"]);
    let kinds: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert_eq!(kinds, ["\"paused\"", "\"resumed\""]);
    assert_eq!(
        h.ok(&["events", "--json", "--limit", "1"]).lines().count(),
        1
    );
    let recent = h.ok(&["events", "--since", "1h", "--json"]);
    assert_eq!(recent.lines().count(), 2);
    let far = (Utc::now() + ChronoDuration::days(1)).to_rfc3339();
    assert_eq!(h.ok(&["events", "--since", &far]).trim(), "no events");

    // config init: refuses to overwrite, --force replaces with the defaults.
    let o = h.wp(&["config", "init"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    h.ok(&["config", "init", "--force"]);
    let written = std::fs::read_to_string(h.root.join("config.toml")).unwrap();
    assert!(
        written.contains("[schedule]") && !written.contains(&t2),
        "{written}"
    );
    assert!(h.ok(&["config", "validate"]).contains(": ok"));
}
