//! `waddleperf login`, `enroll`, `sync`, `status` and `logout` as real
//! processes against the contract double; the daemon killed with SIGKILL in
//! the middle of a sync pass and restarted (every result on the server
//! exactly once); and the session in a real Secret Service keychain
//! (gnome-keyring on a private D-Bus session bus).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::unified_api::{ApiDouble, User};
use support::waddleperf_cmd;
use waddleperf::model::{Measurement, TestType};
use waddleperf::store::Store;

struct Home {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    /// Extra environment for every command (a D-Bus session for the keychain).
    env: Vec<(String, String)>,
}

impl Home {
    fn new(config: &str) -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        std::fs::write(root.join("config.toml"), config).unwrap();
        Home {
            _tmp: tmp,
            root,
            env: Vec::new(),
        }
    }
    fn db(&self) -> PathBuf {
        self.root.join("data/wp.db")
    }
    fn secrets_file(&self) -> PathBuf {
        self.root.join("data/secrets.json")
    }
    fn cmd(&self, args: &[&str]) -> Command {
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
    fn wp_in(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
    fn wp(&self, args: &[&str]) -> Output {
        self.wp_in(args, "")
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.wp(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }
    fn daemon(&self, n: u32) -> Child {
        let err = std::fs::File::create(self.root.join(format!("daemon-{n}.txt"))).unwrap();
        self.cmd(&["daemon", "--grace", "1"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }
    fn daemon_log(&self, n: u32) -> String {
        std::fs::read_to_string(self.root.join(format!("daemon-{n}.txt"))).unwrap_or_default()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn double() -> ApiDouble {
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

fn config(url: &str) -> String {
    format!(
        "[schedule]\nrun_on_start = false\n\n[sync]\nserver = \"{url}\"\nspread_seconds = 0\n\n\
         [[suite.tcp]]\ntarget = \"127.0.0.1:9\"\n"
    )
}

/// Runs blocking CLI work off the runtime's threads, so the double serves.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `waddleperf login` as alice, the password on stdin, an MFA code if given.
fn login_alice(h: &Home, mfa_code: Option<&str>) -> Output {
    let mut args = vec!["login", "--username", "alice", "--password-stdin"];
    if let Some(code) = mfa_code {
        args.extend(["--mfa-code", code]);
    }
    h.wp_in(&args, "correct horse\n")
}

fn sign_in(h: &Home) -> String {
    let o = login_alice(h, Some("246810"));
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_enroll_sync_status_logout_from_the_cli() {
    let srv = double().await;
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let url = srv.url.clone();
    let srv = std::sync::Arc::new(srv);
    let s2 = std::sync::Arc::clone(&srv);
    blocking(move || {
        let srv = s2;
        // Not signed in yet.
        let o = h.wp(&["sync"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("not signed in"), "{}", text(&o));

        // MFA: without a code and without a terminal, the error says how.
        let o = login_alice(&h, None);
        assert!(!o.status.success());
        assert!(text(&o).contains("--mfa-code"), "{}", text(&o));
        let o = login_alice(&h, Some("000000"));
        assert!(text(&o).contains("Invalid MFA token"), "{}", text(&o));

        let out = sign_in(&h);
        assert!(
            out.contains(&format!("signed in to {url} as alice")),
            "{out}"
        );
        // No keychain service on this bus-less process: the 0600 file, said so.
        assert!(out.contains("secrets.json (readable by you only)"), "{out}");
        assert!(out.contains("no system keychain"), "{out}");
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(h.secrets_file()).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        let secrets = std::fs::read_to_string(h.secrets_file()).unwrap();
        assert!(secrets.contains("refresh_token"));
        assert!(
            !secrets.contains("correct horse"),
            "the password is never stored"
        );

        let st = h.ok(&["status"]);
        assert!(st.contains("account       alice on"), "{st}");
        assert!(st.contains("(0600): no system keychain"), "{st}");
        assert!(st.contains("not enrolled"), "{st}");

        let out = h.ok(&[
            "enroll",
            "--org",
            "1",
            "--secret",
            "fleet-secret",
            "--name",
            "ci-box",
        ]);
        assert!(out.contains("enrolled as \"ci-box\": device 1"), "{out}");
        let o = h.wp(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("already enrolled"), "{}", text(&o));
        assert_eq!(srv.state.lock().unwrap().devices.len(), 1);

        h.ok(&["test", "tcp", &target]);
        let out = h.ok(&["sync"]);
        assert!(
            out.contains("delivered 1 result(s); 0 waiting; 0 dead letter(s)"),
            "{out}"
        );
        assert_eq!(srv.test_ids().len(), 1);
        let v: serde_json::Value = serde_json::from_str(&h.ok(&["sync", "--json"])).unwrap();
        assert_eq!(v["delivered"], 0);
        let st = h.status_json();
        assert_eq!(st["sync"]["pending"], 0);
        assert_eq!(st["sync"]["enrollment"]["id"], 1);
        assert_eq!(st["sync"]["account"]["username"], "alice");
        assert_eq!(st["sync"]["account"]["secret_store"], "file");
        assert!(h
            .ok(&["sync", "--dead-letters"])
            .contains("no dead letters"));

        // Server down: the result waits, the error is reported, exit 1.
        srv.set_down(true);
        h.ok(&["test", "tcp", &target]);
        let o = h.wp(&["sync"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("sync stopped"), "{}", text(&o));
        let st = h.ok(&["status"]);
        assert!(st.contains("1 waiting"), "{st}");
        assert!(st.contains("sync error"), "{st}");
        srv.set_down(false);
        assert!(h.ok(&["sync"]).contains("delivered 1 result(s)"));
        assert_eq!(srv.test_ids().len(), 2);

        let out = h.ok(&["logout"]);
        assert!(out.contains("signed out of"), "{out}");
        assert!(!h.secrets_file().exists(), "the tokens are forgotten");
        assert!(h.ok(&["status"]).contains("not signed in"));
        drop(listener);
    })
    .await;
}

fn results(n: usize) -> Vec<Measurement> {
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

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_sync_and_restarted_delivers_each_result_once() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let srv = std::sync::Arc::new(double().await);
    let h = std::sync::Arc::new(Home::new(&config(&srv.url)));
    let s2 = std::sync::Arc::clone(&srv);
    blocking(move || {
        let srv = s2;
        sign_in(&h);
        h.ok(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
        let batch = results(400);
        let local: Vec<String> = batch.iter().map(|m| m.id.to_string()).collect();
        Store::open(&h.db()).unwrap().insert(&batch).unwrap();
        // Each upload is stored, then answered 15 ms later: a kill lands in
        // that window, leaving results stored but unacknowledged.
        srv.set_answer_delay(Some(Duration::from_millis(15)));

        let mut d = h.daemon(1);
        wait_for("uploads to start", Duration::from_secs(60), || {
            srv.test_ids().len() >= 100
        });
        kill(Pid::from_raw(d.id() as i32), Signal::SIGKILL).unwrap();
        d.wait().unwrap();
        let on_server = srv.test_ids().len();
        assert!(on_server < 400, "killed mid-pass ({on_server} uploaded)");
        let store = Store::open(&h.db()).unwrap();
        let far = Utc::now() + ChronoDuration::days(365);
        let waiting = store.outbox_due(far, 1000).unwrap();
        let uncertain = waiting.iter().filter(|i| i.uncertain).count();
        println!(
            "killed with {on_server} on the server, {} waiting, {uncertain} marked uncertain",
            waiting.len()
        );
        assert!(
            uncertain >= 1,
            "the attempts in flight were marked before they left"
        );
        drop(store);

        let mut d = h.daemon(2);
        wait_for("the backlog to drain", Duration::from_secs(120), || {
            h.status_json()["sync"]["pending"] == 0
        });
        kill(Pid::from_raw(d.id() as i32), Signal::SIGTERM).unwrap();
        assert!(d.wait().unwrap().success(), "{}", h.daemon_log(2));

        let server = srv.test_ids();
        let mut sorted = server.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), server.len(), "no duplicates");
        let mut want = local.clone();
        want.sort();
        assert_eq!(sorted, want, "every result on the server");
        let st = h.status_json();
        assert_eq!(
            st["sync"]["dead"], 0,
            "no duplicate turned into a dead letter"
        );
        let posts = srv.count("POST", "/api/v1/tests/");
        let log = h.daemon_log(2);
        let settled = log.matches("already on the server").count();
        println!("{posts} uploads for 400 results; {settled} settled by reading back");
        assert!(posts >= 400);
    })
    .await;
}

/// A real Secret Service: gnome-keyring on a private session bus, unlocked
/// with a test password (scripts/test.sh installs gnome-keyring and
/// libsecret-tools).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_goes_to_a_real_keychain_when_there_is_one() {
    assert!(
        Command::new("gnome-keyring-daemon")
            .arg("--version")
            .output()
            .is_ok(),
        "gnome-keyring-daemon (package gnome-keyring) is needed; scripts/test.sh installs it"
    );
    let srv = std::sync::Arc::new(double().await);
    let mut home = Home::new(&config(&srv.url));
    let bus = support::session_bus::SessionBus::start();
    let keyring = bus.start_keyring(&home.root);
    home.env
        .push(("DBUS_SESSION_BUS_ADDRESS".into(), bus.address.clone()));
    let h = std::sync::Arc::new(home);
    let s2 = std::sync::Arc::clone(&srv);
    blocking(move || {
        let srv = s2;
        let out = sign_in(&h);
        assert!(
            out.contains("session saved in the system keychain"),
            "{out}"
        );
        assert!(
            !h.secrets_file().exists(),
            "no file when the keychain works"
        );
        let found = bus.secret_tool(&["search", "--all", "service", "io.penguintech.waddleperf"]);
        assert!(
            found.contains("refresh_token") || found.contains("secret ="),
            "{found}"
        );
        let st = h.ok(&["status"]);
        assert!(st.contains("secrets       system keychain"), "{st}");
        h.ok(&["enroll", "--org", "1", "--secret", "fleet-secret"]);
        Store::open(&h.db()).unwrap().insert(&results(3)).unwrap();
        assert!(h.ok(&["sync"]).contains("delivered 3 result(s)"));
        assert_eq!(srv.test_ids().len(), 3);
        h.ok(&["logout"]);
        let left = bus.secret_tool(&["search", "--all", "service", "io.penguintech.waddleperf"]);
        assert!(
            !left.contains("secret ="),
            "logout removes the entry: {left}"
        );
        drop(keyring);
    })
    .await;
}
