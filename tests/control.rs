//! The agent's control socket, with `waddleperf daemon` as the agent: the
//! CLI's `status`, `pause`, `resume` and `run` go through it while it runs
//! (the run shown live, its results stored by the agent: one writer) and
//! work without it; the socket is the user's alone (mode 0600, and a
//! connection of another user is refused even when the file is opened up),
//! malformed frames and a 100 MB frame are refused without hurting the
//! agent, and a client that vanishes mid-stream is forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;
use support::cli_home::{wait_for, Home};
use waddleperf_engine::config::Paths;
use waddleperf_engine::control::{self, Client, ControlError, Request};

struct Agent {
    home: Home,
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon over a suite of one TCP target (a local listener), its socket
/// once it answers.
fn agent(listener: &std::net::TcpListener) -> Agent {
    agent_with(&format!(
        "[schedule]\nrun_on_start = false\n\n[[suite.tcp]]\ntarget = \"{}\"\n",
        listener.local_addr().unwrap()
    ))
}

/// A daemon over `config`, its home the user's home (Downloads is there).
fn agent_with(config: &str) -> Agent {
    let mut home = Home::new(config);
    home.env
        .push(("HOME".into(), home.root.display().to_string()));
    let child = home.daemon(1);
    let paths = Paths {
        config_file: home.root.join("config.toml"),
        data_dir: home.db().parent().unwrap().to_owned(),
        db_file: home.db(),
        log_dir: home.root.join("logs"),
    };
    let socket = control::socket_path(&paths);
    wait_for(
        "the agent's control socket",
        Duration::from_secs(20),
        || socket.exists(),
    );
    Agent {
        home,
        child,
        socket,
    }
}

/// A raw client in Python (Debian's, which any user may run): sends `frames` (each length-prefixed unless
/// `raw`), prints what comes back, as the user `uid`.
fn raw_client(socket: &std::path::Path, uid: Option<u32>, payload_py: &str) -> String {
    let script = format!(
        r#"
import socket, struct, sys, json
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect({sock:?})
def frame(obj):
    b = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(b)) + b)
def read():
    h = b""
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c:
            return None
        h += c
    n = struct.unpack(">I", h)[0]
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return json.loads(b)
try:
{payload}
except Exception as e:
    print("error", type(e).__name__, e)
"#,
        sock = socket.display().to_string(),
        payload = payload_py
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut c = match uid {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={u}"),
                &format!("--regid={u}"),
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
            ]);
            c
        }
        None => {
            let mut c = Command::new("/usr/bin/python3");
            c.arg("-c");
            c
        }
    };
    let out = c.arg(script).output().expect("python3");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_cli_goes_through_a_running_agent_and_works_without_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = agent(&listener);
    // The socket is the user's alone.
    let mode = std::fs::metadata(&a.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{:o}", mode);

    let v = a.home.status_json();
    assert_eq!(v["agent_running"], true, "{v}");
    a.home.ok(&["pause"]);
    assert_eq!(a.home.status_json()["paused"], true);
    a.home.ok(&["resume"]);
    assert_eq!(a.home.status_json()["paused"], false);

    // `run` is the agent's run: its results come back and are in the
    // agent's database.
    let out = a.home.ok(&["run", "--json"]);
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 1, "{out}");
    assert_eq!(results[0]["success"], true, "{out}");
    let log = std::fs::read_dir(a.home.root.join("logs"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect::<String>();
    assert!(log.contains("control socket listening"), "{log}");
    let history = a.home.ok(&["history", "--json"]);
    assert!(
        history.contains(&results[0]["id"].as_str().unwrap().to_owned()),
        "{history}"
    );

    // Without the agent: the same commands read and write the database.
    let mut a = a;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = a.child.wait();
    assert!(!a.socket.exists(), "the socket outlived its agent");
    let v = a.home.status_json();
    assert_eq!(v["agent_running"], false);
    a.home.ok(&["pause"]);
    assert_eq!(a.home.status_json()["paused"], true);
    drop(listener);
}

#[tokio::test]
async fn the_socket_refuses_strangers_and_bad_frames_and_survives_them() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = agent(&listener);

    // Another user, even with the file opened up to everyone (and the
    // folders on the way searchable): refused by the agent itself.
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut dir = a.socket.parent();
    while let Some(d) = dir {
        let m = std::fs::metadata(d).unwrap().permissions().mode();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(m | 0o001)).unwrap();
        dir = d.parent();
    }
    let said = raw_client(
        &a.socket,
        Some(65534),
        // The agent may refuse (and close) before the hello is even sent:
        // its answer is read either way.
        "try:\n    frame({'id': 0, 'op': 'hello', 'version': 2, 'client': 'x'})\nexcept OSError:\n    pass\nprint(json.dumps(read()))",
    );
    assert!(
        said.contains("\"refused\"") && said.contains("its own user only"),
        "{said}"
    );

    // No hello first; a frame that is not JSON; a frame of 100 MB
    // announced (and a few MB of it sent).
    let said = raw_client(
        &a.socket,
        None,
        "frame({'id': 1, 'op': 'status'})\nprint(json.dumps(read()))",
    );
    assert!(said.contains("opens with hello"), "{said}");
    let said = raw_client(
        &a.socket,
        None,
        "frame({'id': 0, 'op': 'hello', 'version': 2, 'client': 'x'})\nread()\n\
         s.sendall(struct.pack('>I', 5) + b'{{{{{')\nprint(json.dumps(read()))",
    );
    assert!(said.contains("malformed"), "{said}");
    let said = raw_client(
        &a.socket,
        None,
        "frame({'id': 0, 'op': 'hello', 'version': 2, 'client': 'x'})\nread()\n\
         s.sendall(struct.pack('>I', 100000000))\n\
         try:\n    s.sendall(b'x' * 4000000)\nexcept Exception:\n    pass\n\
         print(json.dumps(read()))",
    );
    assert!(said.contains("over the limit"), "{said}");
    // Another protocol version: both named.
    let said = raw_client(
        &a.socket,
        None,
        "frame({'id': 0, 'op': 'hello', 'version': 99, 'client': 'x'})\nprint(json.dumps(read()))",
    );
    assert!(said.contains("protocol 2, the client 99"), "{said}");

    // A subscriber that vanishes mid-stream, then one that stays: the agent
    // goes on serving.
    let said = raw_client(
        &a.socket,
        None,
        "frame({'id': 0, 'op': 'hello', 'version': 2, 'client': 'x'})\nread()\n\
         frame({'id': 1, 'op': 'subscribe'})\nframe({'id': 2, 'op': 'run_now'})\nread()\nprint('gone')",
    );
    assert!(said.contains("gone"), "{said}");
    // (Its run goes on without it; the next one starts afresh.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut c = Client::connect(&a.socket, "test").await.unwrap();
    c.call(Request::Subscribe).await.unwrap();
    let mut events = Vec::new();
    let summary = c
        .call_with_events(Request::RunNow, |e| {
            events.push(e["event"].as_str().unwrap_or("").to_owned())
        })
        .await
        .unwrap();
    assert_eq!(summary["results"].as_array().unwrap().len(), 1, "{summary}");
    assert!(
        events.contains(&"run_started".to_owned()) && events.contains(&"result".to_owned()),
        "{events:?}"
    );
    // A bad argument is the agent's clear error, the connection stays.
    let e = c.call(Request::RunTier { tier: 7 }).await.err();
    assert!(
        matches!(&e, Some(ControlError::Agent(w)) if w.kind == "invalid"),
        "{e:?}"
    );
    let s = c.call(Request::Status).await.unwrap();
    assert_eq!(s["targets"], 1, "{s}");
    drop(listener);
}

