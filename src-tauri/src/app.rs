//! The window process: launch arguments, the Tauri builder with its
//! commands, the subscription to the agent's events, and the end of the
//! process a grace period after the window is closed, or on a signal.

use crate::shell::{Shell, RUNTIME_EVENT, WINDOW};
use crate::window::{closed, open_window, Lifecycle};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager, RunEvent, WindowEvent};
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::control::{Client, Request};

/// The window's pages.
pub const PAGES: [&str; 3] = ["overview", "history", "settings"];

/// How the window was started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    /// The page to open (`--show [PAGE]`; the Overview when not given).
    pub show: Option<String>,
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
}

impl Launch {
    /// Parses the command line (program name first). Unknown arguments are
    /// an error naming them.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Launch, String> {
        let mut it = args.into_iter().skip(1).peekable();
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut l = Launch {
            show: None,
            config: env("WADDLEPERF_CONFIG"),
            db: env("WADDLEPERF_DB"),
            log_dir: env("WADDLEPERF_LOG_DIR"),
        };
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (a.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--show" => {
                    let page = inline
                        .clone()
                        .or_else(|| it.next_if(|n| !n.starts_with("--")))
                        .unwrap_or_else(|| "overview".to_owned());
                    if !PAGES.contains(&page.as_str()) {
                        return Err(format!(
                            "--show: `{page}` is not a page (overview, history, settings)"
                        ));
                    }
                    l.show = Some(page);
                }
                "--config" => l.config = Some(value("--config")?.into()),
                "--db" => l.db = Some(value("--db")?.into()),
                "--log-dir" => l.log_dir = Some(value("--log-dir")?.into()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(l)
    }

    pub fn page(&self) -> &str {
        self.show.as_deref().unwrap_or("overview")
    }
}

/// Starts the window; returns when it ends.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let paths = Paths::resolve(
        launch.config.clone(),
        launch.db.clone(),
        launch.log_dir.clone(),
    );
    // The agent reports a bad configuration file; here it only sets how
    // this process logs.
    let log_cfg = Config::load(&paths.config_file)
        .map(|c| c.log)
        .unwrap_or_default();
    let log_guard =
        waddleperf_engine::logging::init_files("waddleperf-window", 0, &paths.log_dir, &log_cfg)?;
    let log_guard = std::sync::Mutex::new(Some(log_guard));

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    tauri::async_runtime::set(tokio_rt.handle().clone());
    let _tokio_context = tokio_rt.enter();

    let shell = Arc::new(Shell::new(paths));
    tracing::info!(
        version = %waddleperf_engine::version::long_version(),
        pid = std::process::id(),
        socket = %shell.socket.display(),
        "window started"
    );
    let page = launch.page().to_owned();
    let setup_shell = Arc::clone(&shell);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            let launch = Launch::parse(argv).unwrap_or_default();
            open_window(app, launch.page());
        }))
        .manage(Arc::clone(&shell))
        .manage(Arc::new(Lifecycle::default()))
        .invoke_handler(tauri::generate_handler![
            crate::ipc::app_info,
            crate::ipc::status,
            crate::ipc::run_now,
            crate::ipc::speed_test,
            crate::ipc::pause,
            crate::ipc::resume,
            crate::ipc::history,
            crate::ipc::targets,
            crate::ipc::series,
            crate::ipc::events,
            crate::ipc::settings_get,
            crate::ipc::settings_set,
            crate::ipc::export,
            crate::ipc::set_autostart,
            crate::ipc::account,
            crate::ipc::login,
            crate::ipc::logout,
            crate::ipc::enroll,
            crate::ipc::sync_now,
            crate::ipc::retry_dead,
        ])
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == WINDOW {
                    api.prevent_close();
                    closed(window.app_handle(), window);
                }
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            spawn_event_pump(handle.clone(), setup_shell);
            spawn_signal_exit(handle.clone());
            open_window(&handle, &page);
            Ok(())
        })
        .build(tauri::generate_context!())?;

    app.run(move |_app, event| {
        if let RunEvent::Exit = event {
            tracing::info!("window stopped");
            if let Ok(mut g) = log_guard.lock() {
                g.take();
            }
            end_process();
        }
    });
    Ok(())
}

