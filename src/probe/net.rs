//! Timed name resolution and TCP connect, shared by the HTTP and TCP probes.

use super::{ms, ProbeError};
use crate::model::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
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

/// A connected socket, the address it reached and the connect time of the
/// attempt that succeeded.
#[derive(Debug)]
pub struct Connected {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub connect_ms: f64,
}

/// Connects to the addresses in order until one answers. The connect time
/// is that of the successful attempt alone (earlier refusals are not added).
pub async fn connect(addrs: &[SocketAddr]) -> Result<Connected, ProbeError> {
    let mut last = None;
    for &addr in addrs {
        let start = Instant::now();
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let connect_ms = ms(start.elapsed());
                // Small requests must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(Connected {
                    stream,
                    addr,
                    connect_ms,
                });
            }
            Err(e) => last = Some(ProbeError::io(&format!("connect to {addr}"), &e)),
        }
    }
    Err(last.unwrap_or_else(|| ProbeError::new(ErrorKind::Config, "no address to connect to")))
}
