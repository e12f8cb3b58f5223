//! The deb as a person gets it: installed with apt-get (which brings its
//! dependencies), started from its desktop entry's Exec line under Xvfb and
//! a session bus, checked through its tray (registered, Open, Run tests
//! now, Quit), its CLI run from PATH, then removed with apt-get, leaving no
//! file of the package behind and the person's data in place.
//!
//! `scripts/bundle.sh --debug --bundles deb` builds the deb;
//! `scripts/test.sh` builds it and then runs this test (ignored in a plain
//! `cargo test`, which has no deb to install).

use crate::common::*;
use waddleperf_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::desktop::Display;
use support::run;
use support::sni::WatcherService;
use waddleperf_engine::store::{HistoryQuery, Store};

const PACKAGE: &str = "waddleperf";
const ENTRY: &str = "/usr/share/applications/waddleperf.desktop";

/// The installer of `kind` (deb, rpm, appimage) that `scripts/bundle.sh
/// --debug` left in `<target>/installers/debug/bundle/<kind>/` (bundle.sh
/// empties it first, so there is one).
fn built(kind: &str, ext: &str) -> PathBuf {
    let dir = support::built_bin("waddleperf-desktop")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("installers/debug/bundle")
        .join(kind);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: build it first (bash scripts/bundle.sh --debug --bundles {kind})",
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == ext))
        .unwrap_or_else(|| panic!("no .{ext} in {}", dir.display()))
}

fn apt(args: &[&str]) -> String {
    run(Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Removes the package if the test ends before it does.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("apt-get")
            .args(["remove", "-y", "-qq", PACKAGE])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
    }
}

#[test]
#[ignore = "needs the deb: scripts/test.sh builds it (scripts/bundle.sh) and then runs this"]
fn the_deb_installs_runs_from_its_menu_entry_and_is_removed_cleanly() {
    scenario("the deb package test", deb_scenario());
}

