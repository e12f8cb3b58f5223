//! The desktop shell: the runtime's owner in the app, the tray, the window,
//! forwarding runtime events to the UI, and a clean quit.

use crate::ipc::{ExportFormat, IpcError};
use crate::menu::{self, Desktop, MenuAction, Page};
use crate::tray_state::{IconKind, TrayState};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_autostart::ManagerExt;
use tokio::sync::broadcast::error::RecvError;
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::runtime::{Event, Runtime};
use waddleperf_engine::settings::{self, Settings};
use waddleperf_engine::sync::Syncer;

/// The window's label (and the capability's).
pub const WINDOW: &str = "main";
/// The tray icon's id.
const TRAY: &str = "main";
/// The UI listens to this event name for every runtime event.
pub const RUNTIME_EVENT: &str = "runtime";

/// What the app holds for its whole life.
pub struct Shell {
    pub rt: Runtime,
    pub syncer: Syncer,
    pub paths: Paths,
    /// This machine's identity, read once at start.
    pub device: waddleperf_engine::device::DeviceInfo,
    pub agent_note: Option<String>,
    config_note: Mutex<Option<String>>,
    tray: Mutex<TrayState>,
    items: Mutex<Option<MenuItems>>,
}

struct MenuItems {
    status: MenuItem<tauri::Wry>,
    pause: MenuItem<tauri::Wry>,
    autostart: CheckMenuItem<tauri::Wry>,
}

impl Shell {
    pub fn new(
        rt: Runtime,
        syncer: Syncer,
        paths: Paths,
        agent_note: Option<String>,
        config_note: Option<String>,
    ) -> Shell {
        Shell {
            rt,
            syncer,
            paths,
            device: waddleperf_engine::device::DeviceInfo::detect(),
            agent_note,
            config_note: Mutex::new(config_note),
            tray: Mutex::new(TrayState::new()),
            items: Mutex::new(None),
        }
    }

    pub fn config_note(&self) -> Option<String> {
        self.config_note.lock().ok().and_then(|n| n.clone())
    }

    /// Validates, writes the file, applies: the settings page's Save.
    pub fn save_settings(&self, s: &Settings) -> Result<Settings, IpcError> {
        let origin = self.paths.config_file.display().to_string();
        let cfg = s.apply(&self.rt.config(), &origin)?;
        settings::save_config(&self.paths.config_file, &cfg)
            .map_err(|e| IpcError::new(crate::ipc::ErrorKind::Io, e.to_string()))?;
        self.rt.set_config(cfg)?;
        if let Ok(mut n) = self.config_note.lock() {
            *n = None;
        }
        tracing::info!("settings saved to {}", self.paths.config_file.display());
        Ok(Settings::from_config(&self.rt.config()))
    }
}

/// The Downloads folder: the one the desktop names (XDG user dirs, the
/// platform's known folder), else `~/Downloads`.
pub fn export_dir() -> PathBuf {
    match directories::UserDirs::new() {
        Some(u) => u
            .download_dir()
            .map(Path::to_owned)
            .unwrap_or_else(|| u.home_dir().join("Downloads")),
        None => std::env::temp_dir(),
    }
}

/// `waddleperf-YYYYMMDD-HHMMSS.csv` in `dir`, with `-2`, `-3`… when taken.
pub fn export_file(
    dir: &Path,
    format: ExportFormat,
    now: DateTime<Utc>,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ext = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
    };
    let stem = format!("waddleperf-{}", now.format("%Y%m%d-%H%M%S"));
    let mut path = dir.join(format!("{stem}.{ext}"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.{ext}"));
        n += 1;
    }
    Ok(path)
}

