//! The desktop app under test, for real: an X server (Xvfb), a D-Bus session
//! bus, optionally an XEmbed tray (trayer), `tauri-driver` over Debian's
//! WebKitWebDriver, and a small WebDriver client (the W3C protocol is JSON
//! over HTTP; reqwest speaks it).

use super::session_bus::SessionBus;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The debug build of the window app, next to this test's own target dir
/// (`cargo test --workspace` builds it before any test runs).
pub fn desktop_bin() -> PathBuf {
    super::built_bin("waddleperf-desktop")
}

/// The debug build of the tray agent.
pub fn tray_bin() -> PathBuf {
    super::built_bin("waddleperf-tray")
}

/// Where the tests leave screenshots (CI artifacts): `<target>/e2e`.
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap();
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn which(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_cargo)
        .map(|d| d.join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("`{tool}` is needed ({package})"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless X display and a session bus, with a home of its own.
pub struct Display {
    pub number: u32,
    pub home: tempfile::TempDir,
    pub bus: SessionBus,
    _xvfb: Killed,
    _tray: Option<Killed>,
}

impl Display {
    /// Xvfb at 1280×800; with `tray`, trayer docked at the top right.
    pub fn start(tray: bool) -> Display {
        let xvfb = which("Xvfb", "package xvfb");
        // A display number nobody uses: from the pid, probing for the socket.
        let mut number = 100 + (std::process::id() % 400) + super::next_id() * 7;
        while Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
            || Path::new(&format!("/tmp/.X{number}-lock")).exists()
        {
            number += 1;
        }
        // `-displayfd 1`: Xvfb writes its display number to stdout once it
        // accepts connections: a surer sign than its socket file appearing.
        let mut x = Command::new(xvfb)
            .arg(format!(":{number}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .args(["-displayfd", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        let out = x.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut ready).unwrap();
        let x = Killed(x);
        assert_eq!(
            ready.trim(),
            number.to_string(),
            "Xvfb :{number} did not start"
        );
        let home = tempfile::tempdir().unwrap();
        for d in [
            ".config",
            ".local/share",
            ".local/state",
            ".cache",
            "Downloads",
        ] {
            std::fs::create_dir_all(home.path().join(d)).unwrap();
        }
        let bus = SessionBus::start();
        let mut display = Display {
            number,
            home,
            bus,
            _xvfb: x,
            _tray: None,
        };
        if tray {
            display.start_tray();
        }
        display
    }

    /// trayer, docked at the top right; waits for its window. A trayer that
    /// exits, or whose window does not appear in 20 s (seen once in about
    /// 30 runs with both cores busy), is started again, up to three times,
    /// and its stderr is printed.
    fn start_tray(&mut self) {
        let mut why = String::new();
        for attempt in 1..=3 {
            let log = self.home.path().join(format!("trayer-{attempt}.log"));
            let t = self
                .command(which("trayer", "package trayer"))
                .args([
                    "--edge",
                    "top",
                    "--align",
                    "right",
                    "--widthtype",
                    "request",
                    "--height",
                    "32",
                    "--transparent",
                    "false",
                    "--tint",
                    "0x333333",
                    "--SetDockType",
                    "true",
                ])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut t = Killed(t);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if !self
                    .xdotool(&["search", "--class", "trayer"])
                    .trim()
                    .is_empty()
                {
                    self._tray = Some(t);
                    return;
                }
                let exited = t.0.try_wait().unwrap();
                if exited.is_some() || Instant::now() >= deadline {
                    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                    why = match exited {
                        Some(s) => format!("exited ({s}): {}", stderr.trim()),
                        None => format!("no window after 20 s: {}", stderr.trim()),
                    };
                    eprintln!("trayer, attempt {attempt}: {why}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("trayer did not start on :{}: {why}", self.number);
    }

    /// A command on this display and bus, with this home.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        let h = self.home.path();
        c.env("DISPLAY", format!(":{}", self.number))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join(".config"))
            .env("XDG_DATA_HOME", h.join(".local/share"))
            .env("XDG_STATE_HOME", h.join(".local/state"))
            .env("XDG_CACHE_HOME", h.join(".cache"))
            .env("XDG_DOWNLOAD_DIR", h.join("Downloads"))
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WADDLEPERF_LOG");
        c
    }

    /// Asks a window to close as a window manager would: a WM_DELETE_WINDOW
    /// client message (python3-xlib; Xvfb runs no window manager).
    pub fn close_window(&self, window: &str) {
        let script = format!(
            "from Xlib import display, X, protocol\n\
             d = display.Display()\n\
             w = d.create_resource_object('window', {window})\n\
             proto = d.intern_atom('WM_PROTOCOLS'); delete = d.intern_atom('WM_DELETE_WINDOW')\n\
             ev = protocol.event.ClientMessage(window=w, client_type=proto, data=(32, [delete, X.CurrentTime, 0, 0, 0]))\n\
             w.send_event(ev, event_mask=0)\n\
             d.flush()\n"
        );
        let out = self
            .command("/usr/bin/python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "python3-xlib is needed: {out:?}");
    }

    /// `xdotool ARGS` on this display; its stdout.
    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = self
            .command(which("xdotool", "package xdotool"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for a window of this class; its id.
    pub fn wait_for_window(&self, class: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let ids = self.xdotool(&["search", "--class", class]);
            if let Some(id) = ids.lines().next() {
                return id.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no window of class `{class}` on :{} after {timeout:?}",
                self.number
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a visible window whose title starts with `title`; its id.
    pub fn wait_for_window_named(&self, title: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let ids = self.xdotool(&["search", "--onlyvisible", "--name", &format!("^{title}")]);
            if let Some(id) = ids.lines().next() {
                return id.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no window titled `{title}` on :{} after {timeout:?}",
                self.number
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The centre of a window, in screen coordinates.
    pub fn centre(&self, window: &str) -> (i64, i64) {
        let shell = self.xdotool(&["getwindowgeometry", "--shell", window]);
        let get = |k: &str| -> i64 {
            shell
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {k} in {shell}"))
        };
        (get("X") + get("WIDTH") / 2, get("Y") + get("HEIGHT") / 2)
    }

    /// A screenshot of the whole screen (ImageMagick's `import`).
    pub fn screenshot(&self, path: &Path) {
        let out = self
            .command(which("import", "package imagemagick"))
            .args(["-window", "root"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "import: {out:?}");
    }
}

/// `tauri-driver` on free ports, on a display; stopped with SIGTERM (SIGKILL
/// would orphan WebKitWebDriver on its port).
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start(display: &Display) -> Driver {
        let port = super::free_port();
        let native = super::free_port();
        let mut c = display.command(which("tauri-driver", "cargo install tauri-driver --locked"));
        c.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .arg("--native-driver")
        .arg(which("WebKitWebDriver", "package webkit2gtk-driver"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = c.spawn().unwrap();
        // Both must listen before a session can start: tauri-driver, and the
        // WebKitWebDriver it starts behind it.
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in [port, native] {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "tauri-driver did not listen on {p}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session: the app, started by the driver with `args`.
pub struct Session {
    http: reqwest::Client,
    base: String,
    pub id: String,
    /// The app's process, which WebKitWebDriver started for this session.
    app_pid: u32,
}

impl Session {
    pub async fn start(driver: &Driver, app: &Path, args: &[String]) -> Session {
        // Plain HTTP on loopback; reqwest still wants a TLS configuration.
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{}", driver.port);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": app, "args": args},
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        let pids = app_pids(app);
        let [app_pid] = pids[..] else {
            panic!("one {} should run, not {pids:?}", app.display());
        };
        Session {
            http,
            base,
            id,
            app_pid,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.id);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = v["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    /// Runs `script` (a function body; `return` gives the value).
    pub async fn exec(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` returns something truthy; returns it.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.exec(script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The WebDriver id of the element `css` selects.
    async fn find(&self, css: &str) -> String {
        let el = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        el.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {el}"))
            .to_owned()
    }

    /// Clicks the element `css` selects (a real click through WebKit).
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types into the element `css` selects, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The window as a PNG file.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and waits until the app's process is gone.
    /// WebKitWebDriver stops the app it started; should the app outlive the
    /// session in its tray, it gets SIGTERM (which quits it like the menu).
    pub async fn end(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.id))
            .send()
            .await;
        if !exited_within(self.app_pid, Duration::from_secs(10)) {
            if let Ok(pid) = i32::try_from(self.app_pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            assert!(
                exited_within(self.app_pid, Duration::from_secs(30)),
                "the app (process {}) still runs after SIGTERM",
                self.app_pid
            );
        }
    }
}

/// The processes running `bin`.
fn app_pids(bin: &Path) -> Vec<u32> {
    let out = Command::new("pgrep").arg("-f").arg(bin).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether process `pid` has exited and been reaped within `timeout`. Not
/// `pgrep`: a killed process's command line is empty as soon as its main
/// thread has let go of its memory, while its other threads may still hold
/// its files (the database lock, the D-Bus name a second instance looks for).
fn exited_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
