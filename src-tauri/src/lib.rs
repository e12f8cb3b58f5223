//! WaddlePerf's window: the web UI in a Tauri webview, started by the agent
//! (the tray) when the person opens it and ended a little while after it is
//! closed. It holds no runtime: every command is a call on the agent's
//! control socket, and the agent's events reach the UI through a
//! subscription that reconnects when the agent comes back.

pub mod agent_start;
pub mod app;
pub mod ipc;
pub mod ipc_types;
pub mod shell;
pub mod window;

pub use app::{run, Launch};
