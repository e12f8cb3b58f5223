//! Where the app keeps its files on each platform.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The platform directories the app uses.
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub db_file: PathBuf,
    /// Where the daemon and the desktop app write their daily log files.
    pub log_dir: PathBuf,
}

impl Paths {
    /// Platform defaults (XDG on Linux, Application Support on macOS,
    /// %APPDATA% on Windows), with explicit overrides taking precedence.
    pub fn resolve(config: Option<PathBuf>, db: Option<PathBuf>, logs: Option<PathBuf>) -> Paths {
        let dirs = directories::ProjectDirs::from("io", "PenguinTech", "WaddlePerf");
        let (cfg_dir, data_dir) = match &dirs {
            Some(d) => (d.config_dir().to_owned(), d.data_dir().to_owned()),
            None => {
                let base = PathBuf::from(".waddleperf");
                (base.clone(), base)
            }
        };
        let log_dir = logs.unwrap_or_else(|| platform_log_dir(dirs.as_ref(), &data_dir));
        let db_file = db.unwrap_or_else(|| data_dir.join("waddleperf.db"));
        let data_dir = db_file.parent().map(Path::to_owned).unwrap_or(data_dir);
        Paths {
            config_file: config.unwrap_or_else(|| cfg_dir.join("config.toml")),
            data_dir,
            db_file,
            log_dir,
        }
    }
}

/// The platform's place for an application's logs: `~/Library/Logs/WaddlePerf`
/// on macOS, `$XDG_STATE_HOME/waddleperf/logs` on Linux, the local app data
/// directory on Windows.
fn platform_log_dir(dirs: Option<&directories::ProjectDirs>, data_dir: &Path) -> PathBuf {
    if cfg!(target_os = "macos") {
        if let Some(home) = directories::BaseDirs::new() {
            return home.home_dir().join("Library/Logs/WaddlePerf");
        }
    }
    match dirs {
        Some(d) => d
            .state_dir()
            .unwrap_or_else(|| d.data_local_dir())
            .join("logs"),
        None => data_dir.join("logs"),
    }
}

impl fmt::Display for Paths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config   {}", self.config_file.display())?;
        writeln!(f, "database {}", self.db_file.display())?;
        write!(f, "logs     {}", self.log_dir.display())
    }
}