/// Writes the export through a temporary file, so a full disk leaves no
/// half file under the final name.
pub fn write_export(
    path: &Path,
    format: ExportFormat,
    rows: &[waddleperf_engine::Measurement],
) -> Result<(), String> {
    let tmp = path.with_extension("part");
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        match format {
            ExportFormat::Csv => waddleperf_engine::export::write_csv(&mut w, rows)?,
            ExportFormat::Json => waddleperf_engine::export::write_json_lines(&mut w, rows)?,
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

pub fn autostart_enabled(app: &AppHandle) -> Result<bool, String> {
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

pub fn set_autostart(app: &AppHandle, on: bool) -> Result<(), String> {
    let r = if on {
        app.autolaunch().enable()
    } else {
        app.autolaunch().disable()
    };
    r.map_err(|e| e.to_string())?;
    // The tray's check item follows, whichever side made the change.
    let shell = app.try_state::<Arc<Shell>>();
    let item = shell
        .as_ref()
        .and_then(|s| s.items.lock().ok()?.as_ref().map(|i| i.autostart.clone()));
    if let Some(item) = item {
        let _ = item.set_checked(on);
    }
    Ok(())
}

/// Shows the window on `page`, creating it if it is closed.
pub fn open_window(app: &AppHandle, page: Page) {
    if let Some(w) = app.get_webview_window(WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        let _ = w.emit("navigate", page.as_str());
        return;
    }
    let start = format!("window.__WADDLEPERF_PAGE__ = {:?};", page.as_str());
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("WaddlePerf")
        .inner_size(1120.0, 780.0)
        .min_inner_size(640.0, 480.0)
        .initialization_script(&start)
        .build();
    match built {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => tracing::error!("cannot open the window: {e}"),
    }
}

/// The desktop side of the menu actions.
struct TauriDesktop(AppHandle);

impl Desktop for TauriDesktop {
    fn open(&self, page: Page) {
        open_window(&self.0, page);
    }
    fn autostart_enabled(&self) -> Result<bool, String> {
        autostart_enabled(&self.0)
    }
    fn set_autostart(&self, on: bool) -> Result<(), String> {
        set_autostart(&self.0, on)
    }
    fn quit(&self) {
        tracing::info!("quitting");
        self.0.exit(0);
    }
    fn report(&self, message: &str) {
        tracing::error!("{message}");
        let _ = self.0.emit("app-error", message);
        let note = waddleperf_engine::notify::DesktopSink;
        let m = message.to_owned();
        std::thread::spawn(move || {
            let _ = waddleperf_engine::notify::Sink::show(&note, "WaddlePerf", &m);
        });
    }
}

/// Runs a menu action off the GUI thread.
pub fn dispatch(app: &AppHandle, action: MenuAction) {
    let Some(shell) = app.try_state::<Arc<Shell>>().map(|s| Arc::clone(&s)) else {
        return;
    };
    let desktop = TauriDesktop(app.clone());
    match action {
        // GUI-bound and quick: at once, on this (the GUI) thread.
        MenuAction::Open(page) => desktop.open(page),
        // Runs, pausing, login items and quitting wait on the runtime or
        // the OS: off the GUI thread.
        _ => {
            tauri::async_runtime::spawn(async move {
                menu::perform(action, &shell.rt, &desktop).await;
            });
        }
    }
}

fn icon_bytes(kind: IconKind) -> &'static [u8] {
    #[cfg(target_os = "macos")]
    {
        match kind {
            IconKind::Ok => include_bytes!("../../icons/tray/ok-template@2x.png"),
            IconKind::Degraded => include_bytes!("../../icons/tray/degraded-template@2x.png"),
            IconKind::Down => include_bytes!("../../icons/tray/down-template@2x.png"),
            IconKind::Running => include_bytes!("../../icons/tray/running-template@2x.png"),
            IconKind::Paused => include_bytes!("../../icons/tray/paused-template@2x.png"),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        match kind {
            IconKind::Ok => include_bytes!("../../icons/tray/ok@2x.png"),
            IconKind::Degraded => include_bytes!("../../icons/tray/degraded@2x.png"),
            IconKind::Down => include_bytes!("../../icons/tray/down@2x.png"),
            IconKind::Running => include_bytes!("../../icons/tray/running@2x.png"),
            IconKind::Paused => include_bytes!("../../icons/tray/paused@2x.png"),
        }
    }
}

fn tray_image(kind: IconKind) -> tauri::Result<Image<'static>> {
    Image::from_bytes(icon_bytes(kind))
}

/// Builds the tray icon and its menu.
pub fn build_tray(app: &AppHandle, shell: &Shell) -> tauri::Result<TrayIcon> {
    let state = shell.tray.lock().map(|s| s.clone()).unwrap_or_default();
    let now = Utc::now();
    let status = MenuItem::with_id(
        app,
        menu::id::STATUS,
        state.status_line(now),
        false,
        None::<&str>,
    )?;
    let run = MenuItem::with_id(app, menu::id::RUN_NOW, "Run tests now", true, None::<&str>)?;
    let pause = MenuItem::with_id(
        app,
        menu::id::PAUSE_RESUME,
        pause_label(state.paused),
        true,
        None::<&str>,
    )?;
    let open = MenuItem::with_id(app, menu::id::OPEN, "Open WaddlePerf", true, None::<&str>)?;
    let settings = MenuItem::with_id(app, menu::id::SETTINGS, "Settings…", true, None::<&str>)?;
    let autostart = CheckMenuItem::with_id(
        app,
        menu::id::AUTOSTART,
        "Start at login",
        true,
        autostart_enabled(app).unwrap_or(false),
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, menu::id::QUIT, "Quit WaddlePerf", true, None::<&str>)?;
    let sep1 = PredefinedMenuItem::separator(app)?;
    let sep2 = PredefinedMenuItem::separator(app)?;
    let sep3 = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(
        app,
        &[
            &status, &sep1, &run, &pause, &sep2, &open, &settings, &autostart, &sep3, &quit,
        ],
    )?;
    if let Ok(mut items) = shell.items.lock() {
        *items = Some(MenuItems {
            status,
            pause,
            autostart,
        });
    }
    let tray = TrayIconBuilder::with_id(TRAY)
        .icon(tray_image(state.icon())?)
        .icon_as_template(cfg!(target_os = "macos"))
        .tooltip(state.tooltip(now))
        .menu(&menu)
        // Windows opens the window on a left click and the menu on a right
        // click; macOS and Linux (AppIndicator) show the menu on any click.
        .show_menu_on_left_click(!cfg!(windows))
        .on_menu_event(|app, ev| {
            if let Some(action) = MenuAction::from_id(ev.id().as_ref()) {
                dispatch(app, action);
            }
        })
        .on_tray_icon_event(|tray, ev| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = ev
            {
                if cfg!(windows) {
                    open_window(tray.app_handle(), Page::Overview);
                }
            }
        })
        .build(app)?;
    Ok(tray)
}

fn pause_label(paused: bool) -> &'static str {
    if paused {
        "Resume monitoring"
    } else {
        "Pause monitoring"
    }
}

