//! ICMP ping: `count` echo requests `interval` apart, each waiting up to the
//! reply timeout. Figures: sent, received, loss (of probes sent), and the
//! RTT summary with jitter over the replies in sending order. 100 % loss is a
//! result with `loss_pct` 100 (the test fails, and keeps its figures).

use super::icmp::{Echo, Outcome, Session, SessionOptions};
use super::{ms, record_samples, resolve_one, Probe, ProbeError};
use crate::model::{ErrorKind, Measurement, TestType};
use crate::spec::IcmpSpec;
use std::sync::Arc;
use std::time::Duration;

/// One test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct IcmpProbe {
    pub spec: IcmpSpec,
    pub tier: u8,
}
super::spec_probe!(IcmpProbe, IcmpSpec);

impl IcmpProbe {
    pub fn new(host: impl Into<String>) -> Self {
        IcmpProbe {
            spec: IcmpSpec::new(host),
            tier: 1,
        }
    }
}

/// Why no echo came back, from what did come back.
fn no_reply(outcomes: &[Outcome], dst: std::net::IpAddr, count: u32) -> ProbeError {
    for o in outcomes {
        match o {
            Outcome::Unreachable { from, code, .. } => {
                return ProbeError::new(
                    ErrorKind::Unreachable,
                    format!("{from} says {dst} is unreachable (ICMP code {code}); no reply to {count} echo requests"),
                )
            }
            Outcome::TimeExceeded { from, .. } => {
                return ProbeError::new(
                    ErrorKind::Unreachable,
                    format!("{from} says the TTL ran out on the way to {dst} (a routing loop?); no reply to {count} echo requests"),
                )
            }
            Outcome::TooBig { .. } => {
                return ProbeError::new(
                    ErrorKind::Unreachable,
                    format!("the packets are too big for the path to {dst}; no reply to {count} echo requests"),
                )
            }
            _ => {}
        }
    }
    ProbeError::new(
        ErrorKind::Timeout,
        format!("100 % loss: no reply to any of {count} echo requests to {dst}"),
    )
}

impl Probe for IcmpProbe {
    fn test_type(&self) -> TestType {
        TestType::Icmp
    }

    fn target(&self) -> String {
        self.host.trim().to_owned()
    }

    /// The longest the test may take: the sends, then the last reply's wait.
    fn timeout(&self) -> Duration {
        super::sampled_limit(self.count, self.interval, self.timeout)
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let dst = resolve_one(&self.host, self.family, m).await?;
        let only = SessionOptions {
            only: self.method,
            ..SessionOptions::default()
        };
        let session = Arc::new(Session::open_for(dst, only, m)?);
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.count {
            let session = session.clone();
            let at = start + self.interval * i;
            let echo = Echo {
                dst,
                ttl: None,
                payload: self.size,
                timeout: self.reply_wait,
            };
            tasks.spawn(async move {
                tokio::time::sleep_until(at).await;
                (i, session.echo(echo).await)
            });
        }
        let mut outcomes = vec![Outcome::Timeout; self.count as usize];
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok((i, outcome)) = joined else { continue };
            match outcome {
                Ok(o) => outcomes[i as usize] = o,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let samples: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Reply { from, rtt } if *from == dst => Some(ms(*rtt)),
                _ => None,
            })
            .collect();
        record_samples(m, self.count, &samples);
        if !samples.is_empty() {
            return Ok(());
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Err(no_reply(&outcomes, dst, self.count))
    }
}
