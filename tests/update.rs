//! Updates against a local HTTPS server (nginx with a test CA) serving a
//! release manifest and an artifact signed with a test key by minisign
//! itself: a newer version is found, downloaded and verified (minisign
//! verifies the same file); an older one is up to date; a tampered
//! artifact, a signature by another key, a malformed manifest, a manifest
//! without this system and a missing key are refused with a clear message,
//! and nothing already downloaded is replaced.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::cli_home::Home;
use support::servers::{Nginx, TestCa};
use support::{free_port, run};
use waddleperf_engine::update::platform;

/// A minisign key pair made by minisign (no password).
struct Key {
    _dir: tempfile::TempDir,
    secret: PathBuf,
    public: PathBuf,
}

impl Key {
    fn new() -> Key {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = (dir.path().join("test.key"), dir.path().join("test.pub"));
        run(Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret));
        Key {
            _dir: dir,
            secret,
            public,
        }
    }
    /// The key line (`RW…`), as the configuration takes it.
    fn line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    }
    /// Signs `file`; the signature file's text, base64-encoded (Tauri's
    /// manifests carry it so).
    fn sign(&self, file: &Path) -> String {
        run(Command::new("minisign")
            .args(["-S", "-s"])
            .arg(&self.secret)
            .arg("-m")
            .arg(file));
        run(Command::new("base64")
            .arg("-w0")
            .arg(format!("{}.minisig", file.display())))
    }
}

struct Server {
    _ca: TestCa,
    nginx: Nginx,
    ca_pem: PathBuf,
}

