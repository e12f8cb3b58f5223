//! A private home for CLI tests (config, database, logs in a temporary
//! folder), the contract double with alice and an enrollment secret, and the
//! helpers that run `waddleperf` against them as real processes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::unified_api::{ApiDouble, User};
use super::waddleperf_cmd;
use chrono::{Duration as ChronoDuration, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use waddleperf_engine::model::{Measurement, TestType};

pub struct Home {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    /// Extra environment for every command (a D-Bus session for the keychain).
    pub env: Vec<(String, String)>,
}

impl Home {
    pub fn new(config: &str) -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        std::fs::write(root.join("config.toml"), config).unwrap();
        Home {
            _tmp: tmp,
            root,
            env: Vec::new(),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("data/wp.db")
    }
    pub fn secrets_file(&self) -> PathBuf {
        self.root.join("data/secrets.json")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = waddleperf_cmd(&self.root.join("config.toml"), &self.db());
        c.arg("--log-dir")
            .arg(self.root.join("logs"))
            .args(args)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("WADDLEPERF_USERNAME")
            .env_remove("WADDLEPERF_ENROLL_SECRET");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
    /// Runs with `stdin` fed in.
    pub fn wp_in(&self, args: &[&str], stdin: &str) -> Output {
        output_with_stdin(&mut self.cmd(args), stdin)
    }
    pub fn wp(&self, args: &[&str]) -> Output {
        self.wp_in(args, "")
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.wp(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }
    pub fn daemon(&self, n: u32) -> Child {
        let err = std::fs::File::create(self.root.join(format!("daemon-{n}.txt"))).unwrap();
        self.cmd(&["daemon", "--grace", "1"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }
    pub fn daemon_log(&self, n: u32) -> String {
        std::fs::read_to_string(self.root.join(format!("daemon-{n}.txt"))).unwrap_or_default()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub async fn double() -> ApiDouble {
    let srv = ApiDouble::start().await;
    srv.add_user(User {
        id: 1,
        username: "alice".into(),
        email: "alice@example.com".into(),
        password: "correct horse".into(),
        mfa_code: Some("246810".into()),
        active: true,
    });
    srv.add_secret(1, "fleet-secret");
    srv
}

pub fn config(url: &str) -> String {
    format!(
        "[schedule]\nrun_on_start = false\n\n[sync]\nserver = \"{url}\"\nspread_seconds = 0\n\n\
         [[suite.tcp]]\ntarget = \"127.0.0.1:9\"\n"
    )
}

/// Runs blocking CLI work off the runtime's threads, so the double serves.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `waddleperf login` as alice, the password on stdin, an MFA code if given.
pub fn login_alice(h: &Home, mfa_code: Option<&str>) -> Output {
    let mut args = vec!["login", "--username", "alice", "--password-stdin"];
    if let Some(code) = mfa_code {
        args.extend(["--mfa-code", code]);
    }
    h.wp_in(&args, "correct horse\n")
}

pub fn sign_in(h: &Home) -> String {
    let o = login_alice(h, Some("246810"));
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn results(n: usize) -> Vec<Measurement> {
    let t0 = Utc::now() - ChronoDuration::hours(n as i64);
    (0..n)
        .map(|i| {
            let mut m = Measurement::begin(TestType::Tcp, "192.0.2.10:443");
            m.started_at = t0 + ChronoDuration::hours(i as i64);
            m.success = true;
            m.duration_ms = 2.0;
            m.latency_ms = Some(1.0);
            m.metrics.connect_ms = Some(1.0);
            m
        })
        .collect()
}

pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a process used: its peak resident memory and its wall time.
#[derive(Debug)]
pub struct Footprint {
    pub peak_rss_kb: u64,
    pub elapsed: Duration,
}

/// Runs `cmd` to the end with `stdin` fed in, measuring the peak resident
/// memory of that process alone (python3's `RUSAGE_CHILDREN` of a wrapper
/// whose one child it is).
pub fn run_measured(cmd: &Command, stdin: &str) -> (Output, Footprint) {
    const WRAPPER: &str = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[2:])\n\
open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)\n";
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let mut w = Command::new("python3");
    w.arg("-c")
        .arg(WRAPPER)
        .arg(tmp.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    let t = Instant::now();
    let out = output_with_stdin(&mut w, stdin);
    let elapsed = t.elapsed();
    let peak_rss_kb = std::fs::read_to_string(tmp.path())
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    (
        out,
        Footprint {
            peak_rss_kb,
            elapsed,
        },
    )
}

/// Runs `cmd` to the end with `stdin` fed in; its output.
pub fn output_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
