//! Footprint of `waddleperf daemon` between runs: resident memory and CPU,
//! sampled from /proc every second for several minutes with the shortest
//! interval (1 minute) and a one-target suite on loopback, so that the
//! window holds several runs. Linux only; no privileges needed.
//!
//!     cargo bench --bench daemon_idle            # 3 minutes
//!     WADDLEPERF_BENCH_SECONDS=600 cargo bench --bench daemon_idle
//!
//! Prints a Markdown table for docs/benchmarks.md. Targets: RSS < 15 MB,
//! CPU < 0.1 % between runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a process, in ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    let secs: u64 = std::env::var("WADDLEPERF_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    // A peer that accepts and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut b = [0u8; 16];
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = s.read(&mut b);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[schedule]\ninterval_minutes = 1\nrun_on_start = true\n\
             [notifications]\nenabled = false\n\
             [[suite.tcp]]\ntarget = \"{peer}\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_waddleperf"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("--db")
        .arg(dir.path().join("wp.db"))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Let start-up and the first run settle.
    std::thread::sleep(Duration::from_secs(5));
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid).unwrap();
    let mut samples = Vec::new();
    // CPU per second, to tell the seconds with a run from the idle ones.
    let mut per_sec = Vec::new();
    let mut last = c0;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let c = cpu_ticks(pid).unwrap();
        per_sec.push(c - last);
        last = c;
        samples.push(rss_kib(pid).unwrap());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let total = (last - c0) as f64 / TICKS;
    let _ = child.kill();
    let _ = child.wait();
    let runs = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .map(|t| t.matches("run finished").count())
        .sum::<usize>();
    // Idle: the seconds with no CPU tick plus those with ticks but no run
    // nearby cannot be told apart by /proc alone; report the whole window
    // (runs included) and the window without the 3 busiest seconds per run.
    let mut sorted = per_sec.clone();
    sorted.sort_unstable();
    let busy = (runs * 3).min(sorted.len());
    let idle_ticks: u64 = sorted[..sorted.len() - busy].iter().sum();
    let idle_secs = (sorted.len() - busy) as f64;
    let max_rss = samples.iter().max().copied().unwrap_or(0);
    let mut rs = samples.clone();
    rs.sort_unstable();
    let med_rss = rs[rs.len() / 2];
    println!(
        "| `waddleperf daemon`, 1-minute interval, {elapsed:.0} s, {runs} runs | figure | target |"
    );
    println!("|---|---|---|");
    println!(
        "| RSS, median | {:.1} MB | < 15 MB |",
        med_rss as f64 / 1024.0
    );
    println!(
        "| RSS, peak (during runs) | {:.1} MB | |",
        max_rss as f64 / 1024.0
    );
    println!(
        "| CPU, whole window (runs included) | {:.3} % ({total:.2} s) | |",
        100.0 * total / elapsed
    );
    println!(
        "| CPU between runs | {:.4} % | < 0.1 % |",
        100.0 * idle_ticks as f64 / TICKS / idle_secs.max(1.0)
    );
}
