//! Waiting for the OS to report a change that may move the default route:
//! rtnetlink's link, address and route groups on Linux; route and interface
//! change notifications on Windows; elsewhere a poll (reading the context is
//! cheap).

use std::time::Duration;

/// Where the OS sends no change reports, the context is read this often.
#[cfg_attr(any(target_os = "linux", windows), allow(dead_code))]
pub const POLL: Duration = Duration::from_secs(15);

pub struct Watcher {
    #[cfg(target_os = "linux")]
    inner: super::linux::watch::Changes,
    #[cfg(windows)]
    inner: super::windows::Changes,
}

impl Watcher {
    /// Subscribes to the OS's change reports.
    pub fn new() -> std::io::Result<Watcher> {
        Ok(Watcher {
            #[cfg(target_os = "linux")]
            inner: super::linux::watch::Changes::new()?,
            #[cfg(windows)]
            inner: super::windows::Changes::new()?,
        })
    }

    /// Resolves at the next change the OS reports (all reports queued by
    /// then are consumed), or after [`POLL`] where the OS reports none.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        #[cfg(any(target_os = "linux", windows))]
        {
            self.inner.next().await
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            tokio::time::sleep(POLL).await;
            Ok(())
        }
    }

    /// Whether the OS reports changes (else [`Watcher::changed`] polls).
    pub fn reports_changes(&self) -> bool {
        cfg!(any(target_os = "linux", windows))
    }
}
