//! Bandwidth: the link loaded for a set time over parallel TCP streams,
//! after TCP slow start is left out, against a server of the spec's kind
//! (iperf3, `iperf3/`; the HTTP speed tests and responsiveness,
//! `speedtest/`). Figures: `upload_mbps` and/or `download_mbps`
//! (goodput at the receiver), `streams`, `seconds` measured, `retransmits`,
//! `server_kind`. It loads the link, so it runs alone (`AnyProbe::exclusive`).

use super::{Probe, ProbeError};
use crate::kinds::{BandwidthKind, Direction};
use crate::model::{ErrorKind, Interim, Measurement, TestType};
use crate::spec::{self, BandwidthSpec, HostPort};
use std::time::Duration;

/// The HTTP kinds' idle latency before the load (10 requests 100 ms
/// apart, or 10 new connections), with room for a slow server.
const IDLE_PHASE: Duration = Duration::from_secs(5);

/// One bandwidth test: its spec, the tier it runs in, and where it tells
/// how it is going while it runs (the runtime's live progress).
#[derive(Debug, Clone)]
pub struct BandwidthProbe {
    pub spec: BandwidthSpec,
    pub tier: u8,
    pub progress: Option<Progress>,
}

/// Where a running test sends its [`Interim`] figures.
#[derive(Clone)]
pub struct Progress(pub tokio::sync::mpsc::UnboundedSender<Interim>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Progress {
    pub fn send(&self, i: Interim) {
        let _ = self.0.send(i);
    }
}
super::spec_probe!(BandwidthProbe, BandwidthSpec);

impl BandwidthProbe {
    pub fn new(server: HostPort) -> Self {
        BandwidthProbe {
            spec: BandwidthSpec::new(server),
            tier: 1,
            progress: None,
        }
    }
}

impl Probe for BandwidthProbe {
    fn test_type(&self) -> TestType {
        TestType::Bandwidth
    }

    fn target(&self) -> String {
        spec::bandwidth_id(&self.spec)
    }

    /// Slow start and the measured seconds (each direction in turn for the
    /// HTTP kinds, after their idle latency), then the spec's limit for
    /// setting up and exchanging results.
    fn timeout(&self) -> Duration {
        let one = Duration::from_secs(u64::from(self.omit) + u64::from(self.seconds));
        match self.kind {
            BandwidthKind::Iperf3 => one + self.timeout,
            _ => {
                let turns = if self.direction == Direction::Bidir {
                    2
                } else {
                    1
                };
                IDLE_PHASE + one * turns + self.timeout
            }
        }
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        match self.kind {
            BandwidthKind::Iperf3 => {
                super::iperf3::run(&self.spec, m, self.progress.as_ref()).await
            }
            BandwidthKind::Waddleperf | BandwidthKind::Librespeed => {
                super::speedtest::run(&self.spec, m, self.progress.as_ref()).await
            }
            BandwidthKind::Rpm => {
                super::speedtest::rpm::run(&self.spec, m, self.progress.as_ref()).await
            }
        }
    }

    /// A busy server is tried again, `busy_wait` apart, up to
    /// `busy_retries` more times; the result says how often it was tried.
    async fn run(&self) -> Measurement {
        let mut tries = 1u32;
        loop {
            let mut m = super::run_once(self).await;
            let busy = m.error_kind == Some(ErrorKind::Busy);
            if !busy || tries > self.busy_retries {
                if busy && tries > 1 {
                    if let Some(e) = m.error.as_mut() {
                        e.push_str(&format!(
                            " (tried {tries} times, {} s apart)",
                            self.busy_wait.as_secs()
                        ));
                    }
                }
                return m;
            }
            tracing::info!(
                target = %m.target,
                "the bandwidth server is busy; trying again in {} s",
                self.busy_wait.as_secs()
            );
            tokio::time::sleep(self.busy_wait).await;
            tries += 1;
        }
    }
}
