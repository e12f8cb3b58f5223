//! The tray icon and its menu on the GUI thread: built once, rendered from
//! the [`TrayState`] whenever it changes.

use crate::icons;
use crate::menu::id;
use crate::tray_state::{IconKind, TrayState};
use chrono::Utc;
use tray_icon::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// The tray icon's id (on Linux its indicator is "tray-icon tray app main").
pub const TRAY: &str = "main";

/// The icon and the items that change.
pub struct Tray {
    icon: TrayIcon,
    shown: IconKind,
    status: MenuItem,
    pause: MenuItem,
    autostart: CheckMenuItem,
}

fn platform_icon(kind: IconKind) -> Result<Icon, String> {
    let i = icons::icon(kind)?;
    Icon::from_rgba(i.pixels, i.width, i.height).map_err(|e| e.to_string())
}

pub fn pause_label(paused: bool) -> &'static str {
    if paused {
        "Resume monitoring"
    } else {
        "Pause monitoring"
    }
}

impl Tray {
    /// Builds the icon and its menu (on the thread of the event loop).
    /// `icon_dir` is where the icon's pictures are written for the panel
    /// (Linux): a folder of this agent's own.
    pub fn build(
        state: &TrayState,
        autostart: bool,
        icon_dir: &std::path::Path,
    ) -> Result<Tray, String> {
        let now = Utc::now();
        let status = MenuItem::with_id(id::STATUS, state.status_line(now), false, None);
        let run = MenuItem::with_id(id::RUN_NOW, "Run tests now", true, None);
        let speed = MenuItem::with_id(id::SPEED_TEST, "Run speed test", true, None);
        let pause = MenuItem::with_id(id::PAUSE_RESUME, pause_label(state.paused), true, None);
        let open = MenuItem::with_id(id::OPEN, "Open WaddlePerf", true, None);
        let settings = MenuItem::with_id(id::SETTINGS, "Settings…", true, None);
        let login = CheckMenuItem::with_id(id::AUTOSTART, "Start at login", true, autostart, None);
        let quit = MenuItem::with_id(id::QUIT, "Quit WaddlePerf", true, None);
        let (sep1, sep2, sep3) = (
            PredefinedMenuItem::separator(),
            PredefinedMenuItem::separator(),
            PredefinedMenuItem::separator(),
        );
        let menu = Menu::with_items(&[
            &status, &sep1, &run, &speed, &pause, &sep2, &open, &settings, &login, &sep3, &quit,
        ])
        .map_err(|e| format!("the tray menu: {e}"))?;
        let shown = state.icon();
        let icon = TrayIconBuilder::new()
            .with_id(TRAY)
            .with_icon(platform_icon(shown)?)
            .with_icon_as_template(cfg!(target_os = "macos"))
            .with_temp_dir_path(icon_dir)
            .with_tooltip(state.tooltip(now))
            .with_menu(Box::new(menu))
            // Windows opens the window on a left click and the menu on a
            // right click; macOS and Linux show the menu on any click.
            .with_menu_on_left_click(!cfg!(windows))
            .build()
            .map_err(|e| format!("the tray icon: {e}"))?;
        Ok(Tray {
            icon,
            shown,
            status,
            pause,
            autostart: login,
        })
    }

    /// Shows `state`: the icon when it changed, the tooltip, the status
    /// line, the pause item's label and the login item's check.
    pub fn render(&mut self, state: &TrayState, autostart: Option<bool>) {
        let now = Utc::now();
        let kind = state.icon();
        if kind != self.shown {
            match platform_icon(kind) {
                Ok(i) => {
                    // (`set_icon_with_as_template` does nothing off macOS.)
                    #[cfg(target_os = "macos")]
                    let r = self.icon.set_icon_with_as_template(Some(i), true);
                    #[cfg(not(target_os = "macos"))]
                    let r = self.icon.set_icon(Some(i));
                    if let Err(e) = r {
                        tracing::error!("tray icon: {e}");
                    }
                    self.shown = kind;
                }
                Err(e) => tracing::error!("tray icon: {e}"),
            }
        }
        if let Err(e) = self.icon.set_tooltip(Some(state.tooltip(now))) {
            tracing::debug!("tray tooltip: {e}");
        }
        self.status.set_text(state.status_line(now));
        self.pause.set_text(pause_label(state.paused));
        if let Some(on) = autostart {
            self.autostart.set_checked(on);
        }
    }
}
