//! The window process: launch arguments, the Tauri builder with its
//! commands, the subscription to the agent's events, and the end of the
//! process a grace period after the window is closed, or on a signal.

use crate::shell::{Shell, RUNTIME_EVENT, WINDOW};
use crate::window::{closed, open_window, Lifecycle};
use std::sync::Arc;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager, RunEvent, WindowEvent};
use waddleperf_engine::config::Config;
use waddleperf_engine::control::{Client, Request};

/// The window's command line (no `--autostart`: the login item is the
/// agent's).
pub type Launch = waddleperf_engine::launch::DesktopArgs;

/// Starts the window; returns when it ends.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let paths = launch.paths();
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
    if crate::agent_start::hand_over(&launch, &shell.socket, &tokio_rt)? {
        return Ok(());
    }
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
            let launch = Launch::parse(argv, true).unwrap_or_default();
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
            crate::ipc::networks,
            crate::ipc::diagnose,
            crate::ipc::network_label,
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
