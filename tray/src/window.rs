//! The window process: `waddleperf-desktop` beside this executable,
//! started when the person opens the window and asked to show a page when
//! it already runs (its single-instance hand-over). It ends by itself a
//! while after the window is closed; the agent ends it when it quits.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// The window's executable: `WADDLEPERF_WINDOW_BIN`, else
/// `waddleperf-desktop` in this program's folder.
pub fn window_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WADDLEPERF_WINDOW_BIN") {
        return p.into();
    }
    let name = format!("waddleperf-desktop{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(&name)))
        .unwrap_or_else(|| name.into())
}

pub struct WindowProcess {
    bin: PathBuf,
    /// `--config`, `--db`, `--log-dir`: the window finds this agent.
    args: Vec<OsString>,
    rt: tokio::runtime::Handle,
    running: Mutex<Option<Running>>,
}

/// A window process, watched by a task that reaps it when it ends (so no
/// zombie is left) and ends it when asked.
struct Running {
    pid: Option<u32>,
    stop: mpsc::Sender<Duration>,
    done: watch::Receiver<bool>,
}

impl Running {
    fn alive(&self) -> bool {
        !*self.done.borrow()
    }
}

impl WindowProcess {
    pub fn new(bin: PathBuf, args: Vec<OsString>, rt: tokio::runtime::Handle) -> WindowProcess {
        WindowProcess {
            bin,
            args,
            rt,
            running: Mutex::new(None),
        }
    }

    fn command(&self, page: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--show")
            .arg(page)
            .args(&self.args)
            .stdin(Stdio::null());
        c
    }

    /// Whether a window process of this agent runs.
    pub fn running(&self) -> bool {
        self.running
            .lock()
            .map(|r| r.as_ref().is_some_and(Running::alive))
            .unwrap_or(false)
    }

    /// The running window process's id.
    pub fn pid(&self) -> Option<u32> {
        let r = self.running.lock().ok()?;
        r.as_ref().filter(|r| r.alive()).and_then(|r| r.pid)
    }

    /// Shows the window on `page`: a new process, or the running one asked
    /// (a short-lived second process hands the page over and ends).
    pub fn open(&self, page: &str) -> Result<(), String> {
        let _rt = self.rt.enter();
        let mut running = self.running.lock().map_err(|e| e.to_string())?;
        let alive = running.as_ref().is_some_and(Running::alive);
        let mut child = self.command(page).spawn().map_err(|e| {
            format!(
                "the window ({}) could not be started: {e}",
                self.bin.display()
            )
        })?;
        if alive {
            // The hand-over process: reaped when it ends.
            self.rt.spawn(async move {
                let _ = child.wait().await;
            });
            return Ok(());
        }
        let pid = child.id();
        tracing::info!(?pid, page, "window started");
        let (stop, mut stop_rx) = mpsc::channel::<Duration>(1);
        let (done_tx, done) = watch::channel(false);
        self.rt.spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s.ok(),
                Some(grace) = stop_rx.recv() => {
                    terminate(&mut child);
                    match tokio::time::timeout(grace, child.wait()).await {
                        Ok(s) => s.ok(),
                        Err(_) => {
                            tracing::warn!("the window did not end in {grace:?}: killing it");
                            let _ = child.kill().await;
                            None
                        }
                    }
                }
            };
            tracing::info!(?pid, ?status, "window ended");
            let _ = done_tx.send(true);
        });
        *running = Some(Running { pid, stop, done });
        Ok(())
    }

    /// Ends the window process: SIGTERM (it ends at once), then a kill if it
    /// is still there after `grace`.
    pub async fn close(&self, grace: Duration) {
        let taken = self.running.lock().ok().and_then(|mut r| r.take());
        let Some(mut r) = taken else {
            return;
        };
        if !r.alive() || r.stop.send(grace).await.is_err() {
            return;
        }
        let wait = grace + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, r.done.wait_for(|d| *d)).await;
    }
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: `kill` takes plain integers; the pid is our own child's,
        // not yet reaped (so not reused).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
    let _ = child.start_kill();
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stand-in window (a shell script that records its arguments; the
    /// first waits, a second hands over and ends): started once, handed a
    /// page while it runs, ended on close.
    #[tokio::test]
    async fn started_once_handed_pages_and_ended() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("args.txt");
        let bin = dir.path().join("window.sh");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\necho \"$@\" >> {log}\n[ -e {log}.up ] && exit 0\ntouch {log}.up\nexec sleep 30\n",
                log = log.display()
            ),
        )?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
        let w = WindowProcess::new(
            bin,
            vec!["--db".into(), "/x.db".into()],
            tokio::runtime::Handle::current(),
        );
        assert!(!w.running());
        w.open("history")?;
        assert!(w.running());
        let pid = w.pid();
        assert!(pid.is_some());
        // The first has written its arguments before the second starts
        // (else the two scripts race for the log).
        let up = dir.path().join("args.txt.up");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !up.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the first window did not start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.open("settings")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let lines = std::fs::read_to_string(&log)?;
        assert_eq!(
            lines.lines().collect::<Vec<_>>(),
            vec!["--show history --db /x.db", "--show settings --db /x.db"]
        );
        assert_eq!(w.pid(), pid, "the hand-over left the first process");
        w.close(Duration::from_secs(5)).await;
        assert!(!w.running());
        // Ended and reaped: no zombie under this pid.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.unwrap_or(0)));
        assert!(stat.is_err(), "{stat:?}");
        // A window that cannot start: an error naming it.
        let w = WindowProcess::new(
            dir.path().join("missing"),
            vec![],
            tokio::runtime::Handle::current(),
        );
        let e = w.open("overview").err().unwrap_or_default();
        assert!(
            e.contains("missing") && e.contains("could not be started"),
            "{e}"
        );
        Ok(())
    }
}