async fn deb_scenario() {
    let deb = built("deb", "deb");
    println!("installing {}", deb.display());
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        &deb.to_string_lossy(),
    ]);
    let installed = Installed;
    let files: Vec<String> = run(Command::new("dpkg").args(["-L", PACKAGE]))
        .lines()
        .map(str::to_owned)
        .collect();
    for want in [
        "/usr/bin/waddleperf",
        "/usr/bin/waddleperf-tray",
        "/usr/bin/waddleperf-desktop",
        ENTRY,
        "/usr/share/metainfo/io.penguintech.waddleperf.metainfo.xml",
        "/usr/lib/systemd/user/waddleperf.service",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("/usr/share/icons/hicolor/") && f.ends_with(".png")),
        "icons in {files:?}"
    );
    let depends = run(Command::new("dpkg-query").args(["-W", "-f", "${Depends}", PACKAGE]));
    println!("depends: {depends}");
    for dep in [
        "libwebkit2gtk-4.1-0",
        "libayatana-appindicator3-1",
        "libgtk-3-0",
    ] {
        assert!(depends.contains(dep), "{dep} in {depends}");
    }

    // The CLI from PATH, as a person types it.
    let path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let version = run(Command::new("waddleperf")
        .arg("--version")
        .env("PATH", path_env));
    println!("{}", version.trim());
    assert!(version.starts_with("waddleperf 0.1.0"), "{version}");

    // A person's session: Xvfb, a session bus with a StatusNotifier
    // watcher (as current panels have), a home of their own. Their
    // configuration names the local peers.
    let peers = peers();
    let display = Display::start(false);
    let watcher = WatcherService::start(&display.bus.address).await;
    let info: serde_json::Value = serde_json::from_str(&run(display
        .command("waddleperf")
        .args(["info", "--json"])
        .env("PATH", path_env)))
    .unwrap();
    let config = PathBuf::from(info["paths"]["config_file"].as_str().unwrap());
    let db = PathBuf::from(info["paths"]["db_file"].as_str().unwrap());
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, &peers.config).unwrap();

    // Started as the app menu starts it: its entry's Exec line.
    let entry = std::fs::read_to_string(ENTRY).unwrap();
    println!("{ENTRY}:\n{entry}");
    let exec: Vec<&str> = entry
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("an Exec line")
        .split_whitespace()
        .collect();
    let started = Instant::now();
    let mut agent = display
        .command(exec[0])
        .args(&exec[1..])
        .env("PATH", path_env)
        .env("WADDLEPERF_WINDOW_GRACE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = agent.id();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        Path::new("/usr/bin/waddleperf-tray")
    );
    let item = tray_item(&display, &watcher, &mut agent, "the deb's agent").await;
    println!("tray registered after {:?}", started.elapsed());

    // The entry opens the window: the installed window program, the
    // agent's child.
    let window = display.wait_for_window_named("WaddlePerf$", Duration::from_secs(60));
    wait_until("the window process", Duration::from_secs(30), || {
        !window_pids(pid).is_empty()
    });
    for w in window_pids(pid) {
        assert_eq!(
            std::fs::read_link(format!("/proc/{w}/exe")).unwrap(),
            Path::new("/usr/bin/waddleperf-desktop")
        );
    }
    // Closed, it ends after its grace period; the tray's Open starts it again.
    display.close_window(&window);
    wait_until("the closed window to end", Duration::from_secs(30), || {
        window_pids(pid).is_empty()
    });
    let open = item.menu().await.find("Open WaddlePerf").unwrap().id;
    item.click(open).await;
    display.wait_for_window_named("WaddlePerf$", Duration::from_secs(60));
    wait_until(
        "the window opened from the tray",
        Duration::from_secs(30),
        || !window_pids(pid).is_empty(),
    );

    // Run tests now: the results land in the person's data directory.
    let run_now = item.menu().await.find("Run tests now").unwrap().id;
    item.click(run_now).await;
    let stored = || {
        Store::open(&db)
            .and_then(|s| s.history(&HistoryQuery::default()))
            .map(|h| h.len())
            .unwrap_or(0)
    };
    wait_until(
        "the run's results in the database",
        Duration::from_secs(60),
        || stored() >= peers.targets,
    );
    println!("{} results in {}", stored(), db.display());

    // Quit from the tray ends the agent and its window.
    let quit = item.menu().await.find("Quit WaddlePerf").unwrap().id;
    item.click(quit).await;
    let status = tokio::task::block_in_place(|| ended(&mut agent, "Quit", Duration::from_secs(30)));
    assert!(status.success(), "{status}");

    // Removed: no file of the package is left; the person's data stays.
    apt(&["remove", "-y", "-qq", PACKAGE]);
    std::mem::forget(installed);
    let left: Vec<&String> = files
        .iter()
        .filter(|f| std::fs::symlink_metadata(f).is_ok_and(|m| !m.is_dir()))
        .collect();
    assert!(left.is_empty(), "left behind by apt-get remove: {left:?}");
    let status = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", PACKAGE])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&status.stdout).trim(), "installed");
    assert!(db.exists(), "the person's data stays: {}", db.display());
    assert!(stored() >= peers.targets);
}

