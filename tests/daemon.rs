//! `waddleperf daemon` as a real process: it runs on start, keeps one agent
//! per database, logs to daily files, stops cleanly on SIGTERM in the middle
//! of a run (nothing half-written) and, restarted, carries on with no
//! duplicates. `status`, `pause` and `events` read the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::servers::SilentServer;
use support::waddleperf_cmd;
use waddleperf_engine::store::{HistoryQuery, Store};

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        Dirs { _tmp: tmp, root }
    }
    fn db(&self) -> PathBuf {
        self.root.join("data/wp.db")
    }
    fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = waddleperf_cmd(&self.root.join("config.toml"), &self.db());
        c.arg("--log-dir").arg(self.logs()).args(args);
        c
    }
    fn wp(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn daemon(&self, n: u32) -> Child {
        let err = std::fs::File::create(self.root.join(format!("stderr-{n}.txt"))).unwrap();
        self.cmd(&["daemon", "--grace", "1"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }
    fn stderr_of(&self, n: u32) -> String {
        std::fs::read_to_string(self.root.join(format!("stderr-{n}.txt"))).unwrap_or_default()
    }
    /// The text of every log file.
    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(rd) = std::fs::read_dir(self.logs()) {
            for e in rd.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        text
    }
    fn results(&self) -> u64 {
        if !self.db().exists() {
            return 0;
        }
        Store::open(&self.db())
            .ok()
            .and_then(|s| s.stats().ok())
            .map_or(0, |s| s.results)
    }
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, t.elapsed());
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the daemon ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_consistent(db: &Path) -> Vec<waddleperf_engine::Measurement> {
    let store = Store::open(db).unwrap();
    assert!(store.check().unwrap().is_empty(), "database damaged");
    let all = store.history(&HistoryQuery::default()).unwrap();
    let ids: std::collections::HashSet<_> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), all.len(), "duplicate results");
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.outbox_pending, stats.results,
        "every result has its outbox row (written in the same transaction)"
    );
    all
}

#[test]
fn daemon_runs_stops_cleanly_mid_run_and_restarts() {
    let silent = SilentServer::start(b"");
    let d = Dirs::new();
    std::fs::write(
        d.root.join("config.toml"),
        format!(
            r#"
[schedule]
interval_minutes = 60
run_on_start = true
[notifications]
enabled = false
[log]
level = "debug"
[[suite.tcp]]
target = "{a}"
[[suite.tcp]]
target = "{a}"
mode = "ssh"
timeout_ms = 4000
"#,
            a = silent.addr
        ),
    )
    .unwrap();

    // First start: the run begins at once; the raw connect is stored while
    // the SSH test waits for a banner that never comes.
    let mut a = d.daemon(1);
    wait_until("the first result", Duration::from_secs(20), || {
        d.results() >= 1
    });

    let st = d.wp(&["status"]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        text.contains(&format!("running (pid {})", a.id())),
        "status names the agent: {text}"
    );
    let second = d.wp(&["daemon"]);
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already running"), "{err}");

    // SIGTERM mid-run: the SSH test is abandoned after the 1 s grace.
    let (status, took) = stop(&mut a);
    println!("stopped mid-run in {took:?}");
    assert!(status.success(), "exit {status}: {}", d.stderr_of(1));
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
    let logs = d.log_text();
    for line in [
        "agent started",
        "run started",
        "SIGTERM: stopping",
        "agent stopped",
    ] {
        assert!(logs.contains(line), "log files lack `{line}`:\n{logs}");
    }
    let files: Vec<_> = std::fs::read_dir(d.logs()).unwrap().flatten().collect();
    assert!(
        files.iter().all(|f| {
            let n = f.file_name().to_string_lossy().into_owned();
            n.starts_with("waddleperf.") && n.ends_with(".log")
        }),
        "daily files named waddleperf.<date>.log"
    );
    let after_first = check_consistent(&d.db());
    assert_eq!(after_first.len(), 1, "only the finished test was stored");
    assert!(after_first[0].success);

    // Restart: the run on start completes this time.
    let mut b = d.daemon(2);
    wait_until("the second run to finish", Duration::from_secs(30), || {
        d.log_text().matches("run finished").count() >= 2
    });
    let paused = d.wp(&["pause"]);
    assert!(paused.status.success());
    let st = d.wp(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["paused"], true);
    assert_eq!(v["agent_running"], true);
    assert!(v["agent"]["next_run"].is_string(), "{v}");
    assert_eq!(v["health"], "down", "the SSH target timed out: {v}");
    let (status, _) = stop(&mut b);
    assert!(status.success(), "exit {status}: {}", d.stderr_of(2));

    let all = check_consistent(&d.db());
    assert_eq!(all.len(), 3, "1 from the stopped run + 2 from the full one");
    let ssh: Vec<_> = all
        .iter()
        .filter(|m| m.target.starts_with("ssh://"))
        .collect();
    assert_eq!(ssh.len(), 1);
    assert!(!ssh[0].success);
    assert!(ssh[0].duration_ms >= 4000.0);
    let st = d.wp(&["status"]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("agent         not running"), "{text}");
    assert!(text.contains("paused"), "{text}");
    assert!(text.contains("down      tcp   ssh://"), "{text}");
    let ev = d.wp(&["events"]);
    let text = String::from_utf8_lossy(&ev.stdout);
    assert!(
        text.contains("health_changed") && text.contains("paused"),
        "{text}"
    );
}

