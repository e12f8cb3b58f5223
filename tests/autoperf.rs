//! AutoPerf escalation against a real link: a namespace with nginx, a
//! 150 ms delay line switched on and off, and certificates that expire soon.
//! Healthy → only tier 1; delay → after N runs tier 2 runs and is stored as
//! tier 2; tier 2 also breaching → tier 3 once, then the cool-down holds;
//! delay removed → back to tier 1 after the hysteresis. The events come in
//! that order and the database keeps them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::time::Duration;
use support::netns::NetPair;
use support::servers::{Nginx, TestCa};
use toml::Spanned;
use waddleperf_engine::autoperf::Health;
use waddleperf_engine::config::{Config, HttpTarget, Suite, TcpMode, TcpTarget};
use waddleperf_engine::runtime::{Event, Runtime};
use waddleperf_engine::store::{HistoryQuery, Store};

const DELAY_MS: u64 = 150;

fn span<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn tls_target(addr: std::net::SocketAddr, ca: &TestCa) -> TcpTarget {
    TcpTarget {
        ca_file: Some(ca.ca_pem.clone()),
        ..TcpTarget::new(addr.to_string(), TcpMode::Tls)
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Health(Option<Health>, Health),
    Up(u8, u8),
    Down(u8, u8),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalates_through_the_tiers_and_back() {
    let pair = NetPair::new();
    let peer = pair.peer_ip.to_string();
    let sans = [format!("IP:{peer}")];
    let ca_good = TestCa::new(&sans, 365);
    let ca_expiring = TestCa::new(&sans, 3);
    let good = Nginx::start(&ca_good, &peer, 8443, 8080, Some(&pair));
    let expiring = Nginx::start(&ca_expiring, &peer, 9443, 9080, Some(&pair));

    let mut cfg = Config {
        suite: Suite {
            http: Vec::new(),
            tcp: vec![span(TcpTarget::new(good.http.to_string(), TcpMode::Raw))],
            ..Suite::default()
        },
        ..Config::default()
    };
    cfg.tier2 = Some(Suite {
        http: Vec::new(),
        tcp: vec![span(tls_target(good.https, &ca_good))],
        ..Suite::default()
    });
    cfg.tier3 = Some(Suite {
        http: vec![span(HttpTarget {
            ca_file: Some(ca_good.ca_pem.clone()),
            ..HttpTarget::new(format!("https://{peer}:8443/"))
        })],
        tcp: Vec::new(),
        ..Suite::default()
    });
    cfg.autoperf.escalate_after = 2;
    cfg.autoperf.deescalate_after = 2;
    cfg.autoperf.tier3_cooldown_minutes = 60;
    cfg.probe.timeout_ms = 5000;
    cfg.validate("test", None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let rt = Runtime::new(Store::open(&db).unwrap(), cfg.clone());
    let mut events = rt.subscribe();
    let run = |label: &'static str| {
        let rt = rt.clone();
        async move {
            let s = rt.run_now().await.unwrap();
            let connect: Vec<String> = s
                .results
                .iter()
                .filter(|r| r.tier == 1)
                .map(|r| format!("{:.1}", r.metrics.connect_ms.unwrap_or(f64::NAN)))
                .collect();
            println!(
                "{label:<28} tiers {:?}  tier-1 connect_ms {:?}  results {}",
                s.tiers,
                connect,
                s.results.len()
            );
            assert!(s.results.iter().all(|r| r.success), "{:?}", s.results);
            for r in &s.results {
                assert!(s.tiers.contains(&r.tier));
            }
            s
        }
    };

    // Healthy link: tier 1 only.
    for _ in 0..2 {
        let s = run("healthy").await;
        assert_eq!(s.tiers, [1]);
    }

    // 150 ms delay line: the first breach is not enough, the second escalates.
    let delay = pair.delay_line(Duration::from_millis(DELAY_MS), Duration::ZERO);
    let s = run("delay, 1st breach").await;
    let c = s.results[0].metrics.connect_ms.unwrap();
    println!("tier-1 connect with a {DELAY_MS} ms delay line: {c:.1} ms (truth {DELAY_MS} ms)");
    assert!(
        (DELAY_MS as f64..DELAY_MS as f64 + 10.0).contains(&c),
        "{c}"
    );
    assert_eq!(s.tiers, [1]);
    let s = run("delay, 2nd breach").await;
    assert_eq!(
        s.tiers,
        [1, 2],
        "escalated to tier 2 on the 2nd breach in a row"
    );
    assert_eq!(s.transitions.len(), 1);
    assert!(s
        .results
        .iter()
        .any(|r| r.tier == 2 && r.metrics.cert_days_left.unwrap() > 300));

    // Tier 2 now checks a certificate that expires in 3 days: after two
    // tier 2 breaches tier 3 runs once, then the cool-down holds.
    let mut cfg2 = cfg.clone();
    cfg2.tier2 = Some(Suite {
        http: Vec::new(),
        tcp: vec![span(tls_target(expiring.https, &ca_expiring))],
        ..Suite::default()
    });
    rt.set_config(cfg2).unwrap();
    let s = run("tier 2 breach 1").await;
    assert_eq!(s.tiers, [1, 2]);
    let s = run("tier 2 breach 2").await;
    assert_eq!(
        s.tiers,
        [1, 2, 3],
        "tier 3 runs after the 2nd tier 2 breach"
    );
    let t3: Vec<_> = s.results.iter().filter(|r| r.tier == 3).collect();
    assert_eq!(t3.len(), 1);
    assert_eq!(t3[0].metrics.status_code, Some(200));
    let s = run("tier 2 breach 3 (cool-down)").await;
    assert_eq!(
        s.tiers,
        [1, 2],
        "the cool-down keeps tier 3 from running again"
    );

    // Delay removed: tier 2 still runs until 2 healthy runs in a row.
    drop(delay);
    let s = run("healthy again 1").await;
    assert_eq!(s.tiers, [1, 2]);
    let s = run("healthy again 2").await;
    assert_eq!(s.tiers, [1], "back to tier 1 after the hysteresis");
    let s = run("healthy again 3").await;
    assert_eq!(s.tiers, [1]);

    // The events, in order.
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        match ev {
            Event::HealthChanged { from, to, .. } => seen.push(Seen::Health(from, to)),
            Event::Escalated { transition: t } => seen.push(Seen::Up(t.from, t.to)),
            Event::Deescalated { transition: t } => seen.push(Seen::Down(t.from, t.to)),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            Seen::Health(None, Health::Ok),
            Seen::Health(Some(Health::Ok), Health::Degraded),
            Seen::Up(1, 2),
            Seen::Up(2, 3),
            Seen::Health(Some(Health::Degraded), Health::Ok),
            Seen::Down(2, 1),
        ]
    );

    // Stored: results with their tiers, and the escalation events with what
    // breached, the value and the threshold.
    let all = rt.history(HistoryQuery::default()).await.unwrap();
    let count = |t: u8| all.iter().filter(|r| r.tier == t).count();
    assert_eq!((count(1), count(2), count(3)), (10, 5, 1));
    let log = rt.event_log(None, None, 100).await.unwrap();
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "health_changed",
            "health_changed",
            "escalated",
            "escalated",
            "diagnostics",
            "health_changed",
            "deescalated"
        ]
    );
    // Tier 3 took a diagnostics snapshot: every section, this machine's.
    let d = &log[4].details;
    for section in [
        "system",
        "network",
        "interfaces",
        "routes",
        "dns",
        "proxy",
        "clock",
        "icmp",
    ] {
        assert!(d.get(section).is_some(), "{section} missing: {d}");
    }
    assert!(d["system"]["ok"]["cpus"].as_u64().unwrap_or(0) >= 1, "{d}");
    let b = &log[2].details["breaches"][0];
    assert_eq!(b["metric"], "latency_ms");
    assert_eq!(b["threshold"], 100.0);
    assert!(b["value"].as_f64().unwrap() >= DELAY_MS as f64);
    let b = &log[3].details["breaches"][0];
    assert_eq!(b["metric"], "cert_days_left");
    assert!(b["value"].as_f64().unwrap() < 7.0);
    println!("events:");
    for e in &log {
        println!("  {} {}", e.kind, e.message);
    }
    let status = rt.status().await.unwrap();
    assert_eq!(status.autoperf.level, 1);
    assert!(status.autoperf.tier3_last_run.is_some());
    assert_eq!(status.health, Some(Health::Ok));
}
