//! Port check: a TCP connect to each listed port of one host, a few at a
//! time. Each port is `open` (the connect was accepted), `closed` (the host
//! answered with a reset) or `filtered` (no answer within the wait, or a
//! router or firewall reported it unreachable), with the time the answer
//! took. A reachability check, not a scanner: the ports are the few a
//! service needs, listed by the user, never a sweep.
//!
//! The test succeeds when every port is open; otherwise it fails naming the
//! ports that are not, and the per-port states are kept either way.

use super::{ms, resolve_one, Probe, ProbeError};
use crate::kinds::PortState;
use crate::model::{ErrorKind, Measurement, PortResult, TestType};
use crate::spec::PortsSpec;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One check: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct PortsProbe {
    pub spec: PortsSpec,
    pub tier: u8,
}
super::spec_probe!(PortsProbe, PortsSpec);

impl PortsProbe {
    pub fn new(host: impl Into<String>, ports: Vec<u16>) -> Self {
        PortsProbe {
            spec: PortsSpec::new(host, ports),
            tier: 1,
        }
    }
}

/// Connects to `addr` once: how the port answered and when.
pub async fn connect_state(addr: SocketAddr, wait: Duration) -> PortResult {
    let start = Instant::now();
    let outcome = tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr)).await;
    let took = Some(ms(start.elapsed()));
    let (state, connect_ms) = match outcome {
        Ok(Ok(_stream)) => (PortState::Open, took),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            (PortState::Closed, took)
        }
        // No route, ICMP unreachable (host, network, administratively
        // prohibited), or silence: something on the way keeps it out.
        Ok(Err(_)) | Err(_) => (PortState::Filtered, None),
    };
    PortResult {
        port: addr.port(),
        state,
        connect_ms,
    }
}

impl Probe for PortsProbe {
    fn test_type(&self) -> TestType {
        TestType::Ports
    }

    fn target(&self) -> String {
        crate::spec::ports_id(&self.spec)
    }

    /// Every wave of connects at its full wait, then the spec's allowance.
    fn timeout(&self) -> Duration {
        let waves = self.ports.len().div_ceil(self.concurrency.max(1)) as u32;
        self.connect_wait * waves + self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        self.spec
            .check()
            .map_err(|e| ProbeError::new(ErrorKind::Config, e.to_string()))?;
        let ip: IpAddr = resolve_one(&self.host, self.family, m).await?;
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (i, &port) in self.ports.iter().enumerate() {
            let gate = gate.clone();
            let wait = self.connect_wait;
            set.spawn(async move {
                let _slot = gate.acquire_owned().await;
                (i, connect_state(SocketAddr::new(ip, port), wait).await)
            });
        }
        let mut found: Vec<Option<PortResult>> = vec![None; self.ports.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                found[i] = Some(r);
            }
        }
        let results: Vec<PortResult> = found.into_iter().flatten().collect();
        let open: Vec<f64> = results
            .iter()
            .filter(|r| r.state == PortState::Open)
            .filter_map(|r| r.connect_ms)
            .collect();
        if !open.is_empty() {
            let mean = open.iter().sum::<f64>() / open.len() as f64;
            m.latency_ms = Some((mean * 1000.0).round() / 1000.0);
        }
        let not_open: Vec<String> = results
            .iter()
            .filter(|r| r.state != PortState::Open)
            .map(|r| format!("{} {}", r.port, r.state.as_str()))
            .collect();
        let any_closed = results.iter().any(|r| r.state == PortState::Closed);
        m.metrics.ports = Some(results);
        if not_open.is_empty() {
            return Ok(());
        }
        Err(ProbeError::new(
            if any_closed {
                ErrorKind::Refused
            } else {
                ErrorKind::Timeout
            },
            format!("not open on {ip}: {}", not_open.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_loopback_ports() {
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let open = listener.local_addr().map(|a| a.port()).unwrap_or(1);
        // A port just freed: nothing listens there any more.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0");
            l.and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(1)
        };
        let p = PortsProbe::new("127.0.0.1", vec![open, closed]);
        let m = p.run().await;
        let ports = m.metrics.ports.clone().unwrap_or_default();
        assert_eq!(ports.len(), 2, "{m:?}");
        assert_eq!((ports[0].port, ports[0].state), (open, PortState::Open));
        assert_eq!((ports[1].port, ports[1].state), (closed, PortState::Closed));
        assert!(!m.success);
        assert_eq!(m.error_kind, Some(ErrorKind::Refused));
        assert!(m
            .error
            .as_deref()
            .unwrap_or("")
            .contains(&format!("{closed} closed")));
        assert_eq!(m.target, format!("127.0.0.1:{open},{closed}"));
    }

    #[test]
    fn port_lists_are_parsed_strictly() {
        assert_eq!(
            PortsSpec::parse_ports("22, 80,443").ok(),
            Some(vec![22, 80, 443])
        );
        assert_eq!(
            PortsSpec::parse_ports("80,80,8000-8002").ok(),
            Some(vec![80, 8000, 8001, 8002])
        );
        for bad in ["", "0", "22,,80", "x", "+80", "65536", "90-80", "1-65535"] {
            assert!(PortsSpec::parse_ports(bad).is_err(), "{bad}");
        }
    }
}
