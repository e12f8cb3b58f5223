//! The app: launch arguments, the engine's agent assembled, the Tauri
//! builder with its plugins, commands, window, tray and event pump, and a
//! clean quit on the menu, a signal or the OS ending the session.

use crate::menu::{self, MenuAction, Page};
use crate::shell::Shell;
use crate::tray::{build_tray, spawn_event_pump};
use crate::window::{open_window, TauriDesktop};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, RunEvent};
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::sync::Syncer;

/// How the app was started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    /// Open the window on this page at start (`--show [PAGE]`).
    pub show: Option<Page>,
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
                    let page = match inline
                        .clone()
                        .or_else(|| it.next_if(|n| !n.starts_with("--")))
                    {
                        Some(p) => Page::parse(&p).ok_or_else(|| {
                            format!("--show: `{p}` is not a page (overview, history, settings)")
                        })?,
                        None => Page::Overview,
                    };
                    l.show = Some(page);
                }
                "--config" => l.config = Some(value("--config")?.into()),
                "--db" => l.db = Some(value("--db")?.into()),
                "--log-dir" => l.log_dir = Some(value("--log-dir")?.into()),
                // Started by the login item: stay in the tray.
                "--autostart" => {}
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(l)
    }
}

/// Starts the app; returns when it quits.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let paths = Paths::resolve(
        launch.config.clone(),
        launch.db.clone(),
        launch.log_dir.clone(),
    );
    let (cfg, config_note) = match Config::load(&paths.config_file) {
        Ok(c) => (c, None),
        Err(e) => {
            let note = format!("{e}. The defaults are in effect until the settings are saved.");
            (Config::default(), Some(note))
        }
    };
    let log_guard =
        waddleperf_engine::logging::init_files("waddleperf-desktop", 0, &paths.log_dir, &cfg.log)?;
    let log_guard = Arc::new(Mutex::new(Some(log_guard)));
    if let Some(n) = &config_note {
        tracing::error!("configuration: {n}");
    }

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tauri::async_runtime::set(tokio_rt.handle().clone());
    // The engine spawns its tasks with tokio: the main (GUI) thread works in
    // the runtime's context too.
    let _tokio_context = tokio_rt.enter();

    let lock = waddleperf_engine::agent::AgentLock::acquire(&paths.data_dir);
    let agent_note = match &lock {
        Ok(_) => None,
        Err(e) => Some(format!(
            "{e}. That agent runs the schedule; this app shows its results and runs tests on demand."
        )),
    };
    let store = waddleperf_engine::store::Store::open(&paths.db_file)
        .map_err(|e| anyhow::anyhow!("database {}: {e}", paths.db_file.display()))?;
    let rt = Runtime::new(store, cfg);
    let syncer = Syncer::new(rt.clone(), &paths.data_dir);
    let shell = Arc::new(Shell::new(
        rt.clone(),
        syncer.clone(),
        paths.clone(),
        agent_note.clone(),
        config_note,
    ));
    tracing::info!(
        version = %waddleperf_engine::version::long_version(),
        pid = std::process::id(),
        config = %paths.config_file.display(),
        db = %paths.db_file.display(),
        agent = agent_note.is_none(),
        "desktop app started"
    );

    let tasks: Arc<Mutex<Vec<tauri::async_runtime::JoinHandle<()>>>> = Arc::default();
    let show = launch.show;
    let setup_shell = Arc::clone(&shell);
    let setup_tasks = Arc::clone(&tasks);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            let page = Launch::parse(argv)
                .ok()
                .and_then(|l| l.show)
                .unwrap_or(Page::Overview);
            open_window(app, page);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--autostart"]),
        ))
        .manage(Arc::clone(&shell))
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
        .setup(move |app| {
            let handle = app.handle().clone();
            let shell = setup_shell;
            build_tray(&handle, &shell)?;
            let mut tasks = setup_tasks.lock().map_err(|e| e.to_string())?;
            tasks.push(spawn_event_pump(handle.clone(), Arc::clone(&shell)));
            let rt = shell.rt.clone();
            let agent = shell.agent_note.is_none();
            let (device_id, syncer) = (shell.device.device_id.clone(), shell.syncer.clone());
            // As the agent, the app answers the CLI on the control socket.
            #[cfg(unix)]
            if agent {
                use waddleperf_engine::control;
                let served = control::Served {
                    rt: rt.clone(),
                    syncer: syncer.clone(),
                    paths: shell.paths.clone(),
                };
                tasks.push(tauri::async_runtime::spawn(async move {
                    let path = control::socket_path(&served.paths);
                    match control::serve(&path, served).await {
                        Ok(h) => {
                            let _ = h.await;
                        }
                        Err(e) => tracing::error!("no control socket: {e}"),
                    }
                }));
            }
            tasks.push(tauri::async_runtime::spawn(async move {
                let sink = Arc::new(waddleperf_engine::notify::DesktopSink);
                let schedule = agent.then_some((device_id, syncer));
                for (_, h) in waddleperf_engine::supervise::start_agent(&rt, sink, schedule).await {
                    let _ = h.await;
                }
            }));
            spawn_signal_quit(handle.clone(), Arc::clone(&shell));
            if let Some(page) = show {
                open_window(&handle, page);
            }
            tracing::info!("tray ready");
            Ok(())
        })
        .build(tauri::generate_context!())?;

    let exit_shell = Arc::clone(&shell);
    let exit_code = std::sync::atomic::AtomicI32::new(0);
    app.run(move |app, event| match event {
        // The last window closed: the app lives on in the tray.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::ExitRequested { code: Some(c), .. } => {
            exit_code.store(c, std::sync::atomic::Ordering::Relaxed);
            // Quit from elsewhere than the menu (the OS logging out): stop
            // the runtime first so no run is cut mid-write.
            if !exit_shell.rt.is_closing() {
                let rt = exit_shell.rt.clone();
                tauri::async_runtime::block_on(rt.shutdown(crate::QUIT_GRACE));
            }
        }
        RunEvent::Exit => {
            let rt = exit_shell.rt.clone();
            let pending: Vec<_> = tasks
                .lock()
                .map(|mut t| t.drain(..).collect())
                .unwrap_or_default();
            tauri::async_runtime::block_on(async move {
                rt.shutdown(crate::QUIT_GRACE).await;
                for t in pending {
                    let _ = tokio::time::timeout(crate::QUIT_GRACE, t).await;
                }
            });
            tracing::info!("desktop app stopped");
            let _ = app;
            if let Ok(mut g) = log_guard.lock() {
                g.take();
            }
            end_process(exit_code.load(std::sync::atomic::Ordering::Relaxed));
        }
        _ => {}
    });
    drop(lock);
    Ok(())
}

