//! WaddlePerf's agent with a tray icon: one process per user and database
//! that owns the runtime, the schedule, sync, notifications, the logs, the
//! control socket and the tray icon, and links no webview. The window is a
//! process of its own (`waddleperf-desktop`), started when the person opens
//! it. The GUI-free parts (launch arguments, the tray's state machine, the
//! menu's actions) are modules of their own, tested without a display.

pub mod agent;
pub mod icons;
pub mod login_item;
pub mod menu;
pub mod tray;
pub mod tray_state;
pub mod window;

use std::time::Duration;

/// How long a run in progress may take to finish when the agent quits.
pub const QUIT_GRACE: Duration = Duration::from_secs(5);

pub use agent::run;
/// The agent's command line (`--autostart` included).
pub type Launch = waddleperf_engine::launch::DesktopArgs;
