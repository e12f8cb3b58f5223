//! The CLI against careless and hostile input, as a user or a peer would
//! give it: times no clock can hold, a closed output pipe, terminal escape
//! sequences from the network, a configuration of 10 MB or endless, targets
//! that look almost right, a CA file that is not there.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use support::cli_home::{results, run_measured, text, Home};
use support::servers::SilentServer;
use waddleperf_engine::store::Store;

/// A usage error: exit 2, the message naming the problem.
fn fails_with(h: &Home, args: &[&str], needle: &str) -> String {
    let o = h.wp(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn times_no_clock_can_hold_are_refused_by_name() {
    let h = Home::new("");
    Store::open(&h.db()).unwrap().insert(&results(2)).unwrap();
    for args in [
        ["history", "--since", "99999999999999d"],
        ["history", "--until", "9223372036854775807s"],
        ["events", "--since", "99999999999999w"],
        ["export", "--since", "999999999999999999y"],
        ["history", "--since", "99999999999999999999999h"],
    ] {
        let err = fails_with(&h, &args, "reaches before any date");
        assert!(err.contains(args[1]) && err.contains(args[2]), "{err}");
    }
    fails_with(
        &h,
        &["history", "--since", "2026-13-45T00:00:00Z"],
        "not a valid RFC 3339 time",
    );
    fails_with(&h, &["history", "--since", "24x"], "unknown unit `x`");
    fails_with(&h, &["history", "--since", "h"], "expected a duration");
    // Sane values still work.
    let o = h.ok(&["history", "--since", "30d", "--json"]);
    assert_eq!(o.lines().count(), 2);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let h = Home::new("");
    Store::open(&h.db())
        .unwrap()
        .insert(&results(5000))
        .unwrap();
    for args in [
        &["history", "--json"][..],
        &["history"],
        &["export", "--format", "csv"],
    ] {
        let mut child = h
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader has its line and goes (`| head -1`).
        let o = child.wait_with_output().unwrap();
        assert!(!first.is_empty());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", text(&o));
    }
}

#[test]
fn escape_sequences_from_a_peer_are_shown_not_obeyed() {
    let banner = b"SSH-2.0-x\x1b[2J\x1b]0;pwned\x07\x9b31m\r\n";
    let srv = SilentServer::start(banner);
    let h = Home::new("");
    let target = srv.addr.to_string();
    let o = h.wp(&["test", "tcp", "--ssh", &target]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !o.stdout.contains(&0x1b) && !o.stdout.contains(&0x07),
        "{:?}",
        o.stdout
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("SSH-2.0-x\\e[2J\\e]0;pwned\\x07"), "{out}");
    // The table shows it escaped too; JSON keeps the data as it came.
    let table = h.ok(&["history"]);
    assert!(!table.contains('\u{1b}'), "{table}");
    let json = h.ok(&["history", "--json"]);
    let m: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    let kept = serde_json::to_string(&m).unwrap();
    assert!(kept.contains("\\u001b[2J"), "{kept}");
}

#[test]
fn configurations_of_10_mb_or_endless_give_short_errors() {
    let h = Home::new("");
    let cmd = {
        let mut c = support::waddleperf_cmd(std::path::Path::new("/dev/zero"), &h.db());
        c.arg("status");
        c
    };
    let (o, f) = run_measured(&cmd, "");
    println!(
        "--config /dev/zero: peak RSS {} KB, {:?}",
        f.peak_rss_kb, f.elapsed
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("larger than 1024 KiB"), "{}", text(&o));
    assert!(f.peak_rss_kb < 64 * 1024, "{} KB", f.peak_rss_kb);

    // A 900 KB value (a file may be 1 MiB at most): the error quotes 80 characters of it.
    let long = "a".repeat(900_000);
    let file = h.root.join("long.toml");
    std::fs::write(&file, format!("[[suite.http]]\nurl = \"ftp://{long}\"\n")).unwrap();
    let o = h.wp(&["config", "validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        o.stderr.len() < 2000,
        "the error is {} bytes",
        o.stderr.len()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`suite.http[0].url`") && err.contains(":2:"),
        "{err}"
    );
    // A 10 MB file is refused before it is parsed.
    std::fs::write(
        &file,
        format!(
            "[[suite.http]]\nurl = \"http://{}\"\n",
            "a".repeat(10 << 20)
        ),
    )
    .unwrap();
    let o = h.wp(&["config", "validate", file.to_str().unwrap()]);
    assert!(text(&o).contains("larger than 1024 KiB"), "{}", text(&o));
    assert!(o.stderr.len() < 2000);
}

#[test]
fn almost_right_input_is_refused_before_anything_is_measured() {
    let h = Home::new("");
    fails_with(&h, &["test", "tcp", "127.0.0.1:+80"], "port `+80`");
    fails_with(&h, &["test", "udp", "127.0.0.1: 7"], "port ` 7`");
    // One rule for --ca-file: a usage error (exit 2), nothing stored.
    for args in [
        &[
            "test",
            "tcp",
            "--tls",
            "--ca-file",
            "/nonexistent.pem",
            "127.0.0.1:1",
        ][..],
        &[
            "test",
            "http",
            "--ca-file",
            "/nonexistent.pem",
            "https://127.0.0.1:1/",
        ],
    ] {
        fails_with(&h, args, "--ca-file: cannot read CA file /nonexistent.pem");
    }
    let empty = h.root.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    fails_with(
        &h,
        &[
            "test",
            "tcp",
            "--tls",
            "--ca-file",
            empty.to_str().unwrap(),
            "127.0.0.1:1",
        ],
        "holds no certificate",
    );
    assert!(!h.db().exists(), "nothing was stored");
    // An error's cause is said once.
    let dir = tempfile::tempdir().unwrap();
    let o = support::waddleperf_cmd(&h.root.join("config.toml"), dir.path())
        .args(["test", "tcp", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "not a usage error: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.split(": ").last().unwrap().trim();
    assert_eq!(err.matches(first).count(), 1, "{err}");
}

#[test]
fn http3_to_a_closed_udp_port_fails_at_once() {
    let h = Home::new("");
    // A port just released: nothing answers on it, the kernel sends ICMP
    // port unreachable.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}/");
    let t = std::time::Instant::now();
    let o = h.wp(&[
        "test",
        "http",
        &url,
        "--http3",
        "--timeout",
        "10000",
        "--json",
    ]);
    let took = t.elapsed();
    let m: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(m["error_kind"], "http3_unavailable", "{m}");
    assert!(m["error"].as_str().unwrap().contains("is closed"), "{m}");
    // The handshake would wait 7.5 s; the refusal ends it at once.
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}
