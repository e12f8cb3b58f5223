//! The desktop app's footprint and speed, on the release build under Xvfb:
//!
//! - launch to tray ready: from spawning the app to its icon in the XEmbed
//!   tray (trayer), five launches;
//! - the History page over a year of hourly results for 20 targets (175,200
//!   rows): time from the page mounting to its first chart drawn, and from
//!   choosing the 1 y range to its first chart, read in the webview;
//! - idle footprint with the window closed: resident memory of the app and
//!   every process it started (WebKit's), and CPU over a minute with no run.
//!
//! Run it with:
//!
//!     cargo build --release -p waddleperf-desktop
//!     cargo bench --bench desktop
//!
//! `WADDLEPERF_DESKTOP_BIN` names another build; `WADDLEPERF_BENCH_SECONDS`
//! the idle window (default 60). Needs root (test peers), Xvfb, trayer,
//! xdotool and tauri-driver, as the end-to-end tests do, and python3-xlib (to
//! close the window as a window manager would). Prints a Markdown
//! table for docs/benchmarks.md. Targets: idle RSS < 60 MB and no CPU between
//! runs; first chart < 300 ms.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use waddleperf_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::desktop::{Display, Driver, Session};
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::store::Store;

const TICKS: f64 = 100.0;

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size: shared pages divided among the processes that
/// map them, so a sum over processes counts each page once.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some(f) = stat_fields(p) {
                if f.get(1).and_then(|v| v.parse::<u32>().ok()) == Some(parent) && !all.contains(&p)
                {
                    all.push(p);
                }
            }
        }
        i += 1;
    }
    all
}

fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn ticks(pid: u32) -> u64 {
    stat_fields(pid)
        .and_then(|f| Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
        .unwrap_or(0)
}

fn app_bin() -> PathBuf {
    match std::env::var_os("WADDLEPERF_DESKTOP_BIN") {
        Some(p) => PathBuf::from(p),
        None => support::desktop::desktop_bin(),
    }
}

/// A year of hourly results for 20 targets, ending now.
fn seed(db: &Path) -> usize {
    let mut store = Store::open(db).unwrap();
    let now = chrono::Utc::now();
    let hours: i64 = 365 * 24;
    let mut batch = Vec::with_capacity(20 * 24);
    let mut n = 0;
    for h in (0..hours).rev() {
        for t in 0..20u32 {
            let (kind, target) = if t < 10 {
                (TestType::Http, format!("https://service-{t}.example/"))
            } else {
                (TestType::Tcp, format!("host-{t}.example:443"))
            };
            let mut m = Measurement::begin(kind, target);
            m.started_at =
                now - chrono::Duration::hours(h) + chrono::Duration::seconds(i64::from(t));
            let base = 10.0 + f64::from(t) * 3.0 + ((h % 24) as f64 - 12.0).abs();
            m.success = (h + i64::from(t)) % 97 != 0;
            m.latency_ms = m.success.then_some(base);
            m.duration_ms = base * 1.5;
            m.metrics.connect_ms = Some(base / 3.0);
            if kind == TestType::Http {
                m.metrics.dns_ms = Some(2.0);
                m.metrics.tls_ms = Some(base / 3.0);
                m.metrics.ttfb_ms = Some(base);
                m.metrics.total_ms = Some(base * 1.4);
                m.metrics.throughput_mbps = Some(50.0 + f64::from(t));
            }
            batch.push(m);
        }
        if batch.len() >= 2000 {
            n += store.insert(&batch).unwrap();
            batch.clear();
        }
    }
    n += store.insert(&batch).unwrap();
    n
}

fn median(v: &mut [f64]) -> f64 {
    support::median(v)
}

fn main() {
    support::require_root("the desktop benchmark");
    let idle_secs: u64 = std::env::var("WADDLEPERF_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let app = app_bin();
    let dir = tempfile::tempdir().unwrap();
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[schedule]\ninterval_minutes = 60\nrun_on_start = false\n\
             [notifications]\nenabled = false\n[sync]\nenabled = false\n\
             [[suite.tcp]]\ntarget = \"{}\"\n",
            peer.local_addr().unwrap()
        ),
    )
    .unwrap();
    let db = dir.path().join("data/waddleperf.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let seeding = Instant::now();
    let rows = seed(&db);
    eprintln!("seeded {rows} results in {:?}", seeding.elapsed());
    let args = |show: Option<&str>| {
        let mut a: Vec<String> = Vec::new();
        if let Some(p) = show {
            a.extend(["--show".into(), p.into()]);
        }
        a.extend([
            "--config".into(),
            config.display().to_string(),
            "--db".into(),
            db.display().to_string(),
            "--log-dir".into(),
            dir.path().join("logs").display().to_string(),
        ]);
        a
    };

    // Launch to tray ready.
    let display = Display::start(true);
    let mut launch = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut child = display
            .command(&app)
            .args(args(None))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        display.wait_for_window("tray-icon tray app main", Duration::from_secs(60));
        launch.push(t0.elapsed().as_secs_f64() * 1000.0);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        child.wait().unwrap();
        while !display
            .xdotool(&["search", "--class", "tray-icon tray app main"])
            .trim()
            .is_empty()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("launch to tray: {launch:?} ms");

    // History over a year of data, then the window closed and the app idle.
    let driver = Driver::start(&display);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first, year) = rt.block_on(async {
        let s = Session::start(&driver, &app, &args(Some("history"))).await;
        let first = s
            .wait_for(
                "the first chart",
                "return document.querySelector('#main').dataset.firstChartMs || null",
                Duration::from_secs(60),
            )
            .await;
        let mut year = Vec::new();
        for range in ["1y", "24h", "1y", "24h", "1y"] {
            s.click(&format!("#range-{range}")).await;
            let v = s
                .wait_for(
                    "the range's first chart",
                    "return document.querySelector('#main').dataset.loadChartMs || null",
                    Duration::from_secs(60),
                )
                .await;
            if range == "1y" {
                year.push(v.as_str().unwrap().parse::<f64>().unwrap());
            }
        }
        s.end().await;
        (first.as_str().unwrap().parse::<f64>().unwrap(), year)
    });
    // (Ending the session has stopped the app.)
    drop(driver);

    // The footprint: the app started as a person would, its window opened
    // on History, then closed with the window manager's close request
    // (WM_DELETE_WINDOW), leaving the app in the tray.
    let mut child = display
        .command(&app)
        .args(args(Some("history")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let window = display.wait_for_window_named("WaddlePerf", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(8));
    let pid = child.id();
    let open_kib: u64 = tree(pid).iter().map(|p| status_kib(*p, "VmRSS:")).sum();
    let open_pss: u64 = tree(pid).iter().map(|p| pss_kib(*p)).sum();
    close_window(&display, &window);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        child.try_wait().unwrap().is_none(),
        "closing the window ended the app"
    );
    let procs = tree(pid);
    let names: Vec<String> = procs.iter().map(|p| name(*p)).collect();
    eprintln!("window closed; processes: {names:?}");
    let t0: u64 = procs.iter().map(|p| ticks(*p)).sum();
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(idle_secs) {
        let procs = tree(pid);
        let kib: u64 = procs.iter().map(|p| status_kib(*p, "VmRSS:")).sum();
        rss.push(kib as f64 / 1024.0);
        pss.push(procs.iter().map(|p| pss_kib(*p)).sum::<u64>() as f64 / 1024.0);
        std::thread::sleep(Duration::from_secs(1));
    }
    let procs_after = tree(pid);
    let t1: u64 = procs_after.iter().map(|p| ticks(*p)).sum();
    let cpu_pct = (t1.saturating_sub(t0)) as f64 / TICKS / start.elapsed().as_secs_f64() * 100.0;
    let app_only = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    let app_anon = status_kib(pid, "RssAnon:") as f64 / 1024.0;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();

    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| launch to tray ready (median of 5) | {:.0} ms (min {:.0}, max {:.0}) | |",
        median(&mut launch.clone()),
        launch.iter().cloned().fold(f64::INFINITY, f64::min),
        launch.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "| History, {rows} results (20 targets × a year hourly): mount → first chart (24 h) | {first:.0} ms | < 300 ms |"
    );
    println!(
        "| History: choose 1 y → first chart (median of {}) | {:.0} ms | < 300 ms |",
        year.len(),
        median(&mut year.clone())
    );
    println!(
        "| window open (app + WebKit processes): RSS / PSS | {:.1} MB / {:.1} MB | |",
        open_kib as f64 / 1024.0,
        open_pss as f64 / 1024.0
    );
    println!(
        "| window closed, app + {} other processes ({}), median over {idle_secs} s: RSS / PSS | {:.1} MB / {:.1} MB (app alone: RSS {app_only:.1} MB, of it {app_anon:.1} MB anonymous) | < 60 MB |",
        procs_after.len() - 1,
        names.iter().skip(1).cloned().collect::<Vec<_>>().join(", "),
        median(&mut rss),
        median(&mut pss)
    );
    println!("| CPU between runs, window closed | {cpu_pct:.4} % | ≈ 0 |");
}

/// Asks the window to close as a window manager would: a WM_DELETE_WINDOW
/// client message (python3-xlib; Xvfb runs no window manager).
fn close_window(display: &Display, window: &str) {
    let script = format!(
        "from Xlib import display, X, protocol\n\
         d = display.Display()\n\
         w = d.create_resource_object('window', {window})\n\
         proto = d.intern_atom('WM_PROTOCOLS'); delete = d.intern_atom('WM_DELETE_WINDOW')\n\
         ev = protocol.event.ClientMessage(window=w, client_type=proto, data=(32, [delete, X.CurrentTime, 0, 0, 0]))\n\
         w.send_event(ev, event_mask=0)\n\
         d.flush()\n"
    );
    let out = display
        .command("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "python3-xlib is needed: {out:?}");
}
