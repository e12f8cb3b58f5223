//! Timed name resolution and TCP connect, shared by the HTTP and TCP probes.

use super::{ms, ProbeError};
use crate::model::ErrorKind;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Addresses for a host, and how long the system resolver took (`None` when
/// the host was an address literal and nothing was resolved).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub addrs: Vec<SocketAddr>,
    pub dns_ms: Option<f64>,
}

/// Resolves `host` through the operating system's resolver, the way the
/// user's applications do. IP literals (bracketed or not) skip resolution.
pub async fn resolve(host: &str, port: u16) -> Result<Resolved, ProbeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Resolved {
            addrs: vec![SocketAddr::new(ip, port)],
            dns_ms: None,
        });
    }
    let start = Instant::now();
    let found = tokio::net::lookup_host((bare, port)).await;
    let dns_ms = ms(start.elapsed());
    let addrs: Vec<SocketAddr> = found
        .map_err(|e| ProbeError::new(ErrorKind::Dns, format!("cannot resolve `{bare}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(ProbeError::new(
            ErrorKind::Dns,
            format!("`{bare}` resolved to no addresses"),
        ));
    }
    Ok(Resolved {
        addrs,
        dns_ms: Some(dns_ms),
    })
}

/// The wildcard local address of `peer`'s family, port 0: where a UDP
/// socket that talks to `peer` binds.
pub fn local_any(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// A connected socket, the address it reached and the connect time of the
/// attempt that succeeded.
#[derive(Debug)]
pub struct Connected {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub connect_ms: f64,
}

/// How long an attempt has before the next address is tried alongside it
/// (RFC 8305's "connection attempt delay").
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects the way browsers do (Happy Eyeballs, RFC 8305): addresses are
/// tried in the resolver's order with the families interleaved; when an
/// attempt has not succeeded within [`ATTEMPT_DELAY`] (or has failed), the
/// next one starts beside it; the first to connect wins and the others are
/// dropped. A broken IPv6 path therefore costs 250 ms, not the test's whole
/// timeout. The connect time is that of the winning attempt alone.
pub async fn connect(addrs: &[SocketAddr]) -> Result<Connected, ProbeError> {
    let order = interleave(addrs);
    let mut pending = order.into_iter();
    let mut attempts = tokio::task::JoinSet::new();
    let mut last_err = None;
    let start_next = |set: &mut tokio::task::JoinSet<_>, addr: SocketAddr| {
        set.spawn(async move {
            let start = Instant::now();
            let res = TcpStream::connect(addr).await;
            (addr, res, ms(start.elapsed()))
        });
    };
    match pending.next() {
        Some(addr) => start_next(&mut attempts, addr),
        None => {
            return Err(ProbeError::new(
                ErrorKind::Config,
                "no address to connect to",
            ))
        }
    }
    loop {
        let outcome = if pending.len() > 0 {
            match tokio::time::timeout(ATTEMPT_DELAY, attempts.join_next()).await {
                Ok(joined) => joined,
                Err(_) => {
                    // Still waiting: start the next address beside it.
                    if let Some(addr) = pending.next() {
                        start_next(&mut attempts, addr);
                    }
                    continue;
                }
            }
        } else {
            attempts.join_next().await
        };
        let Some(joined) = outcome else {
            // Every attempt finished without success.
            return Err(last_err
                .unwrap_or_else(|| ProbeError::new(ErrorKind::Io, "no connection attempt ran")));
        };
        match joined {
            Ok((addr, Ok(stream), connect_ms)) => {
                // Small requests must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                attempts.abort_all();
                return Ok(Connected {
                    stream,
                    addr,
                    connect_ms,
                });
            }
            Ok((addr, Err(e), _)) => {
                last_err = Some(ProbeError::io(&format!("connect to {addr}"), &e));
                // A failure starts the next attempt at once.
                if let Some(addr) = pending.next() {
                    start_next(&mut attempts, addr);
                }
            }
            Err(e) => last_err = Some(ProbeError::new(ErrorKind::Io, format!("connect task: {e}"))),
        }
    }
}

/// The resolver's order with address families alternating, starting with
/// the family of the first address (RFC 8305 §4).
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (VecDeque<SocketAddr>, VecDeque<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first.is_ipv6());
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        match (same.pop_front(), other.pop_front()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_alternate_in_resolver_order() {
        let a: Vec<SocketAddr> = ["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(&a).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]
        );
        assert!(interleave(&[]).is_empty());
    }
}
