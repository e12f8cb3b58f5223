//! The agent's assembly: the runtime over the database, the schedule, sync
//! and notifications (the engine's agent tasks), the control socket with
//! this desktop's window and login item, and the tray on the platform's
//! event loop; a second launch hands over to the running agent.

use crate::login_item::LoginItem;
use crate::menu::{self, MenuAction, Page};
use crate::tray::Tray;
use crate::tray_state::TrayState;
use crate::window::{window_bin, WindowProcess};
use crate::Launch;
use crate::QUIT_GRACE;
use anyhow::Context;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tokio::sync::broadcast::error::RecvError;
use tray_icon::menu::MenuEvent;
use waddleperf_engine::agent::AgentLock;
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::control::{self, Client, ControlError, Request};
use waddleperf_engine::runtime::{Event as RtEvent, Runtime};
use waddleperf_engine::sync::Syncer;

/// What reaches the GUI thread.
#[derive(Debug)]
pub enum UserEvent {
    /// A menu item was chosen (its id).
    Menu(String),
    /// The tray state changed: show it.
    Render,
    /// The runtime has stopped: end the process.
    Quit,
}

/// The desktop side of the agent: the window process, the login item, and
/// the way to the GUI thread.
pub struct TrayDesktop {
    pub window: WindowProcess,
    pub login: LoginItem,
    proxy: Mutex<EventLoopProxy<UserEvent>>,
}

impl TrayDesktop {
    fn send(&self, e: UserEvent) {
        if let Ok(p) = self.proxy.lock() {
            let _ = p.send_event(e);
        }
    }
}

impl menu::Desktop for TrayDesktop {
    fn open(&self, page: Page) {
        if let Err(e) = self.window.open(page.as_str()) {
            self.report(&e);
        }
    }
    fn autostart_enabled(&self) -> Result<bool, String> {
        self.login.enabled()
    }
    fn set_autostart(&self, on: bool) -> Result<(), String> {
        let r = self.login.set(on);
        // The menu's check follows, whichever side made the change.
        self.send(UserEvent::Render);
        r
    }
    fn quit(&self) {
        tracing::info!("quitting");
        self.send(UserEvent::Quit);
    }
    fn report(&self, message: &str) {
        tracing::error!("{message}");
        let m = message.to_owned();
        std::thread::spawn(move || {
            let _ = waddleperf_engine::notify::Sink::show(
                &waddleperf_engine::notify::DesktopSink,
                "WaddlePerf",
                &m,
            );
        });
    }
}

impl control::Desktop for TrayDesktop {
    fn open(&self, page: &str) -> Result<(), String> {
        self.window.open(page)
    }
    fn autostart(&self) -> Result<bool, String> {
        self.login.enabled()
    }
    fn set_autostart(&self, on: bool) -> Result<(), String> {
        menu::Desktop::set_autostart(self, on)
    }
}

/// Without a display there is no tray: say what to run instead rather
/// than let the toolkit abort.
#[cfg(all(unix, not(target_os = "macos")))]
fn check_display() -> anyhow::Result<()> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("DISPLAY") || set("WAYLAND_DISPLAY") {
        return Ok(());
    }
    anyhow::bail!(
        "no display (neither DISPLAY nor WAYLAND_DISPLAY is set): the tray needs a desktop \
         session; on a machine without one run `waddleperf daemon`"
    )
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn check_display() -> anyhow::Result<()> {
    Ok(())
}

