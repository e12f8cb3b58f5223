//! The window (opened on a page, made once and shown again), start at login,
//! and the menu's actions carried out on the desktop.

use crate::menu::{self, Desktop, MenuAction, Page};
use crate::shell::{Shell, WINDOW};
use std::sync::Arc;
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_autostart::ManagerExt;

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
pub(crate) struct TauriDesktop(pub(crate) AppHandle);

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
