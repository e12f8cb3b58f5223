//! `waddleperf daemon`: the runtime headless (part of the CLI binary, not the
//! library): the schedule, AutoPerf, notifications, sync and log files, until
//! SIGINT or SIGTERM. SIGHUP reloads the configuration file.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use waddleperf_engine::agent::AgentLock;
use waddleperf_engine::config::{Config, Paths};
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::{notify, supervise, sync, version};

pub fn run(paths: &Paths, verbose: u8, grace: Duration) -> Result<()> {
    let cfg = Config::load(&paths.config_file)?;
    let _log_guard =
        waddleperf_engine::logging::init_files("waddleperf", verbose, &paths.log_dir, &cfg.log)?;
    let lock = AgentLock::acquire(&paths.data_dir)?;
    let store = waddleperf_engine::store::Store::open(&paths.db_file)
        .with_context(|| format!("database {}", paths.db_file.display()))?;
    let rt = Runtime::new(store, cfg);
    let result = crate::open::tokio_rt()?.block_on(async {
        tracing::info!(
            version = %version::long_version(),
            pid = std::process::id(),
            config = %paths.config_file.display(),
            db = %paths.db_file.display(),
            logs = %paths.log_dir.display(),
            lock = %lock.path().display(),
            "agent started"
        );
        let syncer = sync::Syncer::new(rt.clone(), &paths.data_dir);
        // The control socket: the CLI and the window ask this agent.
        use waddleperf_engine::control;
        let served = control::Served::new(rt.clone(), syncer.clone(), paths.clone());
        let device_id = served.device().device_id.clone();
        #[cfg(any(unix, windows))]
        let control = control::serve(&control::socket_path(paths), served)
            .await
            .context("cannot open the agent's control socket")?;
        let tasks = supervise::start_agent(
            &rt,
            Arc::new(notify::DesktopSink),
            Some((device_id, syncer)),
            paths.data_dir.join("updates"),
        )
        .await;
        let stop = signals(&rt, paths).await;
        tracing::info!("{stop}: stopping (a run in progress gets {grace:?} to finish)");
        rt.shutdown(grace).await;
        for (name, task) in tasks {
            if let Err(e) = task.await {
                tracing::error!("{name} task failed: {e}");
            }
        }
        #[cfg(any(unix, windows))]
        let _ = control.await;
        tracing::info!("agent stopped");
        Ok::<(), anyhow::Error>(())
    });
    drop(lock);
    result
}

/// Waits for a stop signal, reloading the configuration on each SIGHUP;
/// returns the signal's name.
#[cfg(unix)]
async fn signals(rt: &Runtime, paths: &Paths) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return "no signal";
    };
    loop {
        tokio::select! {
            _ = term.recv() => return "SIGTERM",
            _ = int.recv() => return "SIGINT",
            _ = hup.recv() => reload(rt, paths),
        }
    }
}

#[cfg(not(unix))]
async fn signals(_rt: &Runtime, _paths: &Paths) -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(e) => {
            tracing::error!("cannot wait for Ctrl-C: {e}");
            std::future::pending::<()>().await;
            "no signal"
        }
    }
}

/// Loads the configuration file again; a bad file is reported and the
/// configuration in effect is kept.
#[cfg_attr(not(unix), allow(dead_code))]
fn reload(rt: &Runtime, paths: &Paths) {
    match Config::load(&paths.config_file).map(|c| rt.set_config(c)) {
        Ok(Ok(())) => tracing::info!(
            "configuration reloaded from {}",
            paths.config_file.display()
        ),
        Ok(Err(e)) => tracing::error!("configuration not reloaded: {e}"),
        Err(e) => tracing::error!("configuration not reloaded, keeping the one in effect: {e}"),
    }
}
