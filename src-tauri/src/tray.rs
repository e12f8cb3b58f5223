//! The tray icon and its menu, and the pump that carries runtime events to
//! the tray and the web UI.

use crate::menu::{self, MenuAction, Page};
use crate::shell::{MenuItems, Shell, RUNTIME_EVENT, TRAY};
use crate::tray_state::{IconKind, TrayState};
use crate::window::{autostart_enabled, dispatch, open_window};
use chrono::Utc;
use std::sync::Arc;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter};
use tokio::sync::broadcast::error::RecvError;
use waddleperf_engine::runtime::Event;

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
    let speed = MenuItem::with_id(
        app,
        menu::id::SPEED_TEST,
        "Run speed test",
        true,
        None::<&str>,
    )?;
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
            &status, &sep1, &run, &speed, &pause, &sep2, &open, &settings, &autostart, &sep3, &quit,
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
