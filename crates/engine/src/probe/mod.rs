//! Probes: one module per test type. Every probe returns a [`Measurement`]
//! (a failed test is a result too), never panics, and honours its timeout:
//! a probe that has not finished when the timeout runs out is stopped and
//! reported as `timeout`, keeping the phases it had measured.

pub mod bandwidth;
mod body;
pub mod dns;
pub mod http;
mod http3;
pub mod icmp;
mod iperf3;
pub mod loaded;
pub mod mtu;
pub mod net;
pub mod ping;
pub mod ports;
pub mod rxtime;
pub mod speedtest;
pub mod tcp;
pub(crate) mod tcp_info;
pub mod tls;
pub mod trace;
#[cfg(target_os = "linux")]
mod trace_l4;
pub mod udp;
#[cfg(target_os = "linux")]
mod udp_refusal;
mod wire;

use crate::model::{ErrorKind, Measurement, SampleStats, TestType};
use crate::spec::TestSpec;
use std::future::Future;
use std::time::{Duration, Instant};

/// A failure inside a probe: what kind, and a message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProbeError {
            kind,
            message: message.into(),
        }
    }

    /// Classifies an I/O error from a network operation; `what` says which
    /// operation (e.g. "connect to 192.0.2.1:443").
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                ErrorKind::Unreachable
            }
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Reset
            }
            _ => match e.raw_os_error() {
                // EHOSTUNREACH / ENETUNREACH on Unix, WSAEHOSTUNREACH / WSAENETUNREACH on Windows.
                Some(113) | Some(101) | Some(10065) | Some(10051) => ErrorKind::Unreachable,
                _ => ErrorKind::Io,
            },
        };
        let msg = match kind {
            ErrorKind::Refused => format!("{what}: connection refused"),
            ErrorKind::Reset => format!("{what}: connection closed by the peer ({e})"),
            _ => format!("{what}: {e}"),
        };
        ProbeError::new(kind, msg)
    }
}

/// What every probe is: something with a type and a target that measures.
pub trait Probe: Sync {
    fn test_type(&self) -> TestType;
    /// The target as it is stored with results.
    fn target(&self) -> String;
    /// The whole test's time limit.
    fn timeout(&self) -> Duration;
    /// The AutoPerf tier that asked for this test.
    fn tier(&self) -> u8;
    /// One attempt, writing each figure into `m` as it is measured, so a
    /// failure or the time limit keeps what was reached.
    fn attempt(&self, m: &mut Measurement) -> impl Future<Output = Result<(), ProbeError>> + Send;
    /// Runs the test once under its time limit and returns its result.
    fn run(&self) -> impl Future<Output = Measurement> + Send {
        run_once(self)
    }
}

/// One attempt of `p` under its time limit, as its result.
pub async fn run_once<P: Probe + ?Sized>(p: &P) -> Measurement {
    let mut m = Measurement::begin(p.test_type(), p.target());
    m.tier = p.tier();
    let start = Instant::now();
    let limit = p.timeout();
    let outcome = tokio::time::timeout(limit, p.attempt(&mut m)).await;
    finish(&mut m, start, limit, outcome);
    m
}

/// Milliseconds with microsecond precision, from a monotonic duration.
pub fn ms(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 1_000.0).round() / 1_000.0
}

/// Records how an attempt ended: success, or its error kind and message, or
/// a timeout; and the wall duration since `start`. Figures the attempt wrote
/// before an error or a timeout are kept.
///
/// [`Probe::run`] calls it for every probe.
pub fn finish(
    m: &mut Measurement,
    start: Instant,
    timeout: Duration,
    outcome: Result<Result<(), ProbeError>, tokio::time::error::Elapsed>,
) {
    m.duration_ms = ms(start.elapsed());
    match outcome {
        Ok(Ok(())) => m.success = m.error_kind.is_none(),
        Ok(Err(e)) => m.fail(e.kind, e.message),
        Err(_) => m.fail(
            ErrorKind::Timeout,
            format!("no complete answer within {} ms", timeout.as_millis()),
        ),
    }
}

/// Records a sampled test's figures: `sent`, `received`, `loss_pct` (of
/// probes sent), and the RTT summary of `samples` (milliseconds, in sending
/// order, one per reply); the headline latency is the mean RTT.
pub fn record_samples(m: &mut Measurement, sent: u32, samples: &[f64]) {
    let x = &mut m.metrics;
    let received = samples.len() as u32;
    x.sent = Some(sent);
    x.received = Some(received);
    x.loss_pct = (sent > 0).then(|| loss_pct(sent, received));
    if let Some(s) = SampleStats::of(samples) {
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        x.min_ms = Some(r(s.min));
        x.mean_ms = Some(r(s.mean));
        x.median_ms = Some(r(s.median));
        x.p95_ms = Some(r(s.p95));
        x.max_ms = Some(r(s.max));
        x.stddev_ms = Some(r(s.stddev));
        x.jitter_ms = Some(r(s.jitter));
        m.latency_ms = Some(r(s.mean));
    }
}

/// Loss as a percentage of probes sent (0 when none was sent).
pub fn loss_pct(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    f64::from(sent - received.min(sent)) * 100.0 / f64::from(sent)
}

/// The limit of a test that sends `count` probes `interval` apart: its
/// pacing, then `allowance` (the spec's `timeout`) for the last answers.
pub fn sampled_limit(count: u32, interval: Duration, allowance: Duration) -> Duration {
    interval * count.saturating_sub(1) + allowance
}

