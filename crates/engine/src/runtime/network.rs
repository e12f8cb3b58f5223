//! The network the machine is on, kept by the runtime: read from the OS
//! (`netctx`), recorded once per distinct network in the store, stamped on
//! every result, and announced when it changes.

use super::{Event, Runtime, RuntimeError};
use crate::netctx::{self, NetCtxError, NetworkContext};
use crate::store::KnownNetwork;
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state document holding the network last recorded.
const LAST_NETWORK: &str = "network";

#[derive(serde::Serialize, serde::Deserialize)]
struct LastNetwork {
    id: String,
}

/// Without a watcher (a CLI run), a context read this recently is reused.
const FRESH: Duration = Duration::from_secs(30);

/// The runtime's view of the current network.
#[derive(Default)]
pub(super) struct NetState {
    pub(super) current: Option<Arc<NetworkContext>>,
    pub(super) read_at: Option<Instant>,
    /// A watcher refreshes the context on every change the OS reports.
    pub(super) watched: bool,
}

/// What a refresh found.
#[derive(Debug, Clone)]
pub struct NetworkUpdate {
    /// The context now (`None`: no default route).
    pub context: Option<Arc<NetworkContext>>,
    /// The network id before.
    pub previous: Option<String>,
}

impl NetworkUpdate {
    /// The machine moved from one network to another (not: came online).
    pub fn moved(&self) -> bool {
        match (&self.previous, &self.context) {
            (Some(p), Some(c)) => *p != c.network_id,
            _ => false,
        }
    }

    /// The network id differs from before, including coming online or going
    /// offline.
    pub fn changed(&self) -> bool {
        self.previous.as_deref() != self.context.as_deref().map(|c| c.network_id.as_str())
    }
}

impl Runtime {
    fn net(&self) -> std::sync::MutexGuard<'_, NetState> {
        match self.inner.network.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Marks the context as kept fresh by a watcher (no re-reads per run).
    pub fn set_network_watched(&self, watched: bool) {
        self.net().watched = watched;
    }

    /// The context as last read, without reading the OS.
    pub fn network_cached(&self) -> Option<Arc<NetworkContext>> {
        self.net().current.clone()
    }

    /// The context for a result being stored: the watcher's, or one read at
    /// most [`FRESH`] ago, else read now. `None` when the OS cannot say.
    pub async fn network_now(&self) -> Option<Arc<NetworkContext>> {
        {
            let st = self.net();
            if st.watched || st.read_at.is_some_and(|t| t.elapsed() < FRESH) {
                return st.current.clone();
            }
        }
        match self.refresh_network().await {
            Ok(u) => u.context,
            Err(e) => {
                tracing::debug!("network context unavailable: {e}");
                self.network_cached()
            }
        }
    }

    /// Reads the context from the OS now, records the network in the store
    /// and, when the network id changed, logs and announces it.
    pub async fn refresh_network(&self) -> Result<NetworkUpdate, RuntimeError> {
        let read = netctx::capture_full().await;
        let context = match read {
            Ok(c) => Some(Arc::new(c)),
            Err(NetCtxError::NoDefaultRoute) => None,
            Err(e) => return Err(RuntimeError::Network(e.to_string())),
        };
        let previous = {
            let mut st = self.net();
            let previous = st.current.as_ref().map(|c| c.network_id.clone());
            st.current = context.clone();
            st.read_at = Some(Instant::now());
            previous
        };
        let update = NetworkUpdate { context, previous };
        let Some(c) = update.context.clone() else {
            if update.changed() {
                self.emit(Event::NetworkChanged {
                    from: update.previous.clone(),
                    network: None,
                });
            }
            return Ok(update);
        };
        // The network last recorded by any process on this database: a move
        // from it is logged once, whoever notices it first.
        let (known, moved_from) = self
            .with_store(move |s| {
                s.upsert_network(&c, Utc::now())?;
                let last: Option<LastNetwork> = s.state_get(LAST_NETWORK).ok().flatten();
                let same = last.as_ref().is_some_and(|l| l.id == c.network_id);
                let moved_from = last.filter(|_| !same).map(|l| l.id);
                if !same {
                    s.state_set(
                        LAST_NETWORK,
                        &LastNetwork {
                            id: c.network_id.clone(),
                        },
                    )?;
                }
                Ok((s.network(&c.network_id)?, moved_from))
            })
            .await?;
        if let Some(from) = moved_from {
            self.log_move(&from, known.as_ref()).await;
        }
        if update.changed() {
            self.emit(Event::NetworkChanged {
                from: update.previous.clone(),
                network: known.map(Box::new),
            });
        }
        Ok(update)
    }

    async fn log_move(&self, from: &str, known: Option<&KnownNetwork>) {
        let message = match known {
            Some(k) => format!("moved to network {} ({})", k.name(), k.id),
            None => "moved to another network".to_owned(),
        };
        tracing::info!("{message}");
        let details = serde_json::json!({ "from": from, "to": known.map(|k| k.id.clone()) });
        self.log_event("network_changed", message, details).await;
    }

    /// Every network seen, the most recent first.
    pub async fn networks(&self) -> Result<Vec<KnownNetwork>, RuntimeError> {
        self.with_store(|s| s.networks()).await
    }

    /// Names a network ("Home"); an empty label clears it.
    pub async fn set_network_label(
        &self,
        id: String,
        label: String,
    ) -> Result<Option<String>, RuntimeError> {
        let out = self
            .with_store(move |s| s.set_network_label(&id, &label))
            .await?;
        self.emit(Event::NetworksChanged);
        Ok(out)
    }
}

