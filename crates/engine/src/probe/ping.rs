//! ICMP ping: `count` echo requests `interval` apart, each waiting up to the
//! reply timeout. Figures: sent, received, loss (of probes sent), and the
//! RTT summary with jitter over the replies in sending order. 100 % loss is a
//! result with `loss_pct` 100 (the test fails, and keeps its figures).

use super::icmp::{Echo, Outcome, Session, SessionOptions};
use super::{ms, record_samples, resolve_one, Family, Probe, ProbeError};
use crate::config::{Config, IcmpTarget};
use crate::model::{ErrorKind, Measurement, TestType};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_COUNT: u32 = 10;
pub const DEFAULT_INTERVAL_MS: u64 = 200;
/// `ping`'s default: 56 bytes of payload, 84-byte IPv4 packets.
pub const DEFAULT_SIZE: usize = 56;
/// How long each probe of a sampled test (ICMP, UDP) waits for its reply
/// unless the target says otherwise.
pub const DEFAULT_REPLY_TIMEOUT_MS: u64 = 2_000;

#[derive(Debug, Clone)]
pub struct IcmpProbe {
    pub host: String,
    pub count: u32,
    pub interval: Duration,
    /// Payload bytes per echo.
    pub size: usize,
    /// How long each echo waits for its reply.
    pub reply_timeout: Duration,
    pub family: Option<Family>,
    /// Send with this ICMP method only (tests, `--method`); `None`: the
    /// datagram socket where allowed, else a raw one.
    pub method: Option<super::icmp::Method>,
    pub tier: u8,
}

impl IcmpProbe {
    pub fn new(host: impl Into<String>) -> Self {
        IcmpProbe {
            host: host.into(),
            count: DEFAULT_COUNT,
            interval: Duration::from_millis(DEFAULT_INTERVAL_MS),
            size: DEFAULT_SIZE,
            reply_timeout: Duration::from_millis(DEFAULT_REPLY_TIMEOUT_MS),
            family: None,
            method: None,
            tier: 1,
        }
    }

    pub fn from_target(t: &IcmpTarget, _cfg: &Config) -> Self {
        IcmpProbe {
            host: t.host.trim().to_owned(),
            count: t.count.unwrap_or(DEFAULT_COUNT),
            interval: Duration::from_millis(t.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS)),
            size: t.size.unwrap_or(DEFAULT_SIZE),
            reply_timeout: Duration::from_millis(t.timeout_ms.unwrap_or(DEFAULT_REPLY_TIMEOUT_MS)),
            family: t.family,
            method: None,
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
        super::sampled_limit(self.count, self.interval, self.reply_timeout)
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
                timeout: self.reply_timeout,
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