/// Ends the process once everything is saved (runtime stopped, log
/// flushed). On Linux and the BSDs the toolkit's own teardown that would come
/// next (destroying the tray's GTK objects, the accessibility bridge's exit
/// handlers) has been seen to crash the app after a clean quit, and it has
/// nothing left to save: the process ends here, and the X server and the
/// session bus drop the tray icon when its connections close. Windows and
/// macOS go on through Tauri's teardown, which removes the icon there.
#[cfg(all(unix, not(target_os = "macos")))]
#[allow(unsafe_code)]
fn end_process(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it does not return, and runs no
    // handler that could see a half-dropped Rust value.
    unsafe { libc::_exit(code) }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn end_process(_code: i32) {}

/// SIGTERM and SIGINT quit like the menu's Quit.
#[cfg(unix)]
fn spawn_signal_quit(app: AppHandle, shell: Arc<Shell>) {
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
            _ = shell.rt.closed() => return,
        };
        tracing::info!("{name}: quitting");
        menu::perform(MenuAction::Quit, &shell.rt, &TauriDesktop(app)).await;
    });
}

#[cfg(not(unix))]
fn spawn_signal_quit(_app: AppHandle, _shell: Arc<Shell>) {}

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
            Ok(Some(Page::Overview))
        );
        assert_eq!(
            Launch::parse(args(&["--show", "history"])).map(|l| l.show),
            Ok(Some(Page::History))
        );
        assert_eq!(
            Launch::parse(args(&["--show=settings", "--autostart"])).map(|l| l.show),
            Ok(Some(Page::Settings))
        );
        let l = Launch::parse(args(&["--show", "--db", "/tmp/x.db"]));
        assert_eq!(l.as_ref().map(|l| l.show), Ok(Some(Page::Overview)));
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
