//! The service definitions in `installers/` are valid for the tools that
//! read them, and start the agent the way docs/monitoring.md says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::process::Command;
use support::{run, waddleperf_bin};

const UNIT: &str = include_str!("../installers/linux/waddleperf.service");
const PLIST: &str = "installers/macos/io.penguintech.waddleperf.agent.plist";

#[test]
fn systemd_unit_verifies_and_runs_the_daemon() {
    assert!(UNIT.contains("ExecStart=/usr/bin/waddleperf daemon\n"));
    assert!(UNIT.contains("ExecReload=/bin/kill -HUP $MAINPID\n"));
    // systemd-analyze checks that ExecStart is executable: point it at the
    // binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("waddleperf.service");
    std::fs::write(
        &unit,
        UNIT.replace(
            "/usr/bin/waddleperf",
            &waddleperf_bin().display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (package systemd) is needed");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

#[test]
fn launchd_plist_parses_and_runs_the_daemon() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    let script = format!(
        "import plistlib, json; p = plistlib.load(open('{path}{PLIST}', 'rb')); print(json.dumps(p))"
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Label"], "io.penguintech.waddleperf.agent");
    assert_eq!(v["ProgramArguments"][1], "daemon");
    assert_eq!(v["RunAtLoad"], true);
}
