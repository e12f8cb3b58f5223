//! `waddleperf login`, `enroll`, `sync`, `status` and `logout` as real
//! processes against the contract double; the daemon killed with SIGKILL in
//! the middle of a sync pass and restarted (every result on the server
//! exactly once); and the session in a real Secret Service keychain
//! (gnome-keyring on a private D-Bus session bus).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use chrono::{Duration as ChronoDuration, Utc};
use std::process::Command;
use std::time::Duration;
use support::cli_home::{
    blocking, config, double, login_alice, results, sign_in, text, wait_for, Home,
};
use waddleperf_engine::store::Store;

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