/// Resolves `host` (an address or a name, through the system resolver, as
/// applications do) to one address, preferring the family asked for.
pub async fn resolve_one(
    host: &str,
    family: Option<Family>,
    m: &mut Measurement,
) -> Result<std::net::IpAddr, ProbeError> {
    let resolved = net::resolve(host, 0).await?;
    m.metrics.dns_ms = resolved.dns_ms;
    let pick = resolved
        .addrs
        .iter()
        .map(|a| a.ip())
        .find(|ip| match family {
            Some(Family::V4) => ip.is_ipv4(),
            Some(Family::V6) => ip.is_ipv6(),
            None => true,
        })
        .ok_or_else(|| {
            ProbeError::new(
                ErrorKind::Dns,
                format!(
                    "`{host}` has no {} address",
                    if family == Some(Family::V6) {
                        "IPv6"
                    } else {
                        "IPv4"
                    }
                ),
            )
        })?;
    m.resolved_ip = Some(pick.to_string());
    Ok(pick)
}

pub use crate::kinds::Family;

/// A probe is its spec and the tier it runs in; it reads its spec's fields
/// as its own.
macro_rules! spec_probe {
    ($probe:ty, $spec:ty) => {
        impl std::ops::Deref for $probe {
            type Target = $spec;
            fn deref(&self) -> &$spec {
                &self.spec
            }
        }
        impl std::ops::DerefMut for $probe {
            fn deref_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }
    };
}
pub(crate) use spec_probe;

/// A probe of any type.
#[derive(Debug, Clone)]
pub enum AnyProbe {
    Http(http::HttpProbe),
    Tcp(tcp::TcpProbe),
    Dns(dns::DnsProbe),
    Udp(udp::UdpProbe),
    Icmp(ping::IcmpProbe),
    Trace(trace::TraceProbe),
    Mtu(mtu::MtuProbe),
    Bandwidth(bandwidth::BandwidthProbe),
    Ports(ports::PortsProbe),
}

/// The one way a spec becomes a probe.
pub fn build(spec: TestSpec, tier: u8) -> AnyProbe {
    match spec {
        TestSpec::Http(spec) => AnyProbe::Http(http::HttpProbe { spec, tier }),
        TestSpec::Tcp(spec) => AnyProbe::Tcp(tcp::TcpProbe { spec, tier }),
        TestSpec::Dns(spec) => AnyProbe::Dns(dns::DnsProbe { spec, tier }),
        TestSpec::Udp(spec) => AnyProbe::Udp(udp::UdpProbe { spec, tier }),
        TestSpec::Icmp(spec) => AnyProbe::Icmp(ping::IcmpProbe { spec, tier }),
        TestSpec::Trace(spec) => AnyProbe::Trace(trace::TraceProbe { spec, tier }),
        TestSpec::Mtu(spec) => AnyProbe::Mtu(mtu::MtuProbe { spec, tier }),
        TestSpec::Bandwidth(spec) => AnyProbe::Bandwidth(bandwidth::BandwidthProbe {
            spec,
            tier,
            progress: None,
        }),
        TestSpec::Ports(spec) => AnyProbe::Ports(ports::PortsProbe { spec, tier }),
    }
}

/// Calls the same method on whichever probe it is.
macro_rules! each_probe {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyProbe::Http($p) => $e,
            AnyProbe::Tcp($p) => $e,
            AnyProbe::Dns($p) => $e,
            AnyProbe::Udp($p) => $e,
            AnyProbe::Icmp($p) => $e,
            AnyProbe::Trace($p) => $e,
            AnyProbe::Mtu($p) => $e,
            AnyProbe::Bandwidth($p) => $e,
            AnyProbe::Ports($p) => $e,
        }
    };
}

impl AnyProbe {
    pub async fn run(&self) -> Measurement {
        each_probe!(self, p => p.run().await)
    }

    pub fn test_type(&self) -> TestType {
        each_probe!(self, p => p.test_type())
    }

    pub fn target(&self) -> String {
        each_probe!(self, p => p.target())
    }

    /// The longest the test may take.
    pub fn timeout(&self) -> Duration {
        each_probe!(self, p => p.timeout())
    }

    /// The tier the probe runs in.
    pub fn tier(&self) -> u8 {
        each_probe!(self, p => p.tier)
    }

    /// Tests that load the link (bandwidth) run alone, never beside others.
    pub fn exclusive(&self) -> bool {
        self.test_type() == TestType::Bandwidth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_keeps_microseconds() {
        assert_eq!(ms(Duration::from_nanos(20_345_678)), 20.346);
        assert_eq!(ms(Duration::from_secs(2)), 2000.0);
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind as K};
        let k = |e: Error| ProbeError::io("connect to x", &e).kind;
        assert_eq!(k(Error::from(K::ConnectionRefused)), ErrorKind::Refused);
        assert_eq!(k(Error::from(K::TimedOut)), ErrorKind::Timeout);
        assert_eq!(k(Error::from(K::ConnectionReset)), ErrorKind::Reset);
        assert_eq!(k(Error::from_raw_os_error(113)), ErrorKind::Unreachable);
        assert_eq!(k(Error::other("weird")), ErrorKind::Io);
        let refused = ProbeError::io("connect to 127.0.0.1:9", &Error::from(K::ConnectionRefused));
        assert_eq!(
            refused.message,
            "connect to 127.0.0.1:9: connection refused"
        );
    }

    #[tokio::test]
    async fn finish_keeps_phases_on_timeout() {
        let mut m = Measurement::begin(TestType::Tcp, "x:1");
        let t = Duration::from_millis(20);
        let start = Instant::now();
        let slow = async {
            m.metrics.dns_ms = Some(1.0);
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        };
        let outcome = tokio::time::timeout(t, slow).await;
        finish(&mut m, start, t, outcome);
        assert!(!m.success);
        assert_eq!(m.error_kind, Some(ErrorKind::Timeout));
        assert_eq!(m.metrics.dns_ms, Some(1.0));
        assert!(m.duration_ms >= 20.0);
    }
}
