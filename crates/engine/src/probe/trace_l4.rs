//! TCP and UDP traceroute probes (Linux), unprivileged: one socket per
//! probe with its TTL set and `IP_RECVERR` on, so a router's "time
//! exceeded" about the probe lands on the socket's error queue with the
//! router's address, as the ICMP datagram socket's do.
//!
//! - TCP: a non-blocking connect sends the SYN. A router where the TTL runs
//!   out answers time exceeded; the target answers SYN-ACK (the connect
//!   completes: the port is open) or RST (refused: closed). Either way the
//!   target is reached.
//! - UDP: one small datagram on a connected socket. The target answers port
//!   unreachable when nothing listens on the port, or a datagram when
//!   something does; both count as reached.

use super::icmp::Outcome;
use super::ProbeError;
use crate::kinds::{PortState, TraceProtocol};
use crate::model::ErrorKind;
use nix::libc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::Interest;

/// What one probe heard, and for a TCP target how its port answered.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    pub outcome: Outcome,
    pub port: Option<PortState>,
}

fn io_err(what: &str, e: std::io::Error) -> ProbeError {
    ProbeError::new(ErrorKind::Io, format!("{what}: {e}"))
}

/// Opens the probe's socket: TTL (hop limit) and error queueing set.
fn open(proto: TraceProtocol, dst: SocketAddr, ttl: u8) -> Result<Socket, ProbeError> {
    use nix::sys::socket::{setsockopt, sockopt};
    let (ty, p) = match proto {
        TraceProtocol::Udp => (Type::DGRAM, Protocol::UDP),
        _ => (Type::STREAM, Protocol::TCP),
    };
    let s = Socket::new(Domain::for_address(dst), ty, Some(p))
        .map_err(|e| io_err("opening a probe socket", e))?;
    s.set_nonblocking(true)
        .map_err(|e| io_err("a probe socket", e))?;
    let set = match dst {
        SocketAddr::V4(_) => s.set_ttl_v4(u32::from(ttl)).and_then(|()| {
            setsockopt(&s, sockopt::Ipv4RecvErr, &true).map_err(std::io::Error::from)
        }),
        SocketAddr::V6(_) => s.set_unicast_hops_v6(u32::from(ttl)).and_then(|()| {
            setsockopt(&s, sockopt::Ipv6RecvErr, &true).map_err(std::io::Error::from)
        }),
    };
    set.map_err(|e| io_err("setting the probe's TTL", e))?;
    Ok(s)
}

/// One probe with `ttl` to `dst`, waiting at most `wait` for an answer.
pub async fn probe(
    proto: TraceProtocol,
    dst: SocketAddr,
    ttl: u8,
    wait: Duration,
) -> Result<Heard, ProbeError> {
    let s = open(proto, dst, ttl)?;
    let start = Instant::now();
    let addr = SockAddr::from(dst);
    let started = match proto {
        TraceProtocol::Udp => s
            .connect(&addr)
            .and_then(|()| s.send(b"waddleperf traceroute").map(drop)),
        _ => s.connect(&addr),
    };
    match started {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        // Refused at once (loopback): the target answered.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Ok(reached(dst, start, Some(PortState::Closed)))
        }
        Err(e) => return Err(ProbeError::io(&format!("probe to {dst}"), &e)),
    }
    // Tokio watches the socket; the probe reads it by its descriptor.
    let sock = Watched::new(proto, s).map_err(|e| io_err("watching a probe socket", e))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, sock.ready()).await {
            Err(_) => {
                return Ok(Heard {
                    outcome: Outcome::Timeout,
                    port: None,
                })
            }
            Ok(r) => r.map_err(|e| io_err("waiting on a probe socket", e))?,
        }
        if let Some(heard) = read_error(sock.fd(), dst, start) {
            return Ok(heard);
        }
        match &sock {
            Watched::Udp(u) => {
                let mut buf = [0u8; 64];
                match u.try_recv(&mut buf) {
                    Ok(_) => return Ok(reached(dst, start, None)),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return Ok(reached(dst, start, None))
                    }
                    // Nothing yet (the readiness is cleared) or a passing error.
                    Err(_) => {}
                }
            }
            Watched::Tcp(t) => match t.take_error() {
                Ok(None) => {
                    if t.peer_addr().is_ok() {
                        return Ok(reached(dst, start, Some(PortState::Open)));
                    }
                    // A wake with nothing to read: clear it and wait again.
                    let _ = t.try_io(Interest::WRITABLE, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                }
                Ok(Some(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Ok(reached(dst, start, Some(PortState::Closed)))
                }
                // An error with nothing queued (e.g. no route): say so.
                Ok(Some(e)) => return Err(ProbeError::io(&format!("probe to {dst}"), &e)),
                Err(e) => return Err(io_err("reading a probe's state", e)),
            },
        }
    }
}

/// A probe's socket in Tokio's hands.
enum Watched {
    Tcp(tokio::net::TcpStream),
    Udp(tokio::net::UdpSocket),
}

impl Watched {
    fn new(proto: TraceProtocol, s: Socket) -> std::io::Result<Watched> {
        Ok(match proto {
            TraceProtocol::Udp => Watched::Udp(tokio::net::UdpSocket::from_std(s.into())?),
            _ => Watched::Tcp(tokio::net::TcpStream::from_std(s.into())?),
        })
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Watched::Tcp(t) => t.as_fd(),
            Watched::Udp(u) => u.as_fd(),
        }
    }

    /// Until something happened: an answer, a connect ended, an error queued.
    async fn ready(&self) -> std::io::Result<()> {
        match self {
            Watched::Tcp(t) => t
                .ready(Interest::WRITABLE | Interest::ERROR)
                .await
                .map(drop),
            Watched::Udp(u) => u
                .ready(Interest::READABLE | Interest::ERROR)
                .await
                .map(drop),
        }
    }
}

fn reached(dst: SocketAddr, start: Instant, port: Option<PortState>) -> Heard {
    Heard {
        outcome: Outcome::Reply {
            from: dst.ip(),
            rtt: start.elapsed(),
        },
        port,
    }
}

/// Reads one queued ICMP error about the probe: time exceeded from a
/// router, or unreachable (from the target: its UDP port is closed).
fn read_error(sock: std::os::fd::BorrowedFd<'_>, dst: SocketAddr, start: Instant) -> Option<Heard> {
    use super::icmp::{error_msg, queued_error, ErrorMsg};
    use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
    let rtt = start.elapsed();
    let mut buf = [0u8; 128];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    // "Port unreachable": 3 in ICMP, 4 in ICMPv6.
    let port_unreachable = if dst.is_ipv4() { 3 } else { 4 };
    for (ee, from) in msg.cmsgs().ok()?.filter_map(queued_error) {
        let from = from.unwrap_or(dst.ip());
        let outcome = match error_msg(&ee) {
            Some(ErrorMsg::TimeExceeded) => Outcome::TimeExceeded { from, rtt },
            // From the target: a closed UDP port, reached.
            Some(ErrorMsg::Unreachable(c)) if c == port_unreachable && from == dst.ip() => {
                Outcome::Reply { from, rtt }
            }
            Some(ErrorMsg::Unreachable(code)) => Outcome::Unreachable { from, rtt, code },
            Some(ErrorMsg::TooBig(_)) | None => continue,
        };
        return Some(Heard {
            outcome,
            port: None,
        });
    }
    None
}
