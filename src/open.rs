//! Opening what a command works on: the configuration, the store, a
//! runtime over them, and the tokio runtime the async calls run on.

use anyhow::{Context, Result};
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::store::Store;

pub(crate) fn tokio_rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn load_config(paths: &Paths) -> Result<Config> {
    Ok(Config::load(&paths.config_file)?)
}

pub(crate) fn open_store(paths: &Paths) -> Result<Store> {
    Store::open(&paths.db_file).with_context(|| format!("database {}", paths.db_file.display()))
}

/// Reading commands do not create a database where there is none: on a
/// fresh install they read an empty history (nothing is wrong, exit 0).
pub(crate) fn open_existing_store(paths: &Paths) -> Result<Store> {
    if !paths.db_file.exists() {
        return Ok(Store::open_in_memory()?);
    }
    open_store(paths)
}

pub(crate) fn open_runtime(paths: &Paths, cfg: Config) -> Result<Runtime> {
    Ok(Runtime::new(open_store(paths)?, cfg))
}

/// The running agent of this database, through its control socket; `None`
/// when none answers (no agent, or an agent of another version: the CLI
/// then reads the shared database itself).
#[cfg(any(unix, windows))]
pub(crate) async fn agent(paths: &Paths) -> Option<waddleperf_engine::control::Client> {
    use waddleperf_engine::control::{self, ControlError};
    let path = control::socket_path(paths);
    match control::Client::connect(&path, "cli").await {
        Ok(c) => Some(c),
        Err(ControlError::NotRunning(_)) => None,
        Err(e) => {
            tracing::warn!(
                "the agent's control socket {} did not answer: {e}",
                path.display()
            );
            None
        }
    }
}