#[tokio::test]
async fn no_agent_is_not_running_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Client::connect(&dir.path().join("agent.sock"), "test")
        .await
        .err();
    assert!(matches!(e, Some(ControlError::NotRunning(_))), "{e:?}");
}

/// The window's calls, against a headless agent: its information, the
/// stored targets, history for several targets, an export into the user's
/// Downloads folder, a chart query checked, and what only a desktop agent
/// does refused as such.
#[tokio::test]
async fn the_windows_calls_against_a_headless_agent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = agent_with(&format!(
        "[schedule]\nrun_on_start = false\n\n[[suite.tcp]]\ntarget = \"{}\"\n\n[[suite.tcp]]\ntarget = \"127.0.0.1:1\"\n",
        listener.local_addr().unwrap()
    ));
    let (home, socket) = (&a.home, &a.socket);
    let mut c = Client::connect(socket, "window").await.unwrap();
    let info: control::AgentInfo =
        serde_json::from_value(c.call(Request::Info).await.unwrap()).unwrap();
    assert_eq!(info.pid, a.child.id());
    assert!(!info.desktop && info.autostart.is_none());
    assert_eq!(info.db_file, home.db());
    assert_eq!(info.device_id.len(), 64);
    c.call(Request::RunNow).await.unwrap();
    c.call(Request::RunNow).await.unwrap();

    let targets = c.call(Request::Targets).await.unwrap();
    assert_eq!(targets.as_array().map(Vec::len), Some(2), "{targets}");
    let both: Vec<String> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap().to_owned())
        .collect();
    let history = |targets: Vec<String>, limit| Request::History {
        target: None,
        targets,
        test_type: None,
        since: None,
        until: None,
        limit,
        network: None,
    };
    let rows = c.call(history(both.clone(), Some(3))).await.unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "the newest 3 of 4");
    let one = c.call(history(vec![both[0].clone()], None)).await.unwrap();
    let one = one.as_array().unwrap();
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|m| m["target"] == both[0].as_str()));

    let exported: control::Exported = serde_json::from_value(
        c.call(Request::Export {
            format: waddleperf_engine::export::Format::Csv,
            targets: vec![],
            test_type: None,
            since: None,
            until: None,
            network: None,
        })
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(exported.count, 4);
    assert!(exported.path.starts_with(home.root.join("Downloads")));
    let (_, rows) = support::parse_csv(&std::fs::read_to_string(&exported.path).unwrap());
    assert_eq!(rows.len(), 4);

    let now = chrono::Utc::now();
    let e = c
        .call(Request::Series {
            targets: vec![],
            test_type: None,
            metric: "bogus".into(),
            since: now - chrono::Duration::hours(1),
            until: now,
            bucket_secs: 60,
            network: None,
        })
        .await
        .err();
    assert!(
        matches!(&e, Some(ControlError::Agent(w)) if w.kind == "invalid" && w.key.as_deref() == Some("metric")),
        "{e:?}"
    );
    for req in [
        Request::Open {
            page: "history".into(),
        },
        Request::Autostart { on: Some(true) },
    ] {
        let e = c.call(req).await.err();
        assert!(
            matches!(&e, Some(ControlError::Agent(w)) if w.kind == "unsupported" && w.message.contains("without a desktop")),
            "{e:?}"
        );
    }
    drop(a);
    drop(listener);
}
