//! The `waddleperf` binary end to end, against real local peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::path::Path;
use std::process::Output;
use support::servers::{Nginx, Sshd, TestCa};
use support::{free_port, waddleperf_cmd};
use waddleperf_engine::model::{ErrorKind, Measurement};

/// `waddleperf` with the config and database in `dir`.
fn wp(dir: &Path, args: &[&str]) -> Output {
    wp_at(&dir.join("config.toml"), &dir.join("wp.db"), args)
}

/// `waddleperf --config CONFIG --db DB ARGS…`.
fn wp_at(config: &Path, db: &Path, args: &[&str]) -> Output {
    waddleperf_cmd(config, db).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<Measurement> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn run_stores_and_history_returns_the_same_results() {
    support::require_root("the nginx and sshd test servers");
    let ca = TestCa::new(&["DNS:localhost".into(), "IP:127.0.0.1".into()], 30);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    let sshd = Sshd::start("127.0.0.1", free_port());
    let held = support::closed_port();
    let closed = held.port;
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = ca.ca_pem.display();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            r#"
[probe]
timeout_ms = 3000

[[suite.http]]
url = "https://localhost:{https}/"
ca_file = "{ca_pem}"

[[suite.http]]
url = "http://127.0.0.1:{http}/"
mode = "http1"

[[suite.tcp]]
target = "127.0.0.1:{https}"

[[suite.tcp]]
target = "localhost:{https}"
mode = "tls"
ca_file = "{ca_pem}"

[[suite.tcp]]
target = "{ssh}"
mode = "ssh"

[[suite.tcp]]
target = "127.0.0.1:{closed}"
"#,
            https = nginx.https.port(),
            http = nginx.http.port(),
            ssh = sshd.addr,
        ),
    )
    .unwrap();

    let out = wp(dir.path(), &["run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ran = json_lines(&out);
    assert_eq!(ran.len(), 6, "{}", stdout(&out));
    let by_target = |t: &str| ran.iter().find(|m| m.target.contains(t)).unwrap();
    assert_eq!(
        by_target("https://localhost")
            .metrics
            .http_version
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        by_target("http://127.0.0.1")
            .metrics
            .http_version
            .as_deref(),
        Some("1.1")
    );
    assert!(by_target("ssh://")
        .metrics
        .ssh_banner
        .as_deref()
        .unwrap()
        .starts_with("SSH-2.0-"));
    assert!(by_target("tls://").metrics.cert_days_left.is_some());
    let failed = by_target(&format!(":{closed}"));
    assert!(!failed.success);
    assert_eq!(failed.error_kind, Some(ErrorKind::Refused));
    assert_eq!(ran.iter().filter(|m| m.success).count(), 5);
    // JSON uses the canonical names.
    let first_line: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "test_type",
        "target",
        "started_at",
        "duration_ms",
        "success",
        "tier",
        "metrics",
    ] {
        assert!(first_line.get(key).is_some(), "missing {key}");
    }

    // history --json returns exactly what run stored.
    let hist = wp(dir.path(), &["history", "--json"]);
    assert!(hist.status.success(), "{}", stderr(&hist));
    let mut stored = json_lines(&hist);
    let mut ran_sorted = ran.clone();
    stored.sort_by_key(|m| m.id);
    ran_sorted.sort_by_key(|m| m.id);
    assert_eq!(stored, ran_sorted);

    // The table names the failure; filters and CSV work.
    let table = wp(dir.path(), &["history"]);
    assert!(
        stdout(&table).contains("FAIL refused"),
        "{}",
        stdout(&table)
    );
    let ssh_target = format!("ssh://{}", sshd.addr);
    let one = wp(
        dir.path(),
        &[
            "history",
            "--json",
            "--type",
            "tcp",
            "--target",
            &ssh_target,
        ],
    );
    let only = json_lines(&one);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].target, ssh_target);
    let csv = wp(dir.path(), &["history", "--csv", "--since", "1h"]);
    let text = stdout(&csv);
    assert!(
        text.starts_with("id,started_at,test_type,target,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 7);

    // A second run adds six more; export writes them all to a file.
    let table_run = wp(dir.path(), &["run"]);
    assert!(table_run.status.success());
    assert!(
        stdout(&table_run).contains("6 tests, 1 failed"),
        "{}",
        stdout(&table_run)
    );
    let export = dir.path().join("out/export.json");
    let ex = wp(
        dir.path(),
        &["export", "--format", "json", "-o", export.to_str().unwrap()],
    );
    assert!(ex.status.success(), "{}", stderr(&ex));
    assert_eq!(
        std::fs::read_to_string(&export).unwrap().lines().count(),
        12
    );
}

/// `waddleperf serve --udp-echo 0` on loopback, and the port it chose.
fn udp_echo() -> (support::servers::Proc, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(support::waddleperf_bin())
        .args(["serve", "--udp-echo", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    let proc = support::servers::Proc {
        child,
        name: "waddleperf serve",
        log: None,
    };
    (proc, port)
}

#[test]
fn every_test_type_runs_from_the_cli_and_bad_input_names_the_problem() {
    support::require_root("raw ICMP sockets and dnsmasq");
    let dir = tempfile::tempdir().unwrap();
    let (_echo, port) = udp_echo();
    let dns = support::servers::Dnsmasq::start("127.0.0.1", free_port(), None);
    let udp_target = format!("127.0.0.1:{port}");
    let dns_server = dns.addr.to_string();
    // One port listening (kept open for the port check and the TCP
    // traceroute), one just freed: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port().to_string();
    let closed = free_port().to_string();
    let port_list = format!("{open},{closed}");
    let cases: [&[&str]; 7] = [
        &["test", "ports", "127.0.0.1", "-p", &port_list],
        &["test", "traceroute", "127.0.0.1", "-n", "--tcp", &open],
        &["test", "udp", &udp_target, "-c", "3", "-i", "20"],
        &[
            "test",
            "icmp",
            "127.0.0.1",
            "-c",
            "3",
            "-i",
            "20",
            "--size",
            "100",
        ],
        &[
            "test",
            "traceroute",
            "127.0.0.1",
            "--no-names",
            "--rounds",
            "2",
            "-i",
            "50",
        ],
        &["test", "mtu", "127.0.0.1", "--max", "1500"],
        &[
            "test",
            "dns",
            "wp.test",
            "--server",
            &dns_server,
            "--type",
            "mx",
        ],
    ];
    for args in cases {
        let mut a = args.to_vec();
        a.push("--json");
        let out = wp(dir.path(), &a);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let m: Measurement = serde_json::from_str(&stdout(&out)).unwrap();
        // The port check lists a closed port: it fails, and says which.
        assert_eq!(m.success, args[1] != "ports", "{args:?}: {m:?}");
        assert_eq!(m.test_type.as_str(), args[1]);
    }
    let hist = wp(dir.path(), &["history", "--json"]);
    let stored = json_lines(&hist);
    assert_eq!(stored.len(), 7, "every test type is stored");
    let ports = stored.iter().find(|m| m.test_type.as_str() == "ports");
    let ports = ports.unwrap().metrics.ports.as_ref().unwrap();
    let states: Vec<(String, &str)> = ports
        .iter()
        .map(|p| (p.port.to_string(), p.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [(open.clone(), "open"), (closed.clone(), "closed")],
        "{ports:?}"
    );
    let tcp_trace = stored
        .iter()
        .find(|m| m.metrics.trace_protocol.as_deref() == Some("tcp"))
        .unwrap();
    assert_eq!(tcp_trace.metrics.port_state.as_deref(), Some("open"));
    let by = |t: &str| stored.iter().find(|m| m.test_type.as_str() == t).unwrap();
    assert_eq!(by("udp").metrics.received, Some(3));
    assert_eq!(by("icmp").metrics.loss_pct, Some(0.0));
    assert_eq!(by("traceroute").metrics.hops.as_ref().unwrap().len(), 1);
    assert_eq!(by("ports").error_kind, Some(ErrorKind::Refused));
    assert_eq!(by("mtu").metrics.path_mtu, Some(1500));
    assert_eq!(
        by("dns").metrics.answers,
        Some(vec![support::servers::DNS_MX.1.to_owned()])
    );
    assert_eq!(by("dns").target, format!("wp.test MX @{dns_server}"));
    // An A query: dnsmasq answers, the system resolver (which does not know
    // wp.test) cannot, and the result says why instead of leaving dns_ms out.
    let out = wp(
        dir.path(),
        &[
            "test",
            "dns",
            support::servers::DNS_WWW.0,
            "--server",
            &dns_server,
            "--no-store",
            "--json",
        ],
    );
    let m: Measurement = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(m.success, "{m:?}");
    assert_eq!(m.metrics.dns_ms, None);
    assert!(
        m.metrics
            .system_resolver_error
            .as_deref()
            .is_some_and(|e| !e.is_empty()),
        "{m:?}"
    );

    // The human form shows the hop table.
    let out = wp(
        dir.path(),
        &["test", "traceroute", "127.0.0.1", "-n", "--no-store"],
    );
    assert!(stdout(&out).contains("TTL  ADDRESS"), "{}", stdout(&out));

    // Bad input: a clear error naming what is wrong, nothing stored.
    for (args, says) in [
        (
            &["test", "dns", "x.com", "--type", "AXFR"][..],
            "unknown record type `AXFR`",
        ),
        (
            &["test", "icmp", "bad host"][..],
            "`bad host` is not a host name",
        ),
        (&["test", "udp", "127.0.0.1"][..], "expected host:port"),
        (&["test", "udp", &udp_target, "--size", "4"][..], "--size 4"),
        (
            &["test", "http", "http://127.0.0.1/", "--http3"][..],
            "--http3 needs an https:// URL",
        ),
        (
            &["test", "dns", "x.com", "--server", "a b"][..],
            "--server a b",
        ),
        (
            &["test", "ports", "127.0.0.1", "-p", "22,http"][..],
            "--ports: `http` is not a port",
        ),
        (
            &["test", "ports", "127.0.0.1", "-p", "1-1000"][..],
            "it is not a scanner",
        ),
        (
            &["test", "traceroute", "127.0.0.1", "--tcp", "0"][..],
            "--tcp",
        ),
    ] {
        let out = wp(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(json_lines(&wp(dir.path(), &["history", "--json"])).len(), 7);

    // doctor names the methods; as root the raw socket works.
    let out = wp(dir.path(), &["doctor", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checks: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let raw = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ICMP (IPv4) raw ICMP socket")
        .unwrap();
    assert_eq!(raw["ok"], true);
    let text = stdout(&wp(dir.path(), &["doctor"]));
    assert!(text.contains("ping_group_range"), "{text}");
}

#[test]
fn ad_hoc_tests_print_json_and_store_unless_told_not_to() {
    support::require_root("the sshd test server");
    let sshd = Sshd::start("127.0.0.1", free_port());
    let dir = tempfile::tempdir().unwrap();
    let target = sshd.addr.to_string();
    let out = wp(
        dir.path(),
        &["test", "tcp", &target, "--ssh", "--json", "--no-store"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let m: Measurement = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(m.success);
    assert!(m.metrics.ssh_banner.unwrap().starts_with("SSH-2.0-"));
    assert!(
        !dir.path().join("wp.db").exists(),
        "--no-store creates no database"
    );

    let out = wp(dir.path(), &["test", "tcp", &target]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));
    let hist = wp(dir.path(), &["history", "--json"]);
    assert_eq!(json_lines(&hist).len(), 1);

    // A failed test is still exit 0: the tool worked.
    let out = wp(
        dir.path(),
        &["test", "http", "http://127.0.0.1:1/", "--timeout", "500"],
    );
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("FAILED") && stdout(&out).contains("refused"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tool_failures_exit_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[schedule]\ninterval_minutes = 60\n\n[[suite.tcp]]\ntarget = \"nope\"\n",
    )
    .unwrap();
    let out = wp(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("config.toml:5: `suite.tcp[0].target`"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("config.toml"),
        "[[suite.tcp]]\ntarget = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    // A database that is not one: refused, and left exactly as it was.
    let garbage = b"definitely not an sqlite database, but someone's file".repeat(100);
    std::fs::write(dir.path().join("wp.db"), &garbage).unwrap();
    let out = wp(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("corrupt or not a database"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(dir.path().join("wp.db")).unwrap(), garbage);

    // A database path that cannot be created.
    let out = wp_at(
        &dir.path().join("config.toml"),
        Path::new("/proc/waddleperf/cannot/wp.db"),
        &["run"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/proc/waddleperf/cannot"),
        "{}",
        stderr(&out)
    );

    // Bad command-line input names the flag; like clap's own errors, exit 2.
    let out = wp(dir.path(), &["test", "tcp", "no-port-here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected host:port"),
        "{}",
        stderr(&out)
    );
    let out = wp(dir.path(), &["history", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since soon"), "{}", stderr(&out));
    let out = wp(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = wp(dir.path(), &["config", "path"]);
    assert!(stdout(&out).contains("config.toml"));
    let out = wp(dir.path(), &["config", "show"]);
    assert!(stdout(&out).contains("does not exist: these are the defaults"));
    assert!(stdout(&out).contains("interval_minutes = 60"));
    let out = wp(dir.path(), &["config", "init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = wp(dir.path(), &["config", "init"]);
    assert_eq!(out.status.code(), Some(1), "no silent overwrite");
    assert!(stderr(&out).contains("--force"));
    let out = wp(dir.path(), &["config", "validate"]);
    assert!(stdout(&out).contains("ok (6 targets)"), "{}", stdout(&out));
    std::fs::write(dir.path().join("bad.toml"), "[store]\nretention_days = 0\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let out = wp(dir.path(), &["config", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.toml:2: `store.retention_days`"),
        "{}",
        stderr(&out)
    );
    // The per-reply wait's old name is still read, with a note; both names
    // at once is an error naming the line.
    let old = dir.path().join("old.toml");
    std::fs::write(
        &old,
        "[[suite.icmp]]\nhost = \"192.0.2.1\"\ntimeout_ms = 700\n",
    )
    .unwrap();
    let out = wp(dir.path(), &["config", "validate", old.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("note: suite.icmp[0].timeout_ms: read as `reply_wait_ms`"),
        "{}",
        stdout(&out)
    );
    std::fs::write(
        &old,
        "[[suite.icmp]]\nhost = \"192.0.2.1\"\nreply_wait_ms = 700\ntimeout_ms = 700\n",
    )
    .unwrap();
    let out = wp(dir.path(), &["config", "validate", old.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("old.toml:4: `suite.icmp[0].timeout_ms`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let out = wp(dir.path(), &["--version"]);
    let v = stdout(&out);
    assert!(v.starts_with("waddleperf 0.1.0+"), "{v}");
    assert!(v.contains("commit ") && v.contains("built "), "{v}");
    let out = wp(dir.path(), &["info", "--json"]);
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["device"]["device_id"].as_str().unwrap().len(), 64);
    assert_eq!(info["version"], "0.1.0");
    assert!(info["paths"]["db_file"]
        .as_str()
        .unwrap()
        .ends_with("wp.db"));
    let again = wp(dir.path(), &["info", "--json"]);
    let info2: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(
        info["device"]["device_id"], info2["device"]["device_id"],
        "stable id"
    );
}

#[test]
fn a_fresh_install_reads_an_empty_history_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["history"][..], "no results"),
        (&["events"][..], "no events"),
        (&["status"][..], "last run      never"),
        (&["export", "--format", "csv"][..], "id,started_at"),
        (&["config", "validate"][..], "the defaults are in effect"),
    ] {
        let out = wp(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains(says), "{args:?}: {}", stdout(&out));
    }
    assert_eq!(stdout(&wp(dir.path(), &["history", "--json"])), "");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&wp(dir.path(), &["status", "--json"]))).unwrap();
    assert_eq!(v["store"]["results"], 0);
    assert!(
        !dir.path().join("wp.db").exists(),
        "reading created a database"
    );
    // A configuration file named on the command line must exist.
    let out = wp(dir.path(), &["config", "validate", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_full_disk_is_reported_and_earlier_results_are_kept() {
    let disk = support::SmallDisk::new("1m");
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.toml"),
        "[[suite.tcp]]\ntarget = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        wp_at(
            &cfg.path().join("config.toml"),
            &disk.path().join("wp.db"),
            args,
        )
    };
    assert!(run(&["run"]).status.success());
    disk.fill();
    let out = run(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("wp.db") && err.contains("disk full"), "{err}");
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let hist = run(&["history", "--json"]);
    assert_eq!(
        json_lines(&hist).len(),
        1,
        "the first run's result is intact"
    );
}
