//! Notifications end to end with a real notification daemon: Debian's dunst
//! on a headless X display and a private session bus, and `waddleperf
//! daemon` started there with a target that is down. dunst's own history
//! (`dunstctl history`) tells what it received: one note, from WaddlePerf,
//! naming the target.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use std::process::Stdio;
use std::time::{Duration, Instant};
use support::desktop::Display;

/// `(appname, summary, body)` of every notification dunst has shown.
fn dunst_history(display: &Display) -> Vec<(String, String, String)> {
    let out = display.command("dunstctl").arg("history").output().unwrap();
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    let text = |n: &serde_json::Value, k: &str| n[k]["data"].as_str().unwrap_or("").to_owned();
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group.as_array().cloned().unwrap_or_default())
        .map(|n| (text(&n, "appname"), text(&n, "summary"), text(&n, "body")))
        .collect()
}

#[test]
fn a_target_going_down_reaches_a_real_notification_daemon_once() {
    assert!(
        std::process::Command::new("dunst")
            .arg("--version")
            .output()
            .is_ok(),
        "dunst (Debian package dunst) is needed; scripts/test.sh installs it"
    );
    let display = Display::start(false);
    let home = display.home.path().to_owned();
    // dunst keeps a note in its history once it has been shown and has
    // timed out: a one-second timeout, kept in the history for good.
    std::fs::create_dir_all(home.join(".config/dunst")).unwrap();
    std::fs::write(
        home.join(".config/dunst/dunstrc"),
        "[global]\n    timeout = 1\n    idle_threshold = 0\n    sticky_history = yes\n    history_length = 50\n",
    )
    .unwrap();
    let mut dunst = display
        .command("dunst")
        .args([
            "-config",
            home.join(".config/dunst/dunstrc").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while display
        .command("dunstctl")
        .arg("is-paused")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dunst did not come up on the bus"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let closed = support::closed_port();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[schedule]\ninterval_minutes = 60\nrun_on_start = true\n\
             [[suite.tcp]]\ntarget = \"127.0.0.1:{}\"\n",
            closed.port
        ),
    )
    .unwrap();
    let mut daemon = display
        .command(support::waddleperf_bin())
        .arg("--config")
        .arg(home.join("config.toml"))
        .arg("--db")
        .arg(home.join("wp.db"))
        .arg("--log-dir")
        .arg(home.join("logs"))
        .args(["daemon", "--grace", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let h = dunst_history(&display);
        if !h.is_empty() {
            break h;
        }
        assert!(Instant::now() < deadline, "no notification reached dunst");
        std::thread::sleep(Duration::from_millis(100));
    };
    // One run: one note for the change, nothing more a moment later.
    std::thread::sleep(Duration::from_millis(1500));
    let shown_after = dunst_history(&display);
    println!("dunst received: {shown_after:?}");
    assert_eq!(shown_after.len(), shown.len());
    assert_eq!(shown.len(), 1, "{shown:?}");
    let (app, summary, body) = &shown[0];
    assert_eq!(app, "WaddlePerf");
    assert!(summary.starts_with("WaddlePerf"), "{summary}");
    let port = closed.port.to_string();
    assert!(
        summary.contains(&port) || body.contains(&port),
        "the note names the target: {summary} / {body}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(daemon.wait().unwrap().success());
    let _ = dunst.kill();
    let _ = dunst.wait();
}
