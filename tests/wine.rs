//! The Windows build of the `waddleperf` CLI, run here under wine (Debian's
//! wine64): its version, `test tcp` and `test http` against loopback peers
//! (a listener and nginx) checked against what the peers are and against
//! curl, a `run` of a local suite and its `history --json`.
//!
//! Where wine is not Windows: wine 8 has no `bcryptprimitives.dll`, whose
//! `ProcessPrng` Rust's standard library calls, so the test builds a
//! stand-in (tests/wine/bcryptprimitives.c) and puts it beside the exe.
//! The control pipe, the keychain, notifications and the tray are left to
//! the Windows runner (`.github/workflows/ci.yml`).
//!
//! Needs the Windows build: `scripts/test.sh` makes it (`cargo build
//! --target x86_64-pc-windows-gnu -p waddleperf`) and then runs this test,
//! ignored in a plain `cargo test`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::servers::{Nginx, TestCa, NGINX_FILE_BYTES};
use support::{free_port, run};

const WINE: &str = "/usr/lib/wine/wine64";

/// A prepared wine: its own prefix, the exe and the stand-in DLL together.
struct Wine {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Wine {
    fn new() -> Wine {
        assert!(
            Path::new(WINE).exists(),
            "{WINE} is missing: apt-get install wine64"
        );
        let built = support::built_bin("waddleperf")
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("x86_64-pc-windows-gnu/debug/waddleperf.exe");
        assert!(
            built.exists(),
            "{} is missing: cargo build --target x86_64-pc-windows-gnu -p waddleperf",
            built.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("waddleperf.exe");
        std::fs::copy(&built, &exe).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wine/bcryptprimitives.c");
        run(Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(bin.join("bcryptprimitives.dll"))
            .arg(&source)
            .arg("-ladvapi32"));
        Wine { dir, exe }
    }

    /// `waddleperf.exe ARGS` under wine: whether it exited 0, its output.
    fn waddleperf(&self, args: &[&str]) -> (bool, String, String) {
        let prefix = self.dir.path().join("prefix");
        let out = Command::new(WINE)
            .arg(&self.exe)
            .args(args)
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "bcryptprimitives=n;mscoree=;mshtml=")
            .env_remove("DISPLAY")
            .output()
            .expect("cannot run wine64");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.waddleperf(args);
        assert!(ok, "waddleperf {args:?} under wine failed:\n{out}\n{err}");
        out
    }

    /// A host path as the Windows program sees it (wine maps / to Z:).
    fn path(&self, p: &Path) -> String {
        format!("Z:{}", p.display()).replace('/', "\\")
    }
}

#[test]
#[ignore = "needs the Windows build: scripts/test.sh builds it and then runs this"]
fn the_windows_cli_runs_under_wine() {
    support::require_root("the wine test (nginx on loopback)");
    let wine = Wine::new();
    let started = std::time::Instant::now();
    let version = wine.ok(&["--version"]);
    println!(
        "under wine ({:?} with a new prefix): {}",
        started.elapsed(),
        version.trim()
    );
    assert!(version.starts_with("waddleperf 0.1.0"), "{version}");

    let data = tempfile::tempdir().unwrap();
    let db = wine.path(&data.path().join("wine.db"));

    // test tcp: a listener that accepts, and a port where nothing listens.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let out = wine.ok(&[
        "--db",
        &db,
        "test",
        "tcp",
        &open,
        "--json",
        "--timeout",
        "3000",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("tcp {open}: {}", v["metrics"]);
    assert_eq!(v["success"], true, "{v}");
    assert!(v["metrics"]["connect_ms"].as_f64().unwrap() >= 0.0);
    let closed = format!("127.0.0.1:{}", free_port());
    let out = wine.ok(&["--db", &db, "test", "tcp", &closed, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("tcp {closed} (closed): {} {}", v["error_kind"], v["error"]);
    assert_eq!(v["success"], false);
    assert_eq!(v["error_kind"], "refused", "{v}");

    // test http against nginx: the status and the bytes nginx serves,
    // as curl sees them.
    let ca = TestCa::new(&["IP:127.0.0.1".into()], 30);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    let url = format!("http://{}/files/100k.bin", nginx.http);
    let out = wine.ok(&["--db", &db, "test", "http", &url, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("http {url}: {}", v["metrics"]);
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["metrics"]["status_code"], 200);
    assert_eq!(v["metrics"]["bytes"], NGINX_FILE_BYTES);
    let curl = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &url,
    ]));
    assert_eq!(curl, format!("200 {NGINX_FILE_BYTES}"));

    // run: a local suite from a configuration file, then its history.
    let config = data.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[schedule]\nrun_on_start = false\n\n[sync]\nenabled = false\n\n\
             [[suite.tcp]]\ntarget = \"{open}\"\n\n[[suite.http]]\nurl = \"http://{}/\"\n",
            nginx.http
        ),
    )
    .unwrap();
    let cfg = wine.path(&config);
    let out = wine.ok(&["--config", &cfg, "--db", &db, "run"]);
    println!("run:\n{out}");
    let out = wine.ok(&["--config", &cfg, "--db", &db, "history", "--json"]);
    // One JSON object a line.
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let targets: Vec<&str> = rows.iter().filter_map(|r| r["target"].as_str()).collect();
    println!("history: {targets:?}");
    // The two tests of `test` (tcp open and closed, http) and the run's two.
    assert_eq!(rows.len(), 5, "{targets:?}");
    assert_eq!(
        rows.iter().filter(|r| r["success"] == true).count(),
        4,
        "{out}"
    );
    let http_root = format!("http://{}/", nginx.http);
    assert!(targets.contains(&http_root.as_str()), "{targets:?}");
    drop(listener);
}
