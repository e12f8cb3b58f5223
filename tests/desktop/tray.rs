//! The agent's tray: in an XEmbed tray (trayer) clicked with xdotool, and
//! as a StatusNotifierItem read and clicked over D-Bus.

use crate::common::*;
use waddleperf_testkit as support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::desktop::{artifacts_dir, tray_bin, Display};
use waddleperf_engine::store::Store;

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
    let status = ended(&mut child, "Quit", Duration::from_secs(30));
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
    use support::sni::WatcherService;
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(false);
    let watcher = WatcherService::start(&display.bus.address).await;
    let mut child = files.start_agent(&display);
    let item = tray_item(&display, &watcher, &mut child, "the agent").await;
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
    let window = display.wait_for_window_named("WaddlePerf$", Duration::from_secs(60));
    // (A short-lived second process hands the page over, then ends.)
    wait_until(
        "one window process, the same",
        Duration::from_secs(20),
        || window_pids(agent) == [pid].into(),
    );
    display.close_window(&window);
    wait_until("the window hidden", Duration::from_secs(10), || {
        display
            .xdotool(&["search", "--onlyvisible", "--name", "^WaddlePerf$"])
            .trim()
            .is_empty()
    });
    item.click(open).await;
    let window = display.wait_for_window_named("WaddlePerf$", Duration::from_secs(20));
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

    // Quit from the menu with the window open: the agent and the window
    // end cleanly, the database whole.
    item.click(open).await;
    display.wait_for_window_named("WaddlePerf$", Duration::from_secs(60));
    let window = window_pids(agent);
    assert_eq!(window.len(), 1, "a new window process: {window:?}");
    let quit = item.menu().await.find("Quit WaddlePerf").unwrap().id;
    item.click(quit).await;
    let status = tokio::task::block_in_place(|| ended(&mut child, "Quit", Duration::from_secs(30)));
    assert!(status.success(), "exit {status}");
    wait_until(
        "the window ended with the agent",
        Duration::from_secs(10),
        || window.iter().all(|p| !alive(*p)),
    );
    assert_eq!(
        Store::open(&files.db()).unwrap().check().unwrap(),
        Vec::<String>::new(),
        "integrity"
    );
    let log = read_logs(&files.logs());
    assert!(
        log.contains("window ended") && log.contains("tray agent stopped"),
        "{log}"
    );
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