/// Ends the process at once once its log is flushed: the window holds no
/// data of its own. On Linux and the BSDs the toolkit's own teardown that
/// would come next has been seen to crash after a clean end, with nothing
/// left to save. Windows and macOS go on through Tauri's teardown.
#[cfg(all(unix, not(target_os = "macos")))]
#[allow(unsafe_code)]
fn end_process() {
    // SAFETY: `_exit` has no preconditions; it does not return, and runs no
    // handler that could see a half-dropped Rust value.
    unsafe { libc::_exit(0) }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn end_process() {}

/// How soon the window tries again after the agent went away.
const RECONNECT: Duration = Duration::from_millis(500);

/// Forwards the agent's events to the UI for the window's whole life: a
/// subscription, and when the agent goes (quit, killed, restarted) the
/// disconnected state and a new subscription as soon as one answers, then a
/// `resync` so the UI reads the state it missed.
pub fn spawn_event_pump(app: AppHandle, shell: Arc<Shell>) {
    tauri::async_runtime::spawn(async move {
        let mut lost = false;
        loop {
            match subscribe(&shell).await {
                Ok(mut client) => {
                    tracing::info!(agent_pid = client.agent_pid, "subscribed to the agent");
                    shell.set_connected(&app, true);
                    if lost {
                        let _ = app.emit("resync", ());
                    }
                    while let Ok(event) = client.next_event().await {
                        if event.get("event").and_then(|e| e.as_str()) == Some("lagged") {
                            let _ = app.emit("resync", ());
                        } else if let Err(e) = app.emit(RUNTIME_EVENT, &event) {
                            tracing::warn!("cannot forward an event to the window: {e}");
                        }
                    }
                    tracing::warn!("the agent went away; waiting for it");
                }
                Err(e) => tracing::debug!("no agent: {e}"),
            }
            lost = true;
            shell.set_connected(&app, false);
            tokio::time::sleep(RECONNECT).await;
        }
    });
}

async fn subscribe(shell: &Shell) -> Result<Client, waddleperf_engine::control::ControlError> {
    let mut c = Client::connect(&shell.socket, "window").await?;
    c.call(Request::Subscribe).await?;
    Ok(c)
}

/// SIGTERM and SIGINT (the agent quitting) end the window.
#[cfg(unix)]
fn spawn_signal_exit(app: AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    tauri::async_runtime::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: ending the window");
        app.exit(0);
    });
}

#[cfg(not(unix))]
fn spawn_signal_exit(_app: AppHandle) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("waddleperf-desktop")
            .chain(a.iter().copied())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn launch_arguments() {
        assert_eq!(Launch::parse(args(&[])).map(|l| l.show), Ok(None));
        assert_eq!(
            Launch::parse(args(&["--show"])).map(|l| l.show),
            Ok(Some("overview".into()))
        );
        assert_eq!(
            Launch::parse(args(&["--show", "history"])).map(|l| l.show),
            Ok(Some("history".into()))
        );
        let l = Launch::parse(args(&["--show", "--db", "/tmp/x.db"]));
        assert_eq!(l.as_ref().map(|l| l.page()), Ok("overview"));
        assert_eq!(l.map(|l| l.db), Ok(Some(PathBuf::from("/tmp/x.db"))));
        assert_eq!(
            Launch::parse(args(&["--show", "charts"])).err(),
            Some("--show: `charts` is not a page (overview, history, settings)".into())
        );
        assert_eq!(
            Launch::parse(args(&["--frobnicate"])).err(),
            Some("unknown argument `--frobnicate`".into())
        );
        assert_eq!(
            Launch::parse(args(&["--config"])).err(),
            Some("--config needs a value".into())
        );
    }
}
