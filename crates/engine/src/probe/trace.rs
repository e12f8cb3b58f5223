//! Traceroute and MTR: ICMP echo requests with TTL 1, 2, … up to
//! `max_hops`; each router on the way answers "time exceeded" with its
//! address, the target answers the echo. A round probes every TTL at once
//! (a few milliseconds apart); `rounds` > 1 repeats it `interval` apart
//! (MTR mode) and later rounds stop at the target's distance. Per hop: TTL,
//! address, reverse name (looked up with a bounded wait), probes sent and
//! answered, loss, min/mean/max RTT. `reached` says whether the target
//! answered; the hops end at the target.
//!
//! Uses the ICMP session of the ping probe, so it runs unprivileged where
//! ping does (Linux datagram sockets read routers' errors from the socket's
//! error queue; Windows uses the ICMP API), and on a raw socket otherwise.
//!
//! With `protocol = tcp` or `udp` it sends TCP SYNs or UDP datagrams to a
//! port instead (Linux, unprivileged: `trace_l4`), so paths whose firewalls
//! drop ICMP echo still show their hops; a TCP target answers SYN-ACK or
//! RST, and `port_state` says which.

use super::icmp::{Echo, Outcome, Session, SessionOptions};
use super::{ms, resolve_one, Probe, ProbeError};
use crate::kinds::{PortState, TraceProtocol};
use crate::model::{ErrorKind, Hop, Measurement, SampleStats, TestType};
use crate::spec::TraceSpec;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Reverse names are looked up for at most this long, all hops at once.
pub const NAME_WAIT: Duration = Duration::from_millis(1_000);
/// Gap between the probes of one round.
const SPACING: Duration = Duration::from_millis(3);

/// One test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct TraceProbe {
    pub spec: TraceSpec,
    pub tier: u8,
}
super::spec_probe!(TraceProbe, TraceSpec);

impl TraceProbe {
    pub fn new(host: impl Into<String>) -> Self {
        TraceProbe {
            spec: TraceSpec::new(host),
            tier: 1,
        }
    }
}

struct HopData {
    ttl: u8,
    sent: u32,
    /// Who answered at this TTL (the first one kept; several mean ECMP).
    ip: Option<IpAddr>,
    rtts: Vec<f64>,
    unreachable: bool,
}

impl HopData {
    fn new(ttl: u8) -> Self {
        HopData {
            ttl,
            sent: 0,
            ip: None,
            rtts: Vec::new(),
            unreachable: false,
        }
    }

    fn answer(&mut self, from: IpAddr, rtt: Duration) {
        self.ip.get_or_insert(from);
        self.rtts.push(ms(rtt));
    }

    fn received(&self) -> u32 {
        self.rtts.len() as u32
    }

    fn to_hop(&self, names: &HashMap<IpAddr, String>) -> Hop {
        let stats = SampleStats::of(&self.rtts);
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        Hop {
            ttl: self.ttl,
            ip: self.ip.map(|ip| ip.to_string()),
            name: self.ip.and_then(|ip| names.get(&ip).cloned()),
            sent: self.sent,
            received: self.received(),
            // A TTL never probed counts as all lost.
            loss_pct: if self.sent == 0 {
                100.0
            } else {
                super::loss_pct(self.sent, self.received())
            },
            min_ms: stats.map(|s| r(s.min)),
            mean_ms: stats.map(|s| r(s.mean)),
            max_ms: stats.map(|s| r(s.max)),
        }
    }
}

/// Reverse names of the hops' addresses, all asked at once of the system's
/// name server, each given at most [`NAME_WAIT`].
async fn lookup_names(hops: &[HopData]) -> HashMap<IpAddr, String> {
    let Some(server) = super::dns::system_nameserver() else {
        return HashMap::new();
    };
    let mut set = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    for ip in hops.iter().filter_map(|h| h.ip) {
        if seen.insert(ip) {
            set.spawn(async move { (ip, super::dns::reverse_name(ip, server, NAME_WAIT).await) });
        }
    }
    let mut names = HashMap::new();
    while let Some(Ok((ip, name))) = set.join_next().await {
        if let Some(n) = name {
            names.insert(ip, n);
        }
    }
    names
}

/// What sends a traceroute's probes: the ICMP session, or one TCP/UDP
/// socket per probe to a port.
#[derive(Clone)]
enum Sender {
    Icmp(Arc<Session>),
    #[cfg(target_os = "linux")]
    L4(TraceProtocol, std::net::SocketAddr),
}

impl Sender {
    #[cfg(target_os = "linux")]
    fn l4(p: TraceProtocol, to: std::net::SocketAddr) -> Result<Sender, ProbeError> {
        Ok(Sender::L4(p, to))
    }

    #[cfg(not(target_os = "linux"))]
    fn l4(p: TraceProtocol, _to: std::net::SocketAddr) -> Result<Sender, ProbeError> {
        Err(ProbeError::new(
            ErrorKind::Permission,
            format!(
                "a {} traceroute reads routers' answers from a socket's error queue, which \
                 only Linux offers an unprivileged program; use the ICMP traceroute here",
                p.as_str().to_uppercase()
            ),
        ))
    }

