//! WaddlePerf Desktop: the tray app over the engine's runtime handle. The
//! GUI-free parts (the tray's state machine, the menu's actions, IPC argument
//! checks) are modules of their own and tested without a display.

pub mod app;
pub mod export;
pub mod ipc;
pub mod ipc_types;
pub mod menu;
pub mod shell;
pub mod tray;
pub mod tray_state;
pub mod window;

use std::time::Duration;

/// How long a run in progress may take to finish when the app quits.
pub const QUIT_GRACE: Duration = Duration::from_secs(5);

pub use app::{run, Launch};