impl Server {
    fn start() -> Server {
        let ca = TestCa::new(&["IP:127.0.0.1".into()], 30);
        let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
        let ca_pem = ca.ca_pem.clone();
        Server {
            _ca: ca,
            nginx,
            ca_pem,
        }
    }
    fn www(&self) -> PathBuf {
        self.nginx.dir.path().join("www")
    }
    fn url(&self, name: &str) -> String {
        format!("https://{}/{name}", self.nginx.https)
    }
    /// Publishes `body` as `name`.
    fn put(&self, name: &str, body: &[u8]) -> PathBuf {
        let p = self.www().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
    fn manifest(&self, version: &str, platform: &str, artifact: &str, signature: &str) {
        let m = serde_json::json!({
            "version": version,
            "notes": "Faster traceroute.",
            "pub_date": "2026-12-01T00:00:00Z",
            "platforms": { platform: { "url": self.url(artifact), "signature": signature } },
        });
        self.put("latest.json", m.to_string().as_bytes());
    }
}

fn config(server: &Server, key: &str) -> String {
    format!(
        "[schedule]\nrun_on_start = false\n\n[sync]\nenabled = false\n\n\
         [update]\nmanifest_url = \"{}\"\npublic_key = \"{key}\"\nca_file = \"{}\"\n",
        server.url("latest.json"),
        server.ca_pem.display()
    )
}

fn fails(home: &Home, args: &[&str]) -> String {
    let o = home.wp(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} should fail: {err}");
    println!("{args:?}: {}", err.trim());
    err
}

/// Every file in the updates folder, with its contents.
fn staged(home: &Home) -> Vec<(String, Vec<u8>)> {
    let dir = home.root.join("data/updates");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_signed_newer_release_is_found_downloaded_and_verified_and_bad_ones_are_refused() {
    support::require_root("the update test (nginx on loopback)");
    let server = Server::start();
    let key = Key::new();
    let name = "waddleperf_9.9.9_amd64.AppImage";
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let artifact = server.put(name, &body);
    let signature = key.sign(&artifact);
    server.manifest("9.9.9", &platform(), name, &signature);
    let home = Home::new(&config(&server, &key.line()));

    // --check: found, nothing downloaded.
    let out = home.ok(&["update", "--check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("check: {v}");
    assert_eq!(v["status"], "available");
    assert_eq!(v["release"]["version"], "9.9.9");
    assert_eq!(v["release"]["platform"], platform());
    assert_eq!(v["current"], waddleperf_engine::version::VERSION);
    assert!(staged(&home).is_empty());

    // Downloaded and verified: the served bytes, which minisign accepts too.
    let out = home.ok(&["update"]);
    println!("{out}");
    assert!(out.contains("WaddlePerf 9.9.9 is available"), "{out}");
    assert!(out.contains("Downloaded and verified: "), "{out}");
    let files = staged(&home);
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(files[0].0, name);
    assert!(files[0].1 == body, "the download is the artifact");
    let got = home.root.join("data/updates").join(name);
    run(Command::new("minisign")
        .args(["-V", "-p"])
        .arg(&key.public)
        .arg("-m")
        .arg(&got)
        .arg("-x")
        .arg(format!("{}.minisig", artifact.display())));

    // Tampered after signing: refused, the partial download deleted, the
    // earlier verified copy left as it was.
    let before = staged(&home);
    let mut tampered = body.clone();
    tampered[1_000_000] ^= 0xff;
    let other = "waddleperf_9.9.10_amd64.AppImage";
    server.put(other, &tampered);
    server.manifest("9.9.10", &platform(), other, &signature);
    let err = fails(&home, &["update"]);
    assert!(
        err.contains("does not verify") && err.contains("nothing was replaced"),
        "{err}"
    );
    assert_eq!(staged(&home), before);

    // Signed by another key.
    let stranger = Key::new();
    let signed_by_stranger = stranger.sign(&server.put(other, &body));
    server.manifest("9.9.10", &platform(), other, &signed_by_stranger);
    let err = fails(&home, &["update"]);
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(staged(&home), before);

    // A malformed manifest, and garbage served as one.
    server.put("latest.json", b"{\"version\": \"9.9.11\", \"platforms\": ");
    let err = fails(&home, &["update"]);
    assert!(err.contains("malformed"), "{err}");
    server.put("latest.json", &[0xffu8; 100_000]);
    let err = fails(&home, &["update"]);
    assert!(
        err.contains("malformed") && err.contains("larger than"),
        "{err}"
    );
    server.manifest("not-a-version", &platform(), name, &signature);
    let err = fails(&home, &["update"]);
    assert!(err.contains("is not a version"), "{err}");
    // No build for this system.
    server.manifest("9.9.11", "plan9-mips", name, &signature);
    let err = fails(&home, &["update"]);
    assert!(
        err.contains("no build for this system") && err.contains("plan9-mips"),
        "{err}"
    );
    assert_eq!(staged(&home), before);

    // The same version as this one, or older: up to date.
    server.manifest("0.0.1", &platform(), name, &signature);
    let out = home.ok(&["update", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "up_to_date", "{v}");

    // The configuration: a bad key is named where it is; no URL is off.
    std::fs::write(home.root.join("config.toml"), config(&server, "RWQnotakey")).unwrap();
    let err = fails(&home, &["update"]);
    assert!(err.contains("update.public_key"), "{err}");
    std::fs::write(home.root.join("config.toml"), "[sync]\nenabled = false\n").unwrap();
    let err = fails(&home, &["update"]);
    assert!(err.contains("updates are off"), "{err}");
    assert_eq!(staged(&home), before);
}

/// The agent's own check: the daemon finds the release, downloads and
/// verifies it into its data folder and says so in its log.
#[test]
fn the_agent_downloads_a_verified_release_by_itself() {
    support::require_root("the update test (nginx on loopback)");
    let server = Server::start();
    let key = Key::new();
    let name = "waddleperf_9.9.9_amd64.AppImage";
    let body = vec![7u8; 100_000];
    let signature = key.sign(&server.put(name, &body));
    server.manifest("9.9.9", &platform(), name, &signature);
    let mut home = Home::new(&config(&server, &key.line()));
    home.env
        .push(("WADDLEPERF_UPDATE_FIRST_CHECK_SECS".into(), "0".into()));
    let mut daemon = home.daemon(1);
    let got = home.root.join("data/updates").join(name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !got.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no download; the daemon said:\n{}",
            home.daemon_log(1)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(std::fs::read(&got).unwrap() == body);
    let logs: String = std::fs::read_dir(home.root.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    run(Command::new("kill").args(["-TERM", &daemon.id().to_string()]));
    assert!(daemon.wait().unwrap().success());
    let logs = logs + &home.daemon_log(1);
    assert!(logs.contains("update downloaded and verified"), "{logs}");
}
