//! The desktop for real, under Xvfb and a private D-Bus session bus: the
//! agent (`waddleperf-tray`, which owns the runtime and the tray icon) and
//! the window (`waddleperf-desktop`, a client of the agent's control
//! socket). Through WebDriver in the window's WebKit webview: Run now →
//! live progress → the rows and a drawn chart in History; a setting changed,
//! kept across a new window; the speed test; the agent killed and the
//! window showing it, then recovering with a new agent. Through the tray
//! icon in an XEmbed tray (trayer) clicked with xdotool (Run tests now,
//! Quit), and as a StatusNotifierItem read and clicked over D-Bus (menu
//! labels, status line, icon state, the CLI's pause, Open and the window
//! ended after it is closed). Targets are local peers: nginx over HTTPS
//! with a test CA, plain HTTP, and a TCP port. Screenshots go to
//! `<target>/e2e/` as CI artifacts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::desktop::{artifacts_dir, desktop_bin, tray_bin, Display, Driver, Session};
use support::iperf::Iperf3Server;
use support::servers::{Nginx, TestCa};
use waddleperf_engine::store::{HistoryQuery, Store};

/// One app at a time: each test starts it, and the machine has two cores.
static ONE_APP: Mutex<()> = Mutex::new(());

struct Peers {
    _ca: TestCa,
    _nginx: Nginx,
    _iperf: Iperf3Server,
    config: String,
    /// Tier 1 targets: what Run tests now measures.
    targets: usize,
}

/// What a speed test stores: the iperf3 server, download then upload.
const SPEED_RESULTS: usize = 2;

