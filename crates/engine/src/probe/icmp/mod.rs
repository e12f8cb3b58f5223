//! ICMP echo, the primitive under the ping, traceroute and path MTU probes.
//!
//! A [`Session`] sends echo requests (with a chosen TTL, size and Don't
//! Fragment) and resolves each one to an [`Outcome`]: the target's reply, a
//! router's "time exceeded", an "unreachable", a "too big", or nothing in
//! time. Many echoes may be in flight at once; each is matched to its answer
//! by sequence number (and, on raw sockets, by identifier and target).
//!
//! Platform back ends (behind the same type):
//! - Linux and macOS: an unprivileged datagram ICMP socket when the OS
//!   allows it (Linux: the user's group is in `net.ipv4.ping_group_range`),
//!   else a raw socket (root or `CAP_NET_RAW`). On Linux a datagram socket
//!   learns of routers' errors through its error queue (`IP_RECVERR`).
//! - Windows: `IcmpSendEcho2` / `Icmp6SendEcho2`, which needs no privilege.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
use unix as sys;
/// Reading an error queue (`IP_RECVERR`), shared with the TCP/UDP traceroute.
#[cfg(target_os = "linux")]
pub(crate) use unix::{error_msg, queued_error};
#[cfg(windows)]
use windows as sys;

use super::ProbeError;
use std::net::IpAddr;
use std::time::Duration;

/// IPv4 header (without options) plus ICMP header: payload + 28 = packet.
pub const V4_OVERHEAD: u32 = 28;
/// IPv6 header plus ICMPv6 header: payload + 48 = packet.
pub const V6_OVERHEAD: u32 = 48;

pub use crate::kinds::Method;

/// Options a session is opened with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Set Don't Fragment and never fragment locally (path MTU discovery):
    /// a packet larger than the local link fails at once as [`Outcome::TooBig`].
    pub dont_fragment: bool,
    /// Use this method only (doctor and tests); `None` tries the datagram
    /// socket first, then a raw one.
    pub only: Option<Method>,
}

/// One echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub dst: IpAddr,
    /// IP TTL / hop limit; `None` leaves the system default.
    pub ttl: Option<u8>,
    /// ICMP payload bytes (as `ping -s`): the packet is this + 28 (IPv4) or + 48 (IPv6).
    pub payload: usize,
    pub timeout: Duration,
}

/// What became of one echo request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The target answered.
    Reply { from: IpAddr, rtt: Duration },
    /// A router on the way said the TTL ran out (traceroute).
    TimeExceeded { from: IpAddr, rtt: Duration },
    /// Destination unreachable (other than "fragmentation needed").
    Unreachable {
        from: IpAddr,
        rtt: Duration,
        code: u8,
    },
    /// The packet is larger than a link on the way allows: a router's
    /// "fragmentation needed" / "packet too big" (with its next-hop MTU when
    /// given), or the local interface refused it.
    TooBig {
        from: Option<IpAddr>,
        mtu: Option<u32>,
    },
    /// No answer within the echo's timeout.
    Timeout,
}

/// An open ICMP endpoint of one address family.
pub struct Session {
    inner: sys::Session,
}

impl Session {
    /// Opens a session for `family_of`'s address family.
    pub fn open(family_of: IpAddr, opts: SessionOptions) -> Result<Session, ProbeError> {
        Ok(Session {
            inner: sys::Session::open(family_of.is_ipv6(), opts)?,
        })
    }

    /// Opens a session for a probe's measurement, which then says which
    /// method sends its echoes (`icmp_method`).
    pub fn open_for(
        dst: IpAddr,
        opts: SessionOptions,
        m: &mut crate::model::Measurement,
    ) -> Result<Session, ProbeError> {
        let s = Session::open(dst, opts)?;
        m.metrics.icmp_method = Some(s.method().as_str().to_owned());
        Ok(s)
    }

    pub fn method(&self) -> Method {
        self.inner.method()
    }

    /// Sends one echo request and waits for what becomes of it.
    pub async fn echo(&self, e: Echo) -> Result<Outcome, ProbeError> {
        self.inner.echo(e).await
    }
}

/// Which methods this machine allows for a family, as `(method, Ok | why not)`.
pub fn available(ipv6: bool) -> Vec<(Method, Result<(), String>)> {
    sys::available(ipv6)
}