/// Renders the tray state: icon, tooltip, status line, pause label.
fn render_tray(app: &AppHandle, shell: &Shell, icon_changed: bool) {
    let Ok(state) = shell.tray.lock().map(|s| s.clone()) else {
        return;
    };
    let now = Utc::now();
    if let Some(tray) = app.tray_by_id(TRAY) {
        if icon_changed {
            match tray_image(state.icon()) {
                Ok(img) => {
                    let _ = tray.set_icon(Some(img));
                    let _ = tray.set_icon_as_template(cfg!(target_os = "macos"));
                }
                Err(e) => tracing::error!("tray icon: {e}"),
            }
        }
        let _ = tray.set_tooltip(Some(state.tooltip(now)));
    }
    if let Ok(items) = shell.items.lock() {
        if let Some(items) = items.as_ref() {
            let _ = items.status.set_text(state.status_line(now));
            let _ = items.pause.set_text(pause_label(state.paused));
        }
    }
}

/// Forwards runtime events to the UI and the tray until the runtime closes.
pub fn spawn_event_pump(app: AppHandle, shell: Arc<Shell>) -> tauri::async_runtime::JoinHandle<()> {
    tauri::async_runtime::spawn(async move {
        let mut rx = shell.rt.subscribe();
        // The state as stored, before the first event.
        resync(&app, &shell).await;
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = shell.rt.closed() => break,
            };
            match ev {
                Ok(ev) => {
                    if let Err(e) = app.emit(RUNTIME_EVENT, &ev) {
                        tracing::warn!("cannot forward an event to the window: {e}");
                    }
                    let changed = shell.tray.lock().ok().map(|mut s| {
                        let before = s.icon();
                        let changed = s.apply(&ev);
                        (changed, before != s.icon())
                    });
                    if let Some((true, icon_changed)) = changed {
                        let (app2, shell2) = (app.clone(), Arc::clone(&shell));
                        let _ = app
                            .run_on_main_thread(move || render_tray(&app2, &shell2, icon_changed));
                    }
                    if matches!(ev, Event::RunFinished { .. }) {
                        // Health per target and counts, as stored.
                        resync(&app, &shell).await;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("the shell missed {n} events; reading the state again");
                    let _ = app.emit("resync", ());
                    resync(&app, &shell).await;
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

/// Rebuilds the tray state from the store (start-up, missed events).
async fn resync(app: &AppHandle, shell: &Arc<Shell>) {
    match shell.rt.status().await {
        Ok(status) => {
            let icon_changed = shell.tray.lock().ok().map(|mut s| {
                let before = s.icon();
                let running = s.running;
                *s = TrayState::from_status(&status);
                s.running = running.filter(|_| status.running);
                before != s.icon()
            });
            let (app2, shell2) = (app.clone(), Arc::clone(shell));
            let icon_changed = icon_changed.unwrap_or(true);
            let _ = app.run_on_main_thread(move || render_tray(&app2, &shell2, icon_changed));
        }
        Err(e) => tracing::warn!("cannot read the status for the tray: {e}"),
    }
}

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

    #[test]
    fn export_files_are_not_overwritten() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let now = Utc::now();
        let a = export_file(dir.path(), ExportFormat::Csv, now)?;
        write_export(&a, ExportFormat::Csv, &[])?;
        let b = export_file(dir.path(), ExportFormat::Csv, now)?;
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2.csv"));
        let text = std::fs::read_to_string(&a)?;
        assert!(text.starts_with("id,started_at,test_type,target"), "{text}");
        Ok(())
    }
}
