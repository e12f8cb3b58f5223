//! Log set-up shared by the headless agent and the desktop app: daily files
//! in the platform log directory (tracing-appender, `log.retention_days` of
//! them) plus stderr.

use crate::config::LogConfig;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create the log directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write logs in {path}: {message}")]
    Files { path: PathBuf, message: String },
    #[error("cannot set up logging: {0}")]
    Init(String),
}

/// The stderr filter: `quiet` with no `-v`, info with one, debug with more;
/// `WADDLEPERF_LOG` overrides.
pub fn stderr_filter(verbose: u8, quiet: &str) -> tracing_subscriber::EnvFilter {
    let default = match verbose {
        0 => quiet,
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::EnvFilter::try_from_env("WADDLEPERF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// Logs to stderr and to daily files `<prefix>.YYYY-MM-DD.log` in `dir`. Keep
/// the returned guard alive until exit: dropping it flushes the file writer.
pub fn init_files(
    prefix: &str,
    verbose: u8,
    dir: &Path,
    cfg: &LogConfig,
) -> Result<tracing_appender::non_blocking::WorkerGuard, LogError> {
    crate::fsutil::create_private_dir(dir).map_err(|source| LogError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let files = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(cfg.retention_days.max(1) as usize)
        .build(dir)
        .map_err(|e| LogError::Files {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
    let (writer, guard) = tracing_appender::non_blocking(files);
    let file_filter = tracing_subscriber::EnvFilter::try_from_env("WADDLEPERF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.level));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(file_filter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(stderr_filter(verbose, "info")),
        )
        .try_init()
        .map_err(|e| LogError::Init(e.to_string()))?;
    Ok(guard)
}
