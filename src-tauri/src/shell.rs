//! The app's state for its whole life: the runtime, the syncer, the paths,
//! the tray's state and menu items, and saving settings.

use crate::ipc_types::{ErrorKind, IpcError};
use crate::tray_state::TrayState;
use std::sync::Mutex;
use tauri::menu::{CheckMenuItem, MenuItem};
use waddleperf_engine::config::Paths;
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::settings::{self, Settings};
use waddleperf_engine::sync::Syncer;

/// The window's label (and the capability's).
pub const WINDOW: &str = "main";
/// The tray icon's id.
pub(crate) const TRAY: &str = "main";
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
    pub(crate) tray: Mutex<TrayState>,
    pub(crate) items: Mutex<Option<MenuItems>>,
}

pub(crate) struct MenuItems {
    pub(crate) status: MenuItem<tauri::Wry>,
    pub(crate) pause: MenuItem<tauri::Wry>,
    pub(crate) autostart: CheckMenuItem<tauri::Wry>,
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
            .map_err(|e| IpcError::new(ErrorKind::Io, e.to_string()))?;
        self.rt.set_config(cfg)?;
        if let Ok(mut n) = self.config_note.lock() {
            *n = None;
        }
        tracing::info!("settings saved to {}", self.paths.config_file.display());
        Ok(Settings::from_config(&self.rt.config()))
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn end_process(_code: i32) {}

#[cfg(not(unix))]
fn spawn_signal_quit(_app: AppHandle, _shell: Arc<Shell>) {}