/// Reports closer together than this are one change: the context is read
/// once they have been quiet this long.
pub const DEBOUNCE: Duration = Duration::from_secs(2);
/// However busy the reports, the context is read at least this often while
/// they keep coming.
const DEBOUNCE_MAX: Duration = Duration::from_secs(10);
/// Even without reports (a Wi-Fi roam, a signal change) the context is read
/// again this often.
const BACKSTOP: Duration = Duration::from_secs(60);

impl Runtime {
    /// Keeps the network context fresh for as long as the runtime lives:
    /// reads it on every change the OS reports (debounced), and when the
    /// machine has moved to another network, starts a tier-1 run
    /// ([`super::RunReason::NetworkChange`]) unless monitoring is paused.
    /// Returns only on shutdown or when the OS's reports fail (an error, for
    /// the supervisor to restart it).
    pub async fn watch_network(&self) {
        let mut watcher = match netctx::Watcher::new() {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("cannot follow network changes: {e}");
                return;
            }
        };
        self.set_network_watched(true);
        let mut last_known = match self.refresh_network().await {
            Ok(u) => u.context.map(|c| c.network_id.clone()),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        loop {
            tokio::select! {
                r = watcher.changed() => if let Err(e) = r {
                    tracing::error!("network change reports failed: {e}");
                    break;
                },
                _ = tokio::time::sleep(BACKSTOP) => {}
                _ = self.closed() => break,
            }
            // Let a burst of reports (an interface coming up brings several) settle.
            if watcher.reports_changes() {
                let until = tokio::time::Instant::now() + DEBOUNCE_MAX;
                loop {
                    tokio::select! {
                        r = watcher.changed() => if r.is_err() { break },
                        _ = tokio::time::sleep(DEBOUNCE) => break,
                        _ = tokio::time::sleep_until(until) => break,
                    }
                }
            }
            let update = match self.refresh_network().await {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!("{e}");
                    continue;
                }
            };
            let Some(now) = update.context.as_ref().map(|c| c.network_id.clone()) else {
                continue;
            };
            if last_known.as_deref() == Some(now.as_str()) {
                continue;
            }
            let moved = last_known.is_some();
            last_known = Some(now);
            if !moved {
                continue;
            }
            if self.is_paused().await.unwrap_or(false) {
                tracing::info!("network changed while paused: no run");
                continue;
            }
            let rt = self.clone();
            tokio::spawn(async move {
                if let Err(e) = rt.run(super::RunReason::NetworkChange).await {
                    tracing::warn!("the run for the new network did not start: {e}");
                }
            });
        }
        self.set_network_watched(false);
    }
}

impl Runtime {
    /// System diagnostics (`crate::diag`) into the event log: the snapshot
    /// AutoPerf takes when it escalates to tier 3.
    pub(super) async fn log_diagnostics(&self, cfg: &crate::config::Config) {
        let report = crate::diag::collect(crate::diag::clock_server(cfg).as_deref()).await;
        self.log_event(
            "diagnostics",
            "system diagnostics taken at tier 3 (`waddleperf events --json` holds the report)"
                .into(),
            serde_json::to_value(&report).unwrap_or_default(),
        )
        .await;
    }
}

/// The state document saying which network's portal the person was told of.
const PORTAL_TOLD: &str = "captive_portal";

#[derive(serde::Serialize, serde::Deserialize)]
struct PortalTold {
    network_id: Option<String>,
}

impl Runtime {
    /// Whether a captive portal is in the way (`[network]
    /// captive_portal_check`); the person is told once per network.
    pub(super) async fn behind_portal(&self, cfg: &crate::config::Config) -> bool {
        use crate::netctx::portal::{check, Portal};
        if !cfg.network.captive_portal_check {
            return false;
        }
        let url = cfg.network.captive_portal_url.trim().to_owned();
        // Shutting down does not wait for the check.
        let checked = tokio::select! {
            p = check(&url, &cfg.network.captive_portal_expect) => p,
            _ = self.closed() => return false,
        };
        let location = match checked {
            Portal::Clear => return false,
            Portal::Unknown { reason } => {
                tracing::debug!("captive portal check inconclusive: {reason}");
                return false;
            }
            Portal::Detected { status, location } => {
                tracing::warn!(status, ?location, "a captive portal answered {url}");
                location
            }
        };
        let net = self.network_now().await.map(|c| c.network_id.clone());
        let n = net.clone();
        let first = self
            .with_store(move |s| {
                let told: Option<PortalTold> = s.state_get(PORTAL_TOLD).ok().flatten();
                if told.is_some_and(|t| t.network_id == n) {
                    return Ok(false);
                }
                s.state_set(PORTAL_TOLD, &PortalTold { network_id: n })?;
                Ok(true)
            })
            .await
            .unwrap_or(false);
        if first {
            let message = match &location {
                Some(l) => format!("a captive portal is in the way (it sends to {l}): results taken behind it are marked and do not count as outages"),
                None => "a captive portal is in the way: results taken behind it are marked and do not count as outages".to_owned(),
            };
            let details =
                serde_json::json!({ "url": url, "location": location, "network_id": net });
            self.log_event("captive_portal", message, details).await;
            self.emit(Event::CaptivePortal { url, location });
        }
        true
    }
}
