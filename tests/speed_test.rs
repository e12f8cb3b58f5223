//! The speed test and the CLI around bandwidth tests, against Debian's
//! `iperf3 -s` on loopback: a speed test runs each configured server both
//! ways and nothing else, with live progress; AutoPerf keeps to its daily
//! data budget; `waddleperf test bandwidth` and `waddleperf run --speed`
//! print what they measured and name bad arguments. (The figures themselves
//! are checked against injected truth in `tests/bandwidth.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use support::cli_home::Home;
use support::free_port;
use support::iperf::Iperf3Server;
use support::servers::SilentServer;
use waddleperf_engine::model::Measurement;

/// Bandwidth tests load the link and two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The CLI: `waddleperf test bandwidth` in JSON, and bad arguments named.
#[test]
fn the_cli_runs_a_bandwidth_test_and_names_bad_arguments() {
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    let home = Home::new("");
    let target = server.addr.to_string();
    let out = home.ok(&[
        "test",
        "bandwidth",
        &target,
        "-t",
        "1",
        "-O",
        "0",
        "-R",
        "--json",
    ]);
    let m: Measurement = serde_json::from_str(&out).unwrap();
    assert!(m.success, "{m:?}");
    assert_eq!(m.target, format!("iperf3://{target} download"));
    assert!(m.metrics.download_mbps.unwrap() > 0.0);

    let text = home.ok(&["test", "bandwidth", &target, "-t", "1", "-u", "-b", "2M"]);
    assert!(
        text.contains("upload_mbps") && text.contains("loss_pct"),
        "{text}"
    );

    for (args, says) in [
        (&["-b", "5M"][..], "--udp"),
        (&["-u", "-b", "5Q"][..], "--bitrate: `5Q` is not a bitrate"),
        (&["-P", "99"][..], "--streams"),
        (&["-t", "0"][..], "--seconds"),
    ] {
        let mut a = vec!["test", "bandwidth", &target];
        a.extend_from_slice(args);
        let o = home.wp(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let o = home.wp(&["test", "bandwidth", "no such host:1:2"]);
    assert!(!o.status.success());

    // `run --speed`: the configured server, download then upload.
    let o = home.wp(&["run", "--speed"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no bandwidth server is configured"), "{err}");
    let home = Home::new(&format!(
        "[[suite.bandwidth]]\nserver = \"{target}\"\nseconds = 1\nomit = 0\n"
    ));
    let out = home.ok(&["run", "--speed", "--json"]);
    let results: Vec<Measurement> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let targets: Vec<&str> = results.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            format!("iperf3://{target} download"),
            format!("iperf3://{target}")
        ]
    );
    assert!(results.iter().all(|m| m.success), "{results:?}");
    let text = home.ok(&["run", "--speed"]);
    assert!(text.contains("bufferbloat grade"), "{text}");
}

/// The speed test: each configured bandwidth server, download then upload,
/// and nothing else of the suite; its live progress once a second while
/// each runs; without a server, an error that says what to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speed_test_runs_each_server_both_ways_with_live_progress() {
    use waddleperf_engine::config::Config;
    use waddleperf_engine::runtime::{Event, RunReason, Runtime, RuntimeError};
    use waddleperf_engine::store::Store;
    let _serial = support::timing::serial(&SERIAL).await;
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    let silent = SilentServer::start(b"");
    let text = format!(
        "[[suite.tcp]]\ntarget = \"{}\"\n\n[[suite.bandwidth]]\nserver = \"{}\"\nseconds = 3\nomit = 1\nstreams = 2\n",
        silent.addr, server.addr
    );
    let cfg = Config::parse(&text, "test").unwrap();
    let rt = Runtime::new(Store::open_in_memory().unwrap(), cfg);
    let mut events = rt.subscribe();
    let summary = rt.speed_test().await.unwrap();
    assert_eq!(summary.reason, RunReason::SpeedTest);
    let targets: Vec<&str> = summary.results.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            format!("iperf3://{} download", server.addr),
            format!("iperf3://{}", server.addr)
        ]
    );
    assert!(summary.results.iter().all(|m| m.success), "{summary:?}");
    let mut progress = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::BandwidthProgress {
            target, interim, ..
        } = e
        {
            progress.push((target, interim));
        }
    }
    println!("{} progress events", progress.len());
    let downs: Vec<_> = progress
        .iter()
        .filter(|(t, _)| t.ends_with("download"))
        .collect();
    let ups: Vec<_> = progress
        .iter()
        .filter(|(t, _)| !t.ends_with("download"))
        .collect();
    // About one a second over each test's 3 measured seconds.
    assert!((2..=4).contains(&downs.len()), "{progress:?}");
    assert!((2..=4).contains(&ups.len()), "{progress:?}");
    assert!(downs
        .iter()
        .all(|(_, i)| i.download_mbps.unwrap() > 0.0 && i.upload_mbps.is_none()));
    assert!(ups
        .iter()
        .all(|(_, i)| i.upload_mbps.unwrap() > 0.0 && i.download_mbps.is_none()));
    assert!(downs
        .windows(2)
        .all(|w| w[0].1.elapsed_s < w[1].1.elapsed_s));

    let none = Runtime::new(
        Store::open_in_memory().unwrap(),
        Config::parse(
            &format!("[[suite.tcp]]\ntarget = \"{}\"\n", silent.addr),
            "test",
        )
        .unwrap(),
    );
    let e = none.speed_test().await.unwrap_err();
    assert!(matches!(e, RuntimeError::NoBandwidthServer), "{e}");
    assert!(
        e.to_string().contains("add an iperf3 server in Settings"),
        "{e}"
    );
}

