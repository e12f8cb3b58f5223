//! The small vocabularies every layer shares: how an HTTP test picks its
//! protocol, what a TCP test does after connecting, an address family, an
//! ICMP sending method. The config file, the specs, the probes, the results
//! and the UI all name them the same way.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the HTTP probe picks a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum HttpMode {
    /// HTTPS: offer `h2` and `http/1.1` over ALPN and use what the server picks.
    /// Plain HTTP: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (over TLS via ALPN; over plain HTTP with prior knowledge).
    Http2,
    /// HTTP/3 over QUIC (HTTPS only).
    Http3,
}

/// What the TCP probe does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum TcpMode {
    #[default]
    Raw,
    Tls,
    Ssh,
}

/// An address family a test may be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

/// How echoes are sent on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP`: no privilege needed where allowed.
    Datagram,
    /// `SOCK_RAW`: needs root or `CAP_NET_RAW`.
    Raw,
    /// The Windows ICMP helper API.
    WindowsApi,
}

impl Method {
    /// The name results and the CLI use: `datagram`, `raw`, `windows_api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Datagram => "datagram",
            Method::Raw => "raw",
            Method::WindowsApi => "windows_api",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "datagram" => Ok(Method::Datagram),
            "raw" => Ok(Method::Raw),
            "windows_api" | "windows" => Ok(Method::WindowsApi),
            other => Err(format!(
                "unknown ICMP method `{other}` (datagram, raw or windows_api)"
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Datagram => "unprivileged datagram ICMP socket",
            Method::Raw => "raw ICMP socket",
            Method::WindowsApi => "Windows ICMP API (IcmpSendEcho2)",
        })
    }
}

/// The kind of server a bandwidth test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum BandwidthKind {
    /// An iperf3 server (`iperf3 -s`), over the iperf3 protocol.
    #[default]
    Iperf3,
    /// A WaddlePerf test server's HTTP speed test (`/speedtest/*`), as
    /// `waddleperf serve` answers it.
    Waddleperf,
    /// A LibreSpeed server (`garbage`, `empty`, with or without `.php`).
    Librespeed,
    /// A responsiveness server (`/.well-known/nq`): RPM after the IETF
    /// IPPM method.
    Rpm,
}

impl BandwidthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BandwidthKind::Iperf3 => "iperf3",
            BandwidthKind::Waddleperf => "waddleperf",
            BandwidthKind::Librespeed => "librespeed",
            BandwidthKind::Rpm => "rpm",
        }
    }
}

/// Which way a bandwidth test loads the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Direction {
    /// From this machine to the server.
    #[default]
    Upload,
    /// From the server to this machine (iperf3 `--reverse`).
    Download,
    /// Both at once (iperf3 `--bidir`).
    Bidir,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::Bidir => "bidir",
        }
    }
}

impl HttpMode {
    /// The name the config file and target ids use.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMode::Auto => "auto",
            HttpMode::Http1 => "http1",
            HttpMode::Http2 => "http2",
            HttpMode::Http3 => "http3",
        }
    }
}

/// What a traceroute sends: ICMP echo requests, TCP SYNs to a port (paths
/// whose firewalls drop ICMP echo still show their hops; the target answers
/// SYN-ACK or RST), or UDP datagrams to a port (the target answers port
/// unreachable when nothing listens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum TraceProtocol {
    #[default]
    Icmp,
    Tcp,
    Udp,
}

impl TraceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Icmp => "icmp",
            TraceProtocol::Tcp => "tcp",
            TraceProtocol::Udp => "udp",
        }
    }
}

/// How a TCP port answered a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum PortState {
    /// The connection was accepted (SYN-ACK).
    Open,
    /// Refused: the host answered with a reset (RST).
    Closed,
    /// No answer within the wait, or a router or firewall said it is
    /// unreachable: something on the way drops or blocks it.
    Filtered,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
        }
    }
}
