//! The window started by the person while no agent runs (the macOS app,
//! the AppImage, the Start menu, `waddleperf-desktop` from a shell): the
//! agent takes the window's place and opens the window.

use crate::common::*;
use waddleperf_testkit as support;

use std::process::Stdio;
use std::time::{Duration, Instant};
use support::desktop::{desktop_bin, Display};

#[test]
fn a_window_started_without_an_agent_hands_over_to_a_new_agent() {
    support::require_root("the window-first launch test");
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(true);
    let started = Instant::now();
    let mut child = display
        .command(desktop_bin())
        .args(files.args(Some("history")))
        .env("WADDLEPERF_WINDOW_GRACE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The same process is now the agent (on Unix it replaces the window,
    // so an AppImage's mount stays for as long as the agent runs).
    wait_until(
        "the agent in the window's place",
        Duration::from_secs(60),
        || std::os::unix::net::UnixStream::connect(files.socket()).is_ok(),
    );
    assert!(
        pids_named("waddleperf-tray").contains(&pid),
        "process {pid} is the agent now"
    );
    display.wait_for_window("tray-icon tray app main", Duration::from_secs(60));
    // It opened the window on the page asked for, as its child.
    let window = display.wait_for_window_named("WaddlePerf$", Duration::from_secs(60));
    println!(
        "agent in the window's place, tray icon and window {window} after {:?}",
        started.elapsed()
    );
    wait_until("the window process", Duration::from_secs(30), || {
        !window_pids(pid).is_empty()
    });
    // SIGTERM ends the agent, and the window with it.
    let windows = window_pids(pid);
    support::run(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]));
    let status = ended(&mut child, "SIGTERM", Duration::from_secs(30));
    assert!(status.success(), "{status}");
    wait_until(
        "the window to end with the agent",
        Duration::from_secs(30),
        || windows.iter().all(|w| !alive(*w)),
    );
}
