//! A window the person started themselves (the macOS app, the AppImage, the
//! Start menu, `waddleperf-desktop` from a shell) while no agent runs: the
//! agent takes its place and opens the window, so WaddlePerf runs as it
//! does when started from its own entry. Without the agent a window could
//! only say that it is missing.
//!
//! On Unix the agent replaces this process (`exec`): an AppImage's mount
//! lives as long as the process its runtime started, and the agent, which
//! later starts windows from the same folder, must keep it.

use crate::app::Launch;
use std::path::{Path, PathBuf};
use waddleperf_engine::control::{Client, ControlError};

/// The agent's executable: `WADDLEPERF_AGENT_BIN`, else `waddleperf-tray`
/// in this program's folder.
pub fn agent_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WADDLEPERF_AGENT_BIN") {
        return Some(p.into());
    }
    let name = format!("waddleperf-tray{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name))
}

/// Whether an agent answers on `socket` (one that answers in another
/// protocol version counts: the window then shows what is wrong).
pub async fn agent_answers(socket: &Path) -> bool {
    !matches!(
        Client::connect(socket, "window").await,
        Err(ControlError::NotRunning(_) | ControlError::Io(_) | ControlError::Gone)
    )
}

/// When no agent answers and the agent's executable is there, starts it
/// with this launch's page (or as the login item's start) and files. Returns `Ok(false)` when this process
/// goes on as the window; on Windows `Ok(true)` once the agent is started
/// (this process then ends); on Unix it does not return unless the start
/// failed.
pub fn hand_over(
    launch: &Launch,
    socket: &Path,
    rt: &tokio::runtime::Runtime,
) -> std::io::Result<bool> {
    if rt.block_on(agent_answers(socket)) {
        // A login item's start (an AppImage's points at the AppImage, so
        // it arrives here) has nothing to show when the agent runs.
        return Ok(launch.autostart);
    }
    let Some(bin) = agent_bin().filter(|b| b.is_file()) else {
        tracing::warn!(
            "no agent runs and none is installed beside the window: the window shows that"
        );
        return Ok(launch.autostart);
    };
    let mut cmd = std::process::Command::new(&bin);
    if launch.autostart {
        cmd.arg("--autostart");
    } else {
        cmd.arg("--show").arg(launch.page());
    }
    cmd.args(launch.path_args());
    tracing::info!(agent = %bin.display(), "no agent runs: starting it in the window's place");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        Err(std::io::Error::new(
            err.kind(),
            format!("starting the agent {}: {err}", bin.display()),
        ))
    }
    #[cfg(not(unix))]
    {
        cmd.stdin(std::process::Stdio::null())
            .spawn()
            .map(|_| true)
            .map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("starting the agent {}: {err}", bin.display()),
                )
            })
    }
}