/// Starts the agent; returns only on an error at start (a quit ends the
/// process).
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let paths = launch.paths();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let socket = control::socket_path(&paths);
    // An agent of this database answers already: hand over to it.
    if let Ok(client) = tokio_rt.block_on(Client::connect(&socket, "tray")) {
        return tokio_rt.block_on(hand_over(client, &launch));
    }
    check_display()?;
    let (cfg, config_note) = match Config::load(&paths.config_file) {
        Ok(c) => (c, None),
        Err(e) => {
            let note = format!("{e}. The defaults are in effect until the settings are saved.");
            (Config::default(), Some(note))
        }
    };
    let log_guard =
        waddleperf_engine::logging::init_files("waddleperf-tray", 0, &paths.log_dir, &cfg.log)?;
    if let Some(n) = &config_note {
        tracing::error!("configuration: {n}");
    }
    let lock = AgentLock::acquire(&paths.data_dir)
        .context("its control socket does not answer (it may be starting, or an older version)")?;
    let store = waddleperf_engine::store::Store::open(&paths.db_file)
        .with_context(|| format!("database {}", paths.db_file.display()))?;
    let rt = Runtime::new(store, cfg);
    let _tokio_context = tokio_rt.enter();
    let syncer = Syncer::new(rt.clone(), &paths.data_dir);

    let event_loop = EventLoopBuilder::<UserEvent>::with_user_event().build();
    #[cfg(target_os = "macos")]
    let event_loop = {
        // A menu-bar agent: no Dock icon, no app menu.
        use tao::platform::macos::{ActivationPolicy, EventLoopExtMacOS};
        let mut l = event_loop;
        l.set_activation_policy(ActivationPolicy::Accessory);
        l
    };
    let proxy = event_loop.create_proxy();
    {
        let p = Mutex::new(proxy.clone());
        MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
            if let Ok(p) = p.lock() {
                let _ = p.send_event(UserEvent::Menu(e.id.0));
            }
        }));
    }
    #[cfg(windows)]
    {
        // A left click opens the window on Windows.
        use tray_icon::{MouseButton, MouseButtonState, TrayIconEvent};
        let p = Mutex::new(proxy.clone());
        TrayIconEvent::set_event_handler(Some(move |e: TrayIconEvent| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = e
            {
                if let Ok(p) = p.lock() {
                    let _ = p.send_event(UserEvent::Menu("open_overview".into()));
                }
            }
        }));
    }
    let desktop = Arc::new(TrayDesktop {
        window: WindowProcess::new(window_bin(), launch.path_args(), tokio_rt.handle().clone()),
        login: LoginItem::new(),
        proxy: Mutex::new(proxy.clone()),
    });
    tracing::info!(
        version = %waddleperf_engine::version::long_version(),
        pid = std::process::id(),
        config = %paths.config_file.display(),
        db = %paths.db_file.display(),
        socket = %socket.display(),
        "tray agent started"
    );

    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let served = control::Served::new(rt.clone(), syncer.clone(), paths.clone())
        .with_config_note(config_note)
        .with_desktop(Arc::clone(&desktop) as Arc<dyn control::Desktop>);
    let device_id = served.device().device_id.clone();
    match tokio_rt.block_on(control::serve(&socket, served)) {
        Ok(h) => tasks.push(h),
        Err(e) => tracing::error!(
            "no control socket: the window and the CLI cannot reach this agent: {e}"
        ),
    }
    let sink = Arc::new(waddleperf_engine::notify::DesktopSink);
    let schedule = Some((device_id, syncer));
    let updates = paths.data_dir.join("updates");
    for (_, h) in tokio_rt.block_on(waddleperf_engine::supervise::start_agent(
        &rt, sink, schedule, updates,
    )) {
        tasks.push(h);
    }
    let state = Arc::new(Mutex::new(TrayState::new()));
    tasks.push(tokio_rt.spawn(pump(rt.clone(), Arc::clone(&state), proxy)));
    spawn_signal_quit(&tokio_rt, rt.clone(), Arc::clone(&desktop));
    if let Some(page) = launch.show.as_deref().and_then(Page::parse) {
        menu::Desktop::open(&*desktop, page);
    }

    // The icon's pictures for the panel: in a folder of this agent (the
    // shared temporary folder could be another user's).
    let icon_dir = icon_dir(&paths, &socket);
    let mut tray: Option<Tray> = None;
    let mut ending = Some((lock, log_guard, tasks));
    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            Event::NewEvents(StartCause::Init) => {
                let st = state.lock().map(|s| s.clone()).unwrap_or_default();
                match Tray::build(&st, desktop.login.enabled().unwrap_or(false), &icon_dir) {
                    Ok(t) => {
                        tray = Some(t);
                        tracing::info!("tray ready");
                    }
                    Err(e) => tracing::error!("{e}"),
                }
            }
            Event::UserEvent(UserEvent::Render) => {
                if let (Some(t), Ok(st)) = (tray.as_mut(), state.lock().map(|s| s.clone())) {
                    t.render(&st, desktop.login.enabled().ok());
                }
            }
            Event::UserEvent(UserEvent::Menu(id)) => {
                let action = if id == "open_overview" {
                    Some(MenuAction::Open(Page::Overview))
                } else {
                    MenuAction::from_id(&id)
                };
                match action {
                    // Quick and GUI-bound: here.
                    Some(MenuAction::Open(page)) => menu::Desktop::open(&*desktop, page),
                    // Runs, pausing, the login item and quitting wait on the
                    // runtime or the OS: off the GUI thread.
                    Some(action) => {
                        let (rt, d) = (rt.clone(), Arc::clone(&desktop));
                        tokio_rt.spawn(async move { menu::perform(action, &rt, &*d).await });
                    }
                    None => {}
                }
            }
            Event::UserEvent(UserEvent::Quit) => {
                if let Some((lock, log_guard, tasks)) = ending.take() {
                    tray = None;
                    let (rt, d) = (rt.clone(), Arc::clone(&desktop));
                    tokio_rt.block_on(async move {
                        rt.shutdown(QUIT_GRACE).await;
                        d.window.close(Duration::from_secs(3)).await;
                        for t in tasks {
                            let _ = tokio::time::timeout(QUIT_GRACE, t).await;
                        }
                    });
                    tracing::info!("tray agent stopped");
                    drop(log_guard);
                    drop(lock);
                    end_process();
                }
                *control_flow = ControlFlow::Exit;
            }
            _ => {}
        }
    })
}