/// AutoPerf's daily data budget: escalated to tier 2 (a target is down),
/// the bandwidth test runs while the day's budget lasts; once what tier 2
/// moved passes it, the next escalated run leaves the bandwidth test out,
/// says so in the event log, and still runs the rest. A speed test is not
/// held by the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoperf_keeps_to_the_daily_data_budget() {
    use waddleperf_engine::config::Config;
    use waddleperf_engine::model::TestType;
    use waddleperf_engine::runtime::Runtime;
    use waddleperf_engine::store::Store;
    let _serial = support::timing::serial(&SERIAL).await;
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    let closed = support::closed_port();
    let text = format!(
        "[autoperf]\nescalate_after = 1\nbandwidth_budget_mb = 1\n\n\
         [[suite.tcp]]\ntarget = \"127.0.0.1:{}\"\n\n\
         [[suite.bandwidth]]\nserver = \"{}\"\nseconds = 1\nomit = 0\nstreams = 1\n",
        closed.port, server.addr
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wp.db");
    let rt = Runtime::new(
        Store::open(&db).unwrap(),
        Config::parse(&text, "test").unwrap(),
    );
    let bandwidth = |s: &waddleperf_engine::runtime::RunSummary| {
        s.results
            .iter()
            .filter(|m| m.test_type == TestType::Bandwidth)
            .cloned()
            .collect::<Vec<_>>()
    };

    let first = rt.run_now().await.unwrap();
    assert_eq!(first.tiers, [1, 2], "{first:?}");
    let moved = bandwidth(&first);
    assert_eq!(moved.len(), 1, "{first:?}");
    let bytes = moved[0].metrics.bytes.unwrap();
    println!("tier 2 bandwidth test moved {} MB", bytes / 1_000_000);
    assert!(bytes > 1_000_000, "{moved:?}");

    let second = rt.run_now().await.unwrap();
    assert_eq!(second.tiers, [1, 2], "{second:?}");
    assert!(bandwidth(&second).is_empty(), "{second:?}");
    let events = Store::open(&db).unwrap().events(None, None, 50).unwrap();
    let skipped = events
        .iter()
        .find(|e| e.kind == "bandwidth_budget")
        .expect("the skip is logged");
    println!("{}", skipped.message);
    assert!(
        skipped.message.contains("of a 1 MB budget"),
        "{}",
        skipped.message
    );

    let speed = rt.speed_test().await.unwrap();
    assert_eq!(bandwidth(&speed).len(), 2, "{speed:?}");
}

/// The CLI with the HTTP kinds against `waddleperf serve`: each kind from
/// `test bandwidth` and from `run --speed` with a configured server, and
/// the mistakes of their arguments named.
#[test]
fn the_cli_runs_the_http_kinds_against_serve() {
    let peer = waddleperf_testkit::peer::ServePeer::start("127.0.0.1", free_port(), None, &[]);
    let url = peer.url();
    let home = Home::new("");
    for (kind, dir, field) in [
        ("waddleperf", None, "upload_mbps"),
        ("librespeed", Some("-R"), "download_mbps"),
        ("rpm", Some("--bidir"), "rpm"),
    ] {
        let mut a = vec![
            "test",
            "bandwidth",
            &url,
            "--kind",
            kind,
            "-t",
            "1",
            "-O",
            "0",
            "--json",
        ];
        a.extend(dir);
        let out = home.ok(&a);
        let m: Measurement = serde_json::from_str(&out).unwrap();
        assert!(m.success, "{kind}: {m:?}");
        assert!(
            m.target.starts_with(&format!("{kind}+{url}")),
            "{}",
            m.target
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["metrics"][field].as_f64().unwrap() > 0.0, "{kind}: {out}");
    }
    for (args, says) in [
        (vec!["--kind", "rpm", "127.0.0.1:5201"], "is not a URL"),
        (
            vec!["--kind", "waddleperf", "ftp://x/"],
            "over http:// or https://",
        ),
        (
            vec!["--kind", "librespeed", &url, "-u"],
            "--udp: UDP bandwidth tests are for iperf3 servers only",
        ),
    ] {
        let mut a = vec!["test", "bandwidth"];
        a.extend(args.iter().copied());
        let o = home.wp(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let home = Home::new(&format!(
        "[[suite.bandwidth]]\nkind = \"rpm\"\nserver = \"{url}\"\nseconds = 4\n"
    ));
    let text = home.ok(&["run", "--speed"]);
    assert!(
        text.contains("bufferbloat grade") && text.contains(" RPM ("),
        "{text}"
    );
    assert!(text.contains("responsiveness"), "{text}");
}