/// The rpm (built beside the deb): the same programs and files, and the
/// Fedora names of the libraries it needs.
#[test]
#[ignore = "needs the rpm: scripts/test.sh builds it (scripts/bundle.sh) and then runs this"]
fn the_rpm_holds_the_programs_the_entry_and_the_service() {
    let rpm = built("rpm", "rpm");
    let list = run(Command::new("rpm").arg("-qlp").arg(&rpm));
    println!("{}:\n{list}", rpm.display());
    for want in [
        "/usr/bin/waddleperf",
        "/usr/bin/waddleperf-tray",
        "/usr/bin/waddleperf-desktop",
        ENTRY,
        "/usr/share/metainfo/io.penguintech.waddleperf.metainfo.xml",
        "/usr/lib/systemd/user/waddleperf.service",
    ] {
        assert!(list.lines().any(|l| l == want), "{want} in the rpm");
    }
    let requires = run(Command::new("rpm").arg("-qpR").arg(&rpm));
    for dep in ["webkit2gtk4.1", "libayatana-appindicator-gtk3"] {
        assert!(
            requires.lines().any(|l| l.trim() == dep),
            "{dep} in {requires}"
        );
    }
    let info = run(Command::new("rpm").arg("-qpi").arg(&rpm));
    assert!(info.contains("Name        : waddleperf"), "{info}");
    // Its desktop entry starts the agent, like the deb's.
    let entry = run(Command::new("sh").arg("-c").arg(format!(
        "rpm2cpio '{}' | cpio -i --to-stdout --quiet .{ENTRY}",
        rpm.display()
    )));
    assert!(
        entry.lines().any(|l| l == "Exec=waddleperf-tray --show"),
        "{entry}"
    );
}

/// The AppImage (built beside the deb; here with the offline linuxdeploy
/// stand-in, scripts/appimage-tools.sh): its squashfs holds the three
/// programs, AppRun and the entry; started with
/// `--appimage-extract-and-run` as a person's session would, its agent's
/// tray registers; SIGTERM ends it.
#[test]
#[ignore = "needs the AppImage: scripts/test.sh builds it (scripts/bundle.sh) and then runs this"]
fn the_appimage_holds_the_programs_and_its_tray_registers() {
    scenario("the AppImage test", appimage_scenario());
}

async fn appimage_scenario() {
    let image = built("appimage", "AppImage");
    let offset = run(Command::new(&image).arg("--appimage-offset"));
    let listing = run(Command::new("unsquashfs")
        .args(["-l", "-o", offset.trim()])
        .arg(&image));
    println!(
        "{} (squashfs at {}):\n{listing}",
        image.display(),
        offset.trim()
    );
    for want in [
        "squashfs-root/AppRun",
        "squashfs-root/waddleperf.desktop",
        "squashfs-root/usr/bin/waddleperf",
        "squashfs-root/usr/bin/waddleperf-tray",
        "squashfs-root/usr/bin/waddleperf-desktop",
        "squashfs-root/usr/share/metainfo/io.penguintech.waddleperf.metainfo.xml",
    ] {
        assert!(listing.lines().any(|l| l == want), "{want} in the AppImage");
    }

    let peers = peers();
    let display = Display::start(false);
    let watcher = WatcherService::start(&display.bus.address).await;
    let info: serde_json::Value = serde_json::from_str(&run(display
        .command(support::waddleperf_bin())
        .args(["info", "--json"])))
    .unwrap();
    let config = PathBuf::from(info["paths"]["config_file"].as_str().unwrap());
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, &peers.config).unwrap();
    let started = Instant::now();
    let mut app = display
        .command(&image)
        .arg("--appimage-extract-and-run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let item = tray_item(&display, &watcher, &mut app, "the AppImage").await;
    println!("AppImage: tray registered after {:?}", started.elapsed());
    let labels = item.menu().await.labels();
    assert!(labels.iter().any(|l| l == "Open WaddlePerf"), "{labels:?}");
    // The agent runs from the extracted image (AppRun executes it); its
    // SIGTERM ends it, and the AppImage's runtime with it.
    let agents: Vec<u32> = pids_named("waddleperf-tray")
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.to_string_lossy().contains("appimage"))
        })
        .collect();
    assert!(
        !agents.is_empty(),
        "an agent runs from the extracted AppImage"
    );
    for p in &agents {
        run(Command::new("kill").args(["-TERM", &p.to_string()]));
    }
    let status =
        tokio::task::block_in_place(|| ended(&mut app, "SIGTERM", Duration::from_secs(30)));
    assert!(status.success(), "{status}");
}
