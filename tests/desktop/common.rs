//! What the desktop scenarios share: the peers, the files of one agent,
//! one app at a time, and reading processes in /proc.

use waddleperf_testkit as support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::desktop::{tray_bin, Display};
use support::iperf::Iperf3Server;
use support::servers::{Nginx, TestCa};
use waddleperf_engine::store::{HistoryQuery, Store};

/// One app at a time: each test starts it, and the machine has two cores.
pub(crate) static ONE_APP: Mutex<()> = Mutex::new(());

pub(crate) struct Peers {
    pub(crate) _ca: TestCa,
    pub(crate) _nginx: Nginx,
    pub(crate) _iperf: Iperf3Server,
    pub(crate) config: String,
    /// Tier 1 targets: what Run tests now measures.
    pub(crate) targets: usize,
}

/// What a speed test stores: the iperf3 server, download then upload.
pub(crate) const SPEED_RESULTS: usize = 2;

/// nginx on loopback, and a configuration naming it three ways; an iperf3
/// server for the speed test (not part of the tier 1 suite).
pub(crate) fn peers() -> Peers {
    let ca = TestCa::new(&["IP:127.0.0.1".into(), "DNS:localhost".into()], 30);
    let nginx = Nginx::start(
        &ca,
        "127.0.0.1",
        support::free_port(),
        support::free_port(),
        None,
    );
    let iperf = Iperf3Server::start("127.0.0.1", support::free_port(), None);
    let config = format!(
        r#"[schedule]
interval_minutes = 60
run_on_start = false

[notifications]
enabled = false

[sync]
enabled = false

[[suite.http]]
url = "https://127.0.0.1:{https}/"
ca_file = "{ca}"

[[suite.http]]
url = "http://127.0.0.1:{http}/"

[[suite.tcp]]
target = "127.0.0.1:{http}"

[[suite.bandwidth]]
server = "{iperf}"
seconds = 2
omit = 0
streams = 1
"#,
        https = nginx.https.port(),
        http = nginx.http.port(),
        ca = ca.ca_pem.display(),
        iperf = iperf.addr,
    );
    Peers {
        _ca: ca,
        _nginx: nginx,
        _iperf: iperf,
        config,
        targets: 3,
    }
}

pub(crate) struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    pub(crate) fn new(config: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Files { dir }
    }
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("waddleperf.db")
    }
    pub(crate) fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    pub(crate) fn args(&self, show: Option<&str>) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(page) = show {
            a.extend(["--show".to_owned(), page.to_owned()]);
        }
        for (flag, p) in [
            ("--config", self.config()),
            ("--db", self.db()),
            ("--log-dir", self.logs()),
        ] {
            a.push(flag.to_owned());
            a.push(p.display().to_string());
        }
        a
    }
    pub(crate) fn paths(&self) -> waddleperf_engine::config::Paths {
        waddleperf_engine::config::Paths {
            config_file: self.config(),
            data_dir: self.db().parent().unwrap().to_owned(),
            db_file: self.db(),
            log_dir: self.logs(),
        }
    }
    pub(crate) fn socket(&self) -> PathBuf {
        waddleperf_engine::control::socket_path(&self.paths())
    }
    /// Starts the agent on `display` and waits until its control socket
    /// answers.
    pub(crate) fn start_agent(&self, display: &Display) -> std::process::Child {
        let child = display
            .command(tray_bin())
            .args(self.args(None))
            .env("WADDLEPERF_WINDOW_GRACE_SECS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "the agent's socket did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }
    pub(crate) fn stored(&self) -> usize {
        Store::open(&self.db())
            .unwrap()
            .history(&HistoryQuery::default())
            .unwrap()
            .len()
    }
}

/// Runs an async scenario as root, one app at a time.
pub(crate) fn scenario(what: &str, f: impl std::future::Future<Output = ()>) {
    support::require_root(what);
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Live processes of the machine by their name (`/proc/PID/comm`); a
/// zombie (ended, not yet reaped by whoever inherited it) is not one.
pub(crate) fn pids_named(prefix: &str) -> std::collections::HashSet<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let named = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with(prefix));
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.get(s.rfind(')')? + 2..)?.chars().next());
            named && !matches!(state, Some('Z') | Some('X') | None)
        })
        .collect()
}

pub(crate) fn parent(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?.to_owned();
    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
}

pub(crate) fn alive(pid: u32) -> bool {
    pids_named("").contains(&pid)
}

/// Live children of `pid` whose name starts with `prefix`.
pub(crate) fn children_named(pid: u32, prefix: &str) -> std::collections::HashSet<u32> {
    pids_named(prefix)
        .into_iter()
        .filter(|p| parent(*p) == Some(pid))
        .collect()
}

/// The window processes the agent `agent` started that run.
pub(crate) fn window_pids(agent: u32) -> std::collections::HashSet<u32> {
    children_named(agent, "waddleperf-desk")
}

/// Waits up to `timeout` for `child` to end; its exit status. `what`
/// names what should have ended it. (In a scenario: inside
/// `tokio::task::block_in_place`.)
pub(crate) fn ended(
    child: &mut std::process::Child,
    what: &str,
    timeout: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not end it within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to 60 s for `child`'s StatusNotifierItem to register with
/// `watcher`, and connects to it; `what` names the app in a failure.
pub(crate) async fn tray_item(
    display: &Display,
    watcher: &support::sni::WatcherService,
    child: &mut std::process::Child,
    what: &str,
) -> support::sni::Item {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (dest, path) = loop {
        if let Some(item) = watcher.item() {
            break item;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} ended ({status}) before its tray registered");
        }
        assert!(
            Instant::now() < deadline,
            "no tray item registered by {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    support::sni::Item::connect(&display.bus.address, dest, path).await
}