/// nginx on loopback, and a configuration naming it three ways; an iperf3
/// server for the speed test (not part of the tier 1 suite).
fn peers() -> Peers {
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

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(config: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Files { dir }
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("waddleperf.db")
    }
    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    fn args(&self, show: Option<&str>) -> Vec<String> {
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
    fn paths(&self) -> waddleperf_engine::config::Paths {
        waddleperf_engine::config::Paths {
            config_file: self.config(),
            data_dir: self.db().parent().unwrap().to_owned(),
            db_file: self.db(),
            log_dir: self.logs(),
        }
    }
    fn socket(&self) -> PathBuf {
        waddleperf_engine::control::socket_path(&self.paths())
    }
    /// Starts the agent on `display` and waits until its control socket
    /// answers.
    fn start_agent(&self, display: &Display) -> std::process::Child {
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
    fn stored(&self) -> usize {
        Store::open(&self.db())
            .unwrap()
            .history(&HistoryQuery::default())
            .unwrap()
            .len()
    }
}

/// Runs an async scenario as root, one app at a time.
fn scenario(what: &str, f: impl std::future::Future<Output = ()>) {
    support::require_root(what);
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

#[test]
fn run_now_history_chart_and_settings_in_the_webview() {
    scenario(
        "the desktop end-to-end test (nginx on loopback)",
        webview_scenario(),
    );
}

async fn webview_scenario() {
    let app = desktop_bin();
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(false);
    let mut agent = files.start_agent(&display);
    let driver = Driver::start(&display);
    let shots = artifacts_dir();

    // 1. Overview: Run now, live progress, every target's result.
    let s = Session::start(&driver, &app, &files.args(Some("overview"))).await;
    s.wait_for(
        "the Overview page",
        "return document.querySelector('#run-now') !== null",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(files.stored(), 0, "run_on_start is off: nothing yet");
    s.click("#run-now").await;
    let done = s
        .wait_for(
            "the run's progress to finish",
            "const t = document.querySelector('#progress-text'); \
             return t && t.textContent.startsWith('Done') ? t.textContent : null",
            Duration::from_secs(60),
        )
        .await;
    println!("progress: {done}");
    assert_eq!(done, format!("Done: {} tests, 0 failed", peers.targets));
    let progress = s
        .exec(
            "const p = document.querySelector('#progress'); const b = document.querySelector('#progress-bar'); \
             return {hidden: p.hidden, value: b.value, max: b.max, \
                     live: [...document.querySelectorAll('#live-results li')].map(li => li.textContent)}",
        )
        .await;
    println!("progress section: {progress}");
    assert_eq!(progress["hidden"], false);
    assert_eq!(progress["value"].as_f64(), Some(peers.targets as f64));
    assert_eq!(progress["max"].as_f64(), Some(peers.targets as f64));
    let live = progress["live"].as_array().unwrap();
    assert_eq!(live.len(), peers.targets, "{live:?}");
    assert!(
        live.iter()
            .any(|l| l.as_str().unwrap().starts_with("HTTP https://127.0.0.1:")),
        "{live:?}"
    );
    assert_eq!(
        files.stored(),
        peers.targets,
        "the run's rows are in the database"
    );
    s.wait_for(
        "health per target",
        "return document.querySelectorAll('#health-grid .target.health-ok').length === 3",
        Duration::from_secs(20),
    )
    .await;

    // A second run, so the history has more than one result per target.
    s.click("#run-now").await;
    s.wait_for(
        "the second run",
        "const t = document.querySelector('#progress-text'); return t && t.textContent.startsWith('Done') \
         && document.querySelectorAll('#live-results li').length === 3 && !document.querySelector('#run-now').disabled",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(files.stored(), 2 * peers.targets);

    // 2. History: the new rows in the table, and charts drawn from them.
    s.click("#nav-history").await;
    let rows = s
        .wait_for(
            "the History table",
            "const r = document.querySelectorAll('#history-table tbody tr'); return r.length >= 6 ? r.length : null",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(rows.as_u64(), Some(2 * peers.targets as u64));
    let chart = s
        .wait_for(
            "the latency chart",
            "const c = document.querySelector('#chart-latency canvas'); if (!c) return null; \
             const ctx = c.getContext('2d'); const d = ctx.getImageData(0, 0, c.width, c.height).data; \
             let coloured = 0; for (let i = 0; i < d.length; i += 4) { \
               const [r, g, b, a] = [d[i], d[i+1], d[i+2], d[i+3]]; \
               if (a > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 60) coloured++; } \
             return coloured > 0 ? {coloured, width: c.width, height: c.height, \
               firstChartMs: Number(document.querySelector('#main').dataset.firstChartMs)} : null",
            Duration::from_secs(30),
        )
        .await;
    println!("latency chart: {chart}");
    assert!(chart["coloured"].as_u64().unwrap() > 0);
    let legend = s
        .exec("return [...document.querySelectorAll('#chart-latency .legend li')].map(l => l.textContent)")
        .await;
    assert_eq!(
        legend.as_array().map(Vec::len),
        Some(peers.targets),
        "{legend}"
    );
    let phases = s
        .exec("return document.querySelector('#chart-phases canvas') !== null")
        .await;
    assert_eq!(phases, true, "the HTTP phase chart is drawn");
    s.screenshot(&shots.join("history.png")).await;

    // Export CSV: a file in Downloads with every result of the range.
    s.click("#export-csv").await;
    let saved = s
        .wait_for(
            "the export",
            "const t = document.querySelector('#history-status').textContent; return t.startsWith('Saved') ? t : null",
            Duration::from_secs(20),
        )
        .await;
    let saved = saved.as_str().unwrap();
    let path = saved.split(" to ").nth(1).unwrap();
    assert!(path.starts_with(display.home.path().join("Downloads").to_str().unwrap()));
    // Parsed, it is the stored results: every id, target, outcome and latency.
    let stored = waddleperf_engine::store::Store::open(&files.db())
        .unwrap()
        .history(&Default::default())
        .unwrap();
    assert_eq!(stored.len(), 2 * peers.targets);
    let (header, rows) = support::parse_csv(&std::fs::read_to_string(path).unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut by_id: std::collections::HashMap<&str, &Vec<String>> =
        rows.iter().map(|r| (r[col("id")].as_str(), r)).collect();
    assert_eq!(rows.len(), stored.len(), "{rows:?}");
    for m in &stored {
        let row = by_id
            .remove(m.id.to_string().as_str())
            .expect("every stored result exported");
        assert_eq!(row[col("target")], m.target);
        assert_eq!(row[col("success")], m.success.to_string());
        if let Some(l) = m.latency_ms {
            let exported: f64 = row[col("latency_ms")].parse().unwrap();
            assert!((exported - l).abs() < 1e-3, "{exported} vs {l}");
        }
    }
    // And as JSON lines, the same results.
    s.click("#export-json").await;
    let saved = s
        .wait_for(
            "the JSON export",
            "const t = document.querySelector('#history-status').textContent; return t.startsWith('Saved') && t.includes('.json') ? t : null",
            Duration::from_secs(20),
        )
        .await;
    let path = saved
        .as_str()
        .unwrap()
        .split(" to ")
        .nth(1)
        .unwrap()
        .to_owned();
    let exported: Vec<waddleperf_engine::Measurement> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<_> = exported.iter().map(|m| (m.id, m.target.clone())).collect();
    let mut want: Vec<_> = stored.iter().map(|m| (m.id, m.target.clone())).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);

    // 3. Settings: a bad URL is refused on its field; a new interval is kept.
    s.click("#nav-settings").await;
    s.wait_for(
        "the Settings page",
        "return document.querySelector('#interval') !== null",
        Duration::from_secs(20),
    )
    .await;
    s.fill("#http-1-url", "ftp://127.0.0.1/").await;
    s.click("#save-settings").await;
    let refused = s
        .wait_for(
            "the validation message",
            "const e = document.querySelector('#settings-error'); return e && !e.hidden ? \
             {summary: e.textContent, invalid: document.querySelector('#http-1-url').getAttribute('aria-invalid'), \
              field: document.querySelector('#http-1-error').textContent} : null",
            Duration::from_secs(20),
        )
        .await;
    println!("refused: {refused}");
    assert_eq!(refused["invalid"], "true");
    assert!(refused["summary"]
        .as_str()
        .unwrap()
        .starts_with("Not saved: HTTP target 2, URL:"));
    assert!(!std::fs::read_to_string(files.config())
        .unwrap()
        .contains("ftp://"));
    s.fill(
        "#http-1-url",
        &format!("http://127.0.0.1:{}/", peers._nginx.http.port()),
    )
    .await;
    s.fill("#interval", "15").await;
    s.click("#save-settings").await;
    s.wait_for(
        "the save",
        "return document.querySelector('#settings-saved').textContent.startsWith('Saved')",
        Duration::from_secs(20),
    )
    .await;
    let text = std::fs::read_to_string(files.config()).unwrap();
    assert!(text.contains("interval_minutes = 15"), "{text}");
    s.end().await;

    // 4. A new window: the agent has kept it.
    let s = Session::start(&driver, &app, &files.args(Some("settings"))).await;
    let interval = s
        .wait_for(
            "the Settings page in a new window",
            "const i = document.querySelector('#interval'); return i ? i.value : null",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(interval, "15");
    let header = s
        .wait_for(
            "the header status",
            "return document.querySelector('#top-status').textContent",
            Duration::from_secs(20),
        )
        .await;
    println!("header after restart: {header}");
    assert!(header.as_str().unwrap().starts_with("Last run"));

    // 5. The speed test from the Overview: live figures while it runs, then
    // the rates and the grade in words; its two results stored.
    s.click("#nav-overview").await;
    s.wait_for(
        "the Overview page",
        "return document.querySelector('#speed-test') !== null",
        Duration::from_secs(20),
    )
    .await;
    s.click("#speed-test").await;
    let live = s
        .wait_for(
            "the speed test's live figures",
            "const t = document.querySelector('#speed-now').textContent; \
             const m = document.querySelector('#overview-message').textContent; \
             return t.includes(' s)') || m ? {live: t, message: m} : null",
            Duration::from_secs(30),
        )
        .await;
    println!("speed test, live: {live}");
    assert!(live["live"].as_str().unwrap().contains("bit/s"), "{live}");
    let done = s
        .wait_for(
            "the speed test's result",
            "const t = document.querySelector('#speed-now').textContent; \
             return t.startsWith('Download') && !document.querySelector('#speed-test').disabled ? \
             {text: t, rows: document.querySelectorAll('#speed-results li.ok').length} : null",
            Duration::from_secs(60),
        )
        .await;
    println!("speed test: {done}");
    assert_eq!(done["rows"].as_u64(), Some(SPEED_RESULTS as u64));
    assert!(done["text"].as_str().unwrap().contains("upload"), "{done}");
    assert_eq!(files.stored(), 2 * peers.targets + SPEED_RESULTS);
    s.screenshot(&shots.join("speed-test.png")).await;

    // 6. The agent killed while the window is open: the window says so,
    // and comes back by itself when a new agent starts.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let said = s
        .wait_for(
            "the disconnected state",
            "const b = document.querySelector('#agent-banner'); \
             return document.body.dataset.agent === 'disconnected' && !b.hidden ? b.textContent : null",
            Duration::from_secs(20),
        )
        .await;
    println!("agent killed: {said}");
    assert!(said
        .as_str()
        .unwrap()
        .starts_with("The WaddlePerf agent is not running"));
    s.screenshot(&shots.join("agent-gone.png")).await;
    let mut agent = files.start_agent(&display);
    s.wait_for(
        "the window reconnected",
        "return document.body.dataset.agent === 'connected' && document.querySelector('#agent-banner').hidden \
         && document.querySelector('#top-status').textContent.startsWith('Last run')",
        Duration::from_secs(20),
    )
    .await;
    // And it works through the new agent.
    s.click("#nav-history").await;
    s.wait_for(
        "the History table from the new agent",
        &format!(
            "return document.querySelectorAll('#history-table tbody tr').length === {}",
            2 * peers.targets + SPEED_RESULTS
        ),
        Duration::from_secs(30),
    )
    .await;
    s.end().await;
    drop(driver);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(agent.wait().unwrap().success());
    assert_eq!(
        Store::open(&files.db()).unwrap().check().unwrap(),
        Vec::<String>::new()
    );
}

/// Opens the tray icon's menu (a click on the icon in trayer) and waits
/// until the menu's window is mapped: a visible window that was not there
/// before the click.
fn open_tray_menu(display: &Display) {
    let icon = display.wait_for_window("tray-icon tray app main", Duration::from_secs(60));
    let (x, y) = display.centre(&icon);
    let visible = || -> std::collections::HashSet<String> {
        display
            .xdotool(&["search", "--onlyvisible", "--name", ""])
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let before = visible();
    display.xdotool(&["mousemove", &x.to_string(), &y.to_string(), "click", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while visible().is_subset(&before) {
        assert!(Instant::now() < deadline, "the tray menu did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tray_icon_menu_runs_the_tests_and_quits() {
    support::require_root("the tray test (nginx on loopback)");
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    let app = tray_bin();
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(true);
    let shots = artifacts_dir();

    let started = Instant::now();
    let mut child = display
        .command(&app)
        .args(files.args(None))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let icon = display.wait_for_window("tray-icon tray app main", Duration::from_secs(60));
    println!("tray icon {icon} after {:?}", started.elapsed());
    // No window at start: the app lives in the tray.
    assert!(
        display
            .xdotool(&["search", "--name", "^WaddlePerf$"])
            .trim()
            .is_empty(),
        "a window opened at start"
    );

    // The menu, then "Run tests now" (the first item that can be chosen).
    open_tray_menu(&display);
    display.screenshot(&shots.join("tray-menu.png"));
    display.xdotool(&["key", "Down", "Return"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while files.stored() < peers.targets {
        assert!(
            Instant::now() < deadline,
            "Run tests now from the tray stored {} results",
            files.stored()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(files.stored(), peers.targets);
    // The menu's status line now tells the run.
    std::thread::sleep(Duration::from_millis(500));
    open_tray_menu(&display);
    display.screenshot(&shots.join("tray-after-run.png"));

    // Quit: the last item. The app ends cleanly and promptly.
    display.xdotool(&["key", "Up", "Return"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "Quit did not end the app");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = read_logs(&files.logs());
    assert!(
        status.success(),
        "exit status {status}; the app's log ends:\n{}",
        log.lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let store = Store::open(&files.db()).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new(), "integrity");
    assert!(log.contains("tray agent stopped"), "{log}");
}

fn read_logs(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    all
}

#[test]
fn the_tray_read_over_dbus_tells_the_run_and_the_health() {
    scenario("the tray test (nginx on loopback)", sni_scenario());
}

/// The tray as a panel of today sees it: a StatusNotifierWatcher on the
/// bus, the app's item and its dbusmenu read and clicked over D-Bus.
async fn sni_scenario() {
    use support::sni::{Item, WatcherService};
    let app = tray_bin();
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(false);
    let watcher = WatcherService::start(&display.bus.address).await;
    let mut child = display
        .command(&app)
        .args(files.args(None))
        .env("WADDLEPERF_WINDOW_GRACE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (dest, path) = loop {
        if let Some(item) = watcher.item() {
            break item;
        }
        assert!(
            Instant::now() < deadline,
            "no StatusNotifierItem registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let item = Item::connect(&display.bus.address, dest, path).await;
    let menu = item.menu().await;
    let labels = menu.labels();
    println!(
        "tray menu: {labels:?}; icon {:?}",
        item.property("IconName").await
    );
    for want in [
        "Run tests now",
        "Run speed test",
        "Pause monitoring",
        "Open WaddlePerf",
        "Settings…",
        "Start at login",
        "Quit WaddlePerf",
    ] {
        assert!(labels.iter().any(|l| l == want), "`{want}` in {labels:?}");
    }
    assert!(labels[0].starts_with("No runs yet"), "{labels:?}");

    // Run tests now, clicked as a panel does: the status line then tells
    // the run, and the icon changes with the health.
    let run = menu.find("Run tests now").unwrap().id;
    item.click(run).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let labels = item.menu().await.labels();
        if labels[0].starts_with("Last run") {
            break labels[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the status line stayed {labels:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("status line after the run: {status}");
    assert!(status.starts_with("Last run just now · next"), "{status}");
    assert_eq!(files.stored(), peers.targets);
    // Every target answered: the picture the item shows is the "ok" icon
    // (its mean colour nearest to icons/tray/ok.png's of all five states).
    wait_for_icon(&item, "ok").await;

    // Run speed test from the menu: the bandwidth server's two results.
    let speed = item.menu().await.find("Run speed test").unwrap().id;
    item.click(speed).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while files.stored() < peers.targets + SPEED_RESULTS {
        assert!(
            Instant::now() < deadline,
            "Run speed test from the menu stored {} results",
            files.stored()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The app is the agent: the CLI's pause goes through its control
    // socket, and the tray shows it at once.
    let cli = |what: &str| {
        std::process::Command::new(support::waddleperf_bin())
            .arg("--config")
            .arg(files.config())
            .arg("--db")
            .arg(files.db())
            .arg(what)
            .output()
            .unwrap()
    };
    let out = cli("pause");
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !item
        .menu()
        .await
        .labels()
        .iter()
        .any(|l| l == "Resume monitoring")
    {
        assert!(
            Instant::now() < deadline,
            "the tray did not show the CLI's pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The icon follows: paused, then ok again after the resume.
    wait_for_icon(&item, "paused").await;
    let out = cli("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("paused"), "{text}");
    assert!(cli("resume").status.success());
    wait_for_icon(&item, "ok").await;

    // The window is a process of its own, started by the agent: the speed
    // test opened it on the Overview. Open hands it the History page;
    // closed, it is hidden; opened again within the grace period, the same
    // process shows it; closed for longer, the process ends, and the
    // WebKit processes it had with it.
    let agent = child.id();
    let pid = window_pids(agent)
        .into_iter()
        .next()
        .expect("the speed test opened the window");
    let webkit = children_named(pid, "WebKit");
    assert!(!webkit.is_empty(), "the window's WebKit processes");
    let open = item.menu().await.find("Open WaddlePerf").unwrap().id;
    item.click(open).await;
    let window = display.wait_for_window_named("WaddlePerf", Duration::from_secs(60));
    // (A short-lived second process hands the page over, then ends.)
    wait_until(
        "one window process, the same",
        Duration::from_secs(20),
        || window_pids(agent) == [pid].into(),
    );
    display.close_window(&window);
    wait_until("the window hidden", Duration::from_secs(10), || {
        display
            .xdotool(&["search", "--onlyvisible", "--name", "^WaddlePerf"])
            .trim()
            .is_empty()
    });
    item.click(open).await;
    let window = display.wait_for_window_named("WaddlePerf", Duration::from_secs(20));
    wait_until(
        "reopened in the grace period, the same process",
        Duration::from_secs(20),
        || window_pids(agent) == [pid].into(),
    );
    display.close_window(&window);
    wait_until(
        "the window process to end after its grace period",
        Duration::from_secs(30),
        || window_pids(agent).is_empty(),
    );
    wait_until(
        "no WebKit process of the window left",
        Duration::from_secs(10),
        || webkit.iter().all(|p| !alive(*p)),
    );

    // Quit from the menu: the app ends cleanly.
    let quit = item.menu().await.find("Quit WaddlePerf").unwrap().id;
    item.click(quit).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "Quit did not end the app");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit {status}");
}

/// Waits until the picture the item shows is the `state` icon.
async fn wait_for_icon(item: &support::sni::Item, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let icon = item.property("IconName").await;
        let shown = icon_state(&icon);
        if shown.as_deref() == Some(state) {
            println!("icon {icon}: {state}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the icon is {icon}, which looks {shown:?}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Live processes of the machine by their name (`/proc/PID/comm`); a
/// zombie (ended, not yet reaped by whoever inherited it) is not one.
fn pids_named(prefix: &str) -> std::collections::HashSet<u32> {
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

fn parent(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?.to_owned();
    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
}

fn alive(pid: u32) -> bool {
    pids_named("").contains(&pid)
}

/// Live children of `pid` whose name starts with `prefix`.
fn children_named(pid: u32, prefix: &str) -> std::collections::HashSet<u32> {
    pids_named(prefix)
        .into_iter()
        .filter(|p| parent(*p) == Some(pid))
        .collect()
}

/// The window processes the agent `agent` started that run.
fn window_pids(agent: u32) -> std::collections::HashSet<u32> {
    children_named(agent, "waddleperf-desk")
}

/// The mean colour of an icon's opaque pixels (ImageMagick), as 0–255 RGB.
fn mean_colour(path: &str) -> Option<(u32, u32, u32)> {
    let out = std::process::Command::new("convert")
        .arg(path)
        .args([
            "-background",
            "black",
            "-alpha",
            "remove",
            "-resize",
            "1x1!",
            "-depth",
            "8",
            "txt:-",
        ])
        .output()
        .ok()?;
    // A comment line, then `0,0: (r,g,b,a)  #RRGGBBAA  srgba(...)`.
    let text = String::from_utf8_lossy(&out.stdout);
    let pixel = text.lines().find(|l| l.starts_with("0,0:"))?;
    let hex = pixel.split('#').nth(1)?.get(..6)?;
    let c = |i: usize| u32::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((c(0)?, c(2)?, c(4)?))
}

/// Which of the tray's five state icons a picture is: the one whose mean
/// colour is nearest.
fn icon_state(path: &str) -> Option<String> {
    let icons = Path::new(env!("CARGO_MANIFEST_DIR")).join("icons/tray");
    let (r, g, b) = mean_colour(path)?;
    ["ok", "degraded", "down", "running", "paused"]
        .into_iter()
        .filter_map(|state| {
            let (sr, sg, sb) = mean_colour(icons.join(format!("{state}.png")).to_str()?)?;
            let d = |a: u32, b: u32| (i64::from(a) - i64::from(b)).pow(2);
            Some((d(r, sr) + d(g, sg) + d(b, sb), state))
        })
        .min()
        .map(|(_, state)| state.to_owned())
}