/// Builds an echo request: `type`, code 0, checksum, identifier, sequence,
/// then `payload` bytes of a recognisable pattern. The checksum is filled
/// for IPv4; for ICMPv6 the kernel computes it (it covers a pseudo-header).
pub fn echo_request(ipv6: bool, ident: u16, seq: u16, payload: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload);
    p.push(if ipv6 { 128 } else { 8 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload).map(|i| b"WaddlePerf"[i % 10]));
    if !ipv6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received ICMP message says, before it is matched to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Reply {
        ident: u16,
        seq: u16,
    },
    /// An error about one of our requests: `kind` and the request's
    /// identifier, sequence and destination (from the quoted packet).
    Error {
        kind: ErrorMsg,
        ident: u16,
        seq: u16,
        dst: IpAddr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMsg {
    TimeExceeded,
    Unreachable(u8),
    TooBig(Option<u32>),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Parses an ICMPv4 message; `with_ip_header` when the socket hands over the
/// IP header too (raw sockets; datagram sockets on macOS).
pub fn parse_v4(buf: &[u8], with_ip_header: bool) -> Option<Parsed> {
    let off = if with_ip_header {
        if buf.first()? >> 4 != 4 {
            return None;
        }
        usize::from(buf[0] & 0x0f) * 4
    } else {
        0
    };
    let icmp = buf.get(off..)?;
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    let kind = match (ty, code) {
        (0, _) => {
            return Some(Parsed::Reply {
                ident: be16(icmp, 4)?,
                seq: be16(icmp, 6)?,
            })
        }
        (11, _) => ErrorMsg::TimeExceeded,
        // Fragmentation needed: the next-hop MTU is in bytes 6..8 (RFC 1191), 0 if unknown.
        (3, 4) => ErrorMsg::TooBig(be16(icmp, 6).filter(|m| *m >= 68).map(u32::from)),
        (3, c) => ErrorMsg::Unreachable(c),
        _ => return None,
    };
    // The quoted original: IPv4 header, then at least 8 bytes of our ICMP header.
    let inner = icmp.get(8..)?;
    if inner.first()? >> 4 != 4 || *inner.get(9)? != 1 {
        return None;
    }
    let ihl = usize::from(inner[0] & 0x0f) * 4;
    let dst = IpAddr::from(<[u8; 4]>::try_from(inner.get(16..20)?).ok()?);
    let req = inner.get(ihl..)?;
    if *req.first()? != 8 {
        return None;
    }
    Some(Parsed::Error {
        kind,
        ident: be16(req, 4)?,
        seq: be16(req, 6)?,
        dst,
    })
}

/// Parses an ICMPv6 message (sockets never hand over the IPv6 header).
pub fn parse_v6(icmp: &[u8]) -> Option<Parsed> {
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    let kind = match ty {
        129 => {
            return Some(Parsed::Reply {
                ident: be16(icmp, 4)?,
                seq: be16(icmp, 6)?,
            })
        }
        3 => ErrorMsg::TimeExceeded,
        1 => ErrorMsg::Unreachable(code),
        2 => ErrorMsg::TooBig(Some(u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?))),
        _ => return None,
    };
    // The quoted original: a 40-byte IPv6 header (next header 58), then our ICMPv6 header.
    let inner = icmp.get(8..)?;
    if inner.first()? >> 4 != 6 || *inner.get(6)? != 58 {
        return None;
    }
    let dst = IpAddr::from(<[u8; 16]>::try_from(inner.get(24..40)?).ok()?);
    let req = inner.get(40..)?;
    if *req.first()? != 128 {
        return None;
    }
    Some(Parsed::Error {
        kind,
        ident: be16(req, 4)?,
        seq: be16(req, 6)?,
        dst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_request_verifies_to_zero() {
        let p = echo_request(false, 0x1234, 7, 56);
        assert_eq!(p.len(), 64);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        // RFC 1071's worked example: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    fn ipv4_header(proto: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    #[test]
    fn v4_reply_and_errors_are_parsed_with_and_without_ip_header() {
        let mut reply = echo_request(false, 0xbeef, 42, 8);
        reply[0] = 0;
        assert_eq!(
            parse_v4(&reply, false),
            Some(Parsed::Reply {
                ident: 0xbeef,
                seq: 42
            })
        );
        let mut framed = ipv4_header(1, [10, 0, 0, 2], [10, 0, 0, 1]);
        framed.extend_from_slice(&reply);
        assert_eq!(parse_v4(&framed, true), parse_v4(&reply, false));

        // Time exceeded quoting our request to 10.9.9.9.
        let mut te = ipv4_header(1, [10, 0, 0, 254], [10, 0, 0, 1]);
        te.extend_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]);
        te.extend_from_slice(&ipv4_header(1, [10, 0, 0, 1], [10, 9, 9, 9]));
        te.extend_from_slice(&echo_request(false, 0xbeef, 43, 0));
        assert_eq!(
            parse_v4(&te, true),
            Some(Parsed::Error {
                kind: ErrorMsg::TimeExceeded,
                ident: 0xbeef,
                seq: 43,
                dst: "10.9.9.9".parse().unwrap()
            })
        );
        // Fragmentation needed with next-hop MTU 1400.
        let mut fnd = ipv4_header(1, [10, 0, 0, 254], [10, 0, 0, 1]);
        fnd.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0x78]);
        fnd.extend_from_slice(&ipv4_header(1, [10, 0, 0, 1], [10, 9, 9, 9]));
        fnd.extend_from_slice(&echo_request(false, 1, 2, 0));
        assert!(matches!(
            parse_v4(&fnd, true),
            Some(Parsed::Error {
                kind: ErrorMsg::TooBig(Some(1400)),
                seq: 2,
                ..
            })
        ));
        // Garbage and truncation are ignored, never a panic.
        assert_eq!(parse_v4(&[], true), None);
        assert_eq!(parse_v4(&[0x45, 0, 0], true), None);
        assert_eq!(parse_v4(&te[..30], true), None);
        assert_eq!(parse_v4(&[0x60; 40], true), None);
    }

    #[test]
    fn v6_messages_are_parsed() {
        let mut reply = echo_request(true, 9, 10, 4);
        reply[0] = 129;
        assert_eq!(parse_v6(&reply), Some(Parsed::Reply { ident: 9, seq: 10 }));
        let mut ptb = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 16, 58, 64];
        ip6.extend_from_slice(&[0; 16]);
        let dst: std::net::Ipv6Addr = "fd00::2".parse().unwrap();
        ip6.extend_from_slice(&dst.octets());
        ptb.extend_from_slice(&ip6);
        ptb.extend_from_slice(&echo_request(true, 9, 11, 0));
        assert_eq!(
            parse_v6(&ptb),
            Some(Parsed::Error {
                kind: ErrorMsg::TooBig(Some(1280)),
                ident: 9,
                seq: 11,
                dst: IpAddr::V6(dst)
            })
        );
        assert_eq!(parse_v6(&ptb[..20]), None);
        assert_eq!(parse_v6(&[]), None);
    }
}