    /// One probe with `ttl`: what came back and, for a TCP target, how its
    /// port answered.
    async fn send(
        &self,
        dst: IpAddr,
        ttl: u8,
        wait: Duration,
    ) -> Result<(Outcome, Option<PortState>), ProbeError> {
        match self {
            Sender::Icmp(session) => {
                let echo = Echo {
                    dst,
                    ttl: Some(ttl),
                    payload: 32,
                    timeout: wait,
                };
                Ok((session.echo(echo).await?, None))
            }
            #[cfg(target_os = "linux")]
            Sender::L4(p, to) => {
                let heard = super::trace_l4::probe(*p, *to, ttl, wait).await?;
                Ok((heard.outcome, heard.port))
            }
        }
    }
}

impl Probe for TraceProbe {
    fn test_type(&self) -> TestType {
        TestType::Traceroute
    }

    fn target(&self) -> String {
        crate::spec::trace_id(&self.spec)
    }

    /// The rounds' pacing and the spacing of each round's probes, then the
    /// spec's limit for the last answers and the hop names.
    fn timeout(&self) -> Duration {
        self.interval * self.rounds.saturating_sub(1)
            + SPACING * u32::from(self.max_hops)
            + self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let dst = resolve_one(&self.host, self.family, m).await?;
        m.metrics.trace_protocol = Some(self.protocol.as_str().to_owned());
        let sender = match self.protocol {
            TraceProtocol::Icmp => {
                let only = SessionOptions {
                    only: self.method,
                    ..SessionOptions::default()
                };
                Sender::Icmp(Arc::new(Session::open_for(dst, only, m)?))
            }
            p => Sender::l4(p, std::net::SocketAddr::new(dst, self.port))?,
        };
        let mut port_state: Option<PortState> = None;
        let max = self.max_hops.max(1);
        let mut hops: Vec<HopData> = (1..=max).map(HopData::new).collect();
        // The target's distance once known: later rounds stop there.
        let mut reach: Option<u8> = None;
        let start = tokio::time::Instant::now();
        for round in 0..self.rounds.max(1) {
            tokio::time::sleep_until(start + self.interval * round).await;
            let last = reach.unwrap_or(max);
            let mut tasks = tokio::task::JoinSet::new();
            for ttl in 1..=last {
                let sender = sender.clone();
                let wait = self.reply_wait;
                let at = tokio::time::Instant::now() + SPACING * u32::from(ttl - 1);
                tasks.spawn(async move {
                    tokio::time::sleep_until(at).await;
                    (ttl, sender.send(dst, ttl, wait).await)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let Ok((ttl, outcome)) = joined else { continue };
                let h = &mut hops[usize::from(ttl - 1)];
                h.sent += 1;
                let (outcome, port) = outcome?;
                if port.is_some() && port_state.is_none() {
                    port_state = port;
                }
                match outcome {
                    Outcome::Reply { from, rtt } => {
                        h.answer(from, rtt);
                        if from == dst {
                            reach = Some(reach.map_or(ttl, |r| r.min(ttl)));
                        }
                    }
                    Outcome::TimeExceeded { from, rtt } => h.answer(from, rtt),
                    Outcome::Unreachable { from, rtt, .. } => {
                        h.answer(from, rtt);
                        // The target itself (or the last router) says stop.
                        if from == dst {
                            reach = Some(reach.map_or(ttl, |r| r.min(ttl)));
                        } else {
                            h.unreachable = true;
                        }
                    }
                    Outcome::TooBig { .. } | Outcome::Timeout => {}
                }
            }
        }
        // Hops end at the target; unanswered, at the last hop that answered plus one row of silence.
        let end = match reach {
            Some(r) => usize::from(r),
            None => hops
                .iter()
                .rposition(|h| h.received() > 0)
                .map_or(usize::from(max).min(3), |i| (i + 2).min(usize::from(max))),
        };
        hops.truncate(end);
        let names = if self.names {
            lookup_names(&hops).await
        } else {
            HashMap::new()
        };
        let out: Vec<Hop> = hops.iter().map(|h| h.to_hop(&names)).collect();
        m.metrics.reached = Some(reach.is_some());
        m.metrics.port_state = port_state
            .filter(|_| reach.is_some())
            .map(|p| p.as_str().to_owned());
        if let Some(last) = out.last().filter(|_| reach.is_some()) {
            m.latency_ms = last.mean_ms;
        }
        m.metrics.hops = Some(out);
        if reach.is_none() {
            let why = hops
                .iter()
                .rev()
                .find(|h| h.unreachable)
                .map(|h| format!("; hop {} reports it unreachable", h.ttl))
                .unwrap_or_default();
            return Err(ProbeError::new(
                if why.is_empty() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unreachable
                },
                format!("{dst} not reached within {max} hops{why}"),
            ));
        }
        Ok(())
    }
}