/// Where the tray's icon pictures go: beside the control socket (the
/// user's runtime directory) when it is in one, else the data folder.
fn icon_dir(paths: &Paths, socket: &std::path::Path) -> std::path::PathBuf {
    let stem = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "waddleperf".into());
    let dir = match socket.parent() {
        Some(p) if p != paths.data_dir && !cfg!(windows) => p.join(format!("{stem}-icons")),
        _ => paths.data_dir.join("tray-icons"),
    };
    if let Err(e) = waddleperf_engine::fsutil::create_private_dir(&dir) {
        tracing::warn!("cannot create {}: {e}", dir.display());
    }
    dir
}

/// Another agent runs for this database: ask it to open the window (unless
/// this was the login item), or open one on it when it has no desktop.
async fn hand_over(mut client: Client, launch: &Launch) -> anyhow::Result<()> {
    let pid = client.agent_pid;
    if launch.autostart && launch.show.is_none() {
        eprintln!("WaddlePerf already runs (agent pid {pid})");
        return Ok(());
    }
    let page = launch.page();
    let req = Request::Open {
        page: page.to_owned(),
    };
    match client.call(req).await {
        Ok(_) => Ok(()),
        Err(ControlError::Agent(w)) if w.kind == "unsupported" => {
            // The headless daemon: the window works against it too.
            std::process::Command::new(window_bin())
                .arg("--show")
                .arg(page)
                .args(launch.path_args())
                .spawn()
                .map(|_| ())
                .context("the window could not be started")
        }
        Err(e) => Err(anyhow::anyhow!(
            "the running agent (pid {pid}) did not open the window: {e}"
        )),
    }
}

/// Keeps the tray state current: every runtime event, the stored state
/// after each run (and after missed events), and a render each minute so
/// "Last run 5 min ago" ages.
async fn pump(rt: Runtime, state: Arc<Mutex<TrayState>>, proxy: EventLoopProxy<UserEvent>) {
    let mut rx = rt.subscribe();
    resync(&rt, &state).await;
    let _ = proxy.send_event(UserEvent::Render);
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    let changed = state.lock().map(|mut s| s.apply(&ev)).unwrap_or(false);
                    // A run's end, and a network renamed: read the stored state again.
                    let reread = matches!(ev, RtEvent::RunFinished { .. } | RtEvent::NetworksChanged);
                    if reread {
                        resync(&rt, &state).await;
                    }
                    if changed || reread {
                        let _ = proxy.send_event(UserEvent::Render);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("the tray missed {n} events; reading the state again");
                    resync(&rt, &state).await;
                    let _ = proxy.send_event(UserEvent::Render);
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let _ = proxy.send_event(UserEvent::Render);
            }
            _ = rt.closed() => return,
        }
    }
}

/// Rebuilds the tray state from the store (start, a run's end, missed
/// events).
async fn resync(rt: &Runtime, state: &Mutex<TrayState>) {
    match rt.status().await {
        Ok(status) => {
            if let Ok(mut s) = state.lock() {
                let running = s.running;
                *s = TrayState::from_status(&status);
                s.running = running.filter(|_| status.running);
            }
        }
        Err(e) => tracing::warn!("cannot read the status for the tray: {e}"),
    }
}

/// Ends the process once everything is saved (runtime stopped, window
/// ended, log flushed, lock released). On Linux and the BSDs the toolkit's
/// teardown that would come next has been seen to crash after a clean quit,
/// with nothing left to save; the X server and the session bus drop the
/// icon when its connections close.
#[cfg(all(unix, not(target_os = "macos")))]
#[allow(unsafe_code)]
fn end_process() {
    // SAFETY: `_exit` has no preconditions; it does not return, and runs no
    // handler that could see a half-dropped Rust value.
    unsafe { libc::_exit(0) }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn end_process() {}

/// SIGTERM and SIGINT quit like the menu's Quit.
#[cfg(unix)]
fn spawn_signal_quit(tokio_rt: &tokio::runtime::Runtime, rt: Runtime, d: Arc<TrayDesktop>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio_rt.spawn(async move {
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
            _ = rt.closed() => return,
        };
        tracing::info!("{name}: quitting");
        menu::perform(MenuAction::Quit, &rt, &*d).await;
    });
}

#[cfg(not(unix))]
fn spawn_signal_quit(tokio_rt: &tokio::runtime::Runtime, rt: Runtime, d: Arc<TrayDesktop>) {
    tokio_rt.spawn(async move {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = rt.closed() => return,
        }
        menu::perform(MenuAction::Quit, &rt, &*d).await;
    });
}
