//! The window's state for its whole life: where the agent listens, whether
//! it answers, and calls on it.

use crate::ipc_types::{IpcError, Res};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::{AppHandle, Emitter};
use waddleperf_engine::config::Paths;
use waddleperf_engine::control::{Client, Request};

/// The window's label (and the capability's).
pub const WINDOW: &str = "main";
/// The UI listens to this event name for every runtime event.
pub const RUNTIME_EVENT: &str = "runtime";
/// Whether the agent answers: `{connected, message}`.
pub const AGENT_EVENT: &str = "agent";

pub struct Shell {
    pub paths: Paths,
    pub socket: PathBuf,
    connected: AtomicBool,
}

impl Shell {
    pub fn new(paths: Paths) -> Shell {
        let socket = waddleperf_engine::control::socket_path(&paths);
        Shell {
            paths,
            socket,
            connected: AtomicBool::new(false),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Records whether the agent answers and tells the UI when that changes.
    pub fn set_connected(&self, app: &AppHandle, on: bool) {
        if self.connected.swap(on, Ordering::Relaxed) != on {
            let message = (!on).then_some(crate::ipc_types::NO_AGENT);
            let payload = serde_json::json!({"connected": on, "message": message});
            if let Err(e) = app.emit(AGENT_EVENT, payload) {
                tracing::warn!("cannot tell the window about the agent: {e}");
            }
        }
    }

    /// One call on the agent, on a connection of its own: a long call (a
    /// run) never holds up another (a status). The answer stays the JSON
    /// text the agent wrote, for the UI as it is.
    pub async fn call(&self, req: Request) -> Res<Box<RawValue>> {
        let mut c = Client::connect(&self.socket, "window").await?;
        Ok(c.call_raw(req).await?)
    }

    pub async fn call_as<T: DeserializeOwned>(&self, req: Request) -> Res<T> {
        let raw = self.call(req).await?;
        serde_json::from_str(raw.get()).map_err(IpcError::from)
    }
}