/// The agent's planned next run, as it keeps it in the database (read
/// directly: `status` refuses to run while the configuration file is bad).
fn next_run(d: &Dirs) -> Option<chrono::DateTime<chrono::Utc>> {
    let store = Store::open(&d.db()).ok()?;
    let v: serde_json::Value = store.state_get("agent").ok()??;
    v["next_run"].as_str()?.parse().ok()
}

#[test]
fn sighup_reloads_the_configuration_and_a_bad_file_keeps_the_one_in_effect() {
    let d = Dirs::new();
    let config = |minutes: u32| {
        format!(
            "[schedule]\ninterval_minutes = {minutes}\nrun_on_start = false\n\
             [notifications]\nenabled = false\n[[suite.tcp]]\ntarget = \"127.0.0.1:9\"\n"
        )
    };
    // Every 7 days: the next run is days away.
    std::fs::write(d.root.join("config.toml"), config(10_080)).unwrap();
    let mut a = d.daemon(1);
    wait_until("the agent's first plan", Duration::from_secs(20), || {
        next_run(&d).is_some()
    });
    let far = next_run(&d).unwrap();
    let pid = Pid::from_raw(a.id() as i32);

    // A broken file: refused, the configuration in effect is kept.
    std::fs::write(d.root.join("config.toml"), "[schedule\n").unwrap();
    kill(pid, Signal::SIGHUP).unwrap();
    wait_until("the refusal in the log", Duration::from_secs(10), || {
        d.log_text().contains("configuration not reloaded")
    });
    assert_eq!(next_run(&d), Some(far), "the old plan stands");
    assert!(a.try_wait().unwrap().is_none(), "the agent lives on");

    // Every minute: the scheduler re-plans at once.
    std::fs::write(d.root.join("config.toml"), config(1)).unwrap();
    kill(pid, Signal::SIGHUP).unwrap();
    wait_until("a plan within a minute", Duration::from_secs(20), || {
        next_run(&d).is_some_and(|t| t - chrono::Utc::now() <= chrono::Duration::seconds(61))
    });
    // The log line is written after the new plan is in effect: wait for it.
    wait_until("the reload in the log", Duration::from_secs(10), || {
        d.log_text().contains("configuration reloaded")
    });
    assert!(
        far - chrono::Utc::now() > chrono::Duration::hours(1),
        "{far}"
    );
    let (status, _) = stop(&mut a);
    assert!(status.success(), "{}", d.stderr_of(1));
}
