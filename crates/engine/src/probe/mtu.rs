//! Path MTU: the largest packet that reaches the target with Don't Fragment
//! set, found by binary search over ICMP echo sizes and reported as a
//! packet size (IPv4: payload + 28, IPv6: payload + 48).
//!
//! A size is "too big" when a router says so ("fragmentation needed" /
//! "packet too big"), when the local interface refuses it, or when no
//! answer comes back (a black-hole router drops it silently); a silent size
//! is tried twice before it counts as too big, so one lost packet does not
//! shrink the result. A router's next-hop MTU, when given, is tried next.
//! The search starts once a small echo has come back (else the target
//! cannot be measured at all).

use super::icmp::{Echo, Outcome, Session, SessionOptions, V4_OVERHEAD, V6_OVERHEAD};
use super::{ms, resolve_one, Probe, ProbeError};
use crate::model::{ErrorKind, Measurement, TestType};
use crate::spec::MtuSpec;
use std::time::Duration;

/// Tries of a size that gets no answer before it counts as too big.
const SILENT_TRIES: u32 = 2;

/// One test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct MtuProbe {
    pub spec: MtuSpec,
    pub tier: u8,
}
super::spec_probe!(MtuProbe, MtuSpec);

impl MtuProbe {
    pub fn new(host: impl Into<String>) -> Self {
        MtuProbe {
            spec: MtuSpec::new(host),
            tier: 1,
        }
    }
}

impl Probe for MtuProbe {
    fn test_type(&self) -> TestType {
        TestType::Mtu
    }

    fn target(&self) -> String {
        self.host.trim().to_owned()
    }

    /// At most ~14 halvings, each with its silent retries.
    fn timeout(&self) -> Duration {
        self.reply_wait * (16 * SILENT_TRIES) + self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let dst = resolve_one(&self.host, self.family, m).await?;
        let opts = SessionOptions {
            dont_fragment: true,
            only: self.method,
        };
        let session = Session::open_for(dst, opts, m)?;
        let overhead = if dst.is_ipv6() {
            V6_OVERHEAD
        } else {
            V4_OVERHEAD
        };
        // IPv6 links carry at least 1280 bytes; IPv4 at least 68.
        let floor = if dst.is_ipv6() { 1280 } else { 68 };
        let echo = |packet: u32| Echo {
            dst,
            ttl: None,
            payload: (packet - overhead) as usize,
            timeout: self.reply_wait,
        };
        let (mut sent, mut received) = (0u32, 0u32);
        // A small echo first: the target must answer at all.
        let small = floor.max(overhead + 56).min(self.max);
        let mut first = Outcome::Timeout;
        for _ in 0..SILENT_TRIES {
            sent += 1;
            first = session.echo(echo(small)).await?;
            if !matches!(first, Outcome::Timeout) {
                break;
            }
        }
        match first {
            Outcome::Reply { from, rtt } if from == dst => {
                received += 1;
                m.latency_ms = Some(ms(rtt));
            }
            Outcome::Timeout => {
                return Err(ProbeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{dst} does not answer echo requests, so its path MTU cannot be measured"
                    ),
                ))
            }
            other => {
                return Err(ProbeError::new(
                    ErrorKind::Unreachable,
                    format!("{dst} cannot be reached with a {small}-byte packet: {other:?}"),
                ))
            }
        }

        // Invariant: `good` passed; `bad` (if any) is too big.
        let mut good = small;
        let mut bad = self.max + 1;
        let mut hint: Option<u32> = None;
        while bad - good > 1 {
            let size = match hint.take().filter(|h| *h > good && *h < bad) {
                Some(h) => h,
                None => good + (bad - good) / 2,
            };
            let mut passed = false;
            for _ in 0..SILENT_TRIES {
                sent += 1;
                match session.echo(echo(size)).await? {
                    Outcome::Reply { from, .. } if from == dst => {
                        received += 1;
                        passed = true;
                        break;
                    }
                    Outcome::TooBig { mtu, .. } => {
                        hint = mtu;
                        break;
                    }
                    Outcome::Timeout => continue,
                    _ => break,
                }
            }
            if passed {
                good = size;
            } else {
                bad = size;
            }
        }
        m.metrics.path_mtu = Some(good);
        m.metrics.sent = Some(sent);
        m.metrics.received = Some(received);
        Ok(())
    }
}
