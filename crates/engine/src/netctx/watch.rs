//! Waiting for the OS to report a change that may move the default route:
//! rtnetlink's link, address and route groups on Linux; elsewhere a poll
//! (reading the context is cheap).

use std::time::Duration;

/// Where the OS sends no change reports, the context is read this often.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub const POLL: Duration = Duration::from_secs(15);

pub struct Watcher {
    #[cfg(target_os = "linux")]
    inner: super::linux::watch::Changes,
}

impl Watcher {
    /// Subscribes to the OS's change reports.
    pub fn new() -> std::io::Result<Watcher> {
        Ok(Watcher {
            #[cfg(target_os = "linux")]
            inner: super::linux::watch::Changes::new()?,
        })
    }

    /// Resolves at the next change the OS reports (all reports queued by
    /// then are consumed), or after [`POLL`] where the OS reports none.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            self.inner.next().await
        }
        #[cfg(not(target_os = "linux"))]
        {
            tokio::time::sleep(POLL).await;
            Ok(())
        }
    }

    /// Whether the OS reports changes (else [`Watcher::changed`] polls).
    pub fn reports_changes(&self) -> bool {
        cfg!(target_os = "linux")
    }
}
