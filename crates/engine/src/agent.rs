//! One agent per database: the daemon or the desktop app holds an exclusive
//! lock on `agent.lock` beside the database while it runs the schedule, so a
//! second one refuses to start and `waddleperf status` can tell whether an
//! agent is running. The lock is the operating system's (released when the
//! process exits, even when killed), not the file's existence.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another WaddlePerf agent is already running on this database{}; stop it first (lock {path})", pid_note(*.pid))]
    Held { path: PathBuf, pid: Option<u32> },
    #[error("cannot take the agent lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn pid_note(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// Held while this process is the agent.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
    path: PathBuf,
}

fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.lock")
}

fn pid_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.pid")
}

fn read_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_path(data_dir))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

impl AgentLock {
    /// Takes the lock for `data_dir` (the database's directory).
    pub fn acquire(data_dir: &Path) -> Result<AgentLock, LockError> {
        let path = lock_path(data_dir);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::fsutil::create_private_dir(data_dir).map_err(io)?;
        crate::fsutil::create_private_file(&path).map_err(io)?;
        let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: read_pid(data_dir),
                    path,
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut pid = File::create(pid_path(data_dir)).map_err(io)?;
        writeln!(pid, "{}", std::process::id()).map_err(io)?;
        Ok(AgentLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of the agent holding the lock for `data_dir`, if one is
    /// running (`Some(None)` when running but its pid file is unreadable).
    pub fn holder(data_dir: &Path) -> Option<Option<u32>> {
        let file = File::open(lock_path(data_dir)).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => Some(read_pid(data_dir)),
            Err(TryLockError::Error(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(AgentLock::holder(dir.path()), None);
        let lock = AgentLock::acquire(dir.path()).unwrap();
        assert_eq!(
            AgentLock::holder(dir.path()),
            Some(Some(std::process::id()))
        );
        let e = AgentLock::acquire(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("already running") && e.to_string().contains("pid"),
            "{e}"
        );
        drop(lock);
        assert_eq!(AgentLock::holder(dir.path()), None);
        AgentLock::acquire(dir.path()).unwrap();
    }
}
