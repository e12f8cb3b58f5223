//! ICMP on Linux and macOS: a datagram ICMP socket where the OS allows it
//! to unprivileged users, a raw socket otherwise. One reader task per
//! session matches answers to requests in flight.

use super::{echo_request, parse_v4, parse_v6, Echo, ErrorMsg, Method, Outcome, Parsed};
use super::{ProbeError, SessionOptions};
use crate::model::ErrorKind;
use crate::probe::rxtime::{self, SentAt};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

#[cfg(target_os = "linux")]
pub(crate) use linux::{error_msg, queued_error};

/// What to do when no ICMP socket can be opened.
#[cfg(target_os = "linux")]
pub const ENABLE_HINT: &str = "allow unprivileged ICMP with \
     `sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (persist it in /etc/sysctl.d/), \
     or grant raw sockets with `sudo setcap cap_net_raw+ep \"$(command -v waddleperf)\"`, or run as root";
#[cfg(not(target_os = "linux"))]
pub const ENABLE_HINT: &str = "run as root to use a raw ICMP socket";

struct Pending {
    dst: IpAddr,
    sent: SentAt,
    tx: oneshot::Sender<Outcome>,
}

struct Shared {
    sock: UdpSocket,
    ipv6: bool,
    /// The identifier we put in requests.
    ident: u16,
    /// Raw sockets see every ICMP message on the host: answers must carry
    /// our identifier. Linux datagram sockets get only their own (the
    /// kernel rewrites the identifier), so there it is not compared.
    match_ident: bool,
    /// IPv4 raw sockets (and macOS datagram ones) hand over the IP header.
    with_ip_header: bool,
    next_seq: AtomicU16,
    pending: Mutex<HashMap<u16, Pending>>,
    /// Held while the TTL is set and the packet sent, so two sends never
    /// mix their TTLs.
    send_lock: Mutex<()>,
}

pub struct Session {
    shared: Arc<Shared>,
    method: Method,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn socket(ipv6: bool, method: Method, dont_fragment: bool) -> std::io::Result<Socket> {
    let (domain, proto) = if ipv6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ty = match method {
        Method::Datagram => Type::DGRAM,
        Method::Raw => Type::RAW,
        Method::WindowsApi => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the Windows ICMP API exists only on Windows",
            ))
        }
    };
    let s = Socket::new(domain, ty, Some(proto))?;
    s.set_nonblocking(true)?;
    #[cfg(target_os = "linux")]
    linux::configure(&s, ipv6, method, dont_fragment)?;
    #[cfg(target_os = "macos")]
    macos::configure(&s, ipv6, dont_fragment)?;
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    if dont_fragment {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "setting Don't Fragment is not supported on this OS",
        ));
    }
    Ok(s)
}

fn order(opts: SessionOptions) -> Vec<Method> {
    match opts.only {
        Some(m) => vec![m],
        None => vec![Method::Datagram, Method::Raw],
    }
}

pub fn available(ipv6: bool) -> Vec<(Method, Result<(), String>)> {
    [Method::Datagram, Method::Raw]
        .into_iter()
        .map(|m| {
            (
                m,
                socket(ipv6, m, false).map(drop).map_err(|e| e.to_string()),
            )
        })
        .collect()
}

impl Session {
    pub fn open(ipv6: bool, opts: SessionOptions) -> Result<Session, ProbeError> {
        let mut why = Vec::new();
        for method in order(opts) {
            let s = match socket(ipv6, method, opts.dont_fragment) {
                Ok(s) => s,
                Err(e) => {
                    why.push(format!("{method}: {e}"));
                    continue;
                }
            };
            // Replies are timed by their arrival in the kernel.
            rxtime::enable(&s);
            let std: std::net::UdpSocket = s.into();
            let sock = UdpSocket::from_std(std)
                .map_err(|e| ProbeError::io("registering the ICMP socket", &e))?;
            let shared = Arc::new(Shared {
                sock,
                ipv6,
                ident: fastrand::u16(..),
                match_ident: method == Method::Raw || cfg!(target_os = "macos"),
                with_ip_header: !ipv6 && (method == Method::Raw || cfg!(target_os = "macos")),
                next_seq: AtomicU16::new(fastrand::u16(..)),
                pending: Mutex::new(HashMap::new()),
                send_lock: Mutex::new(()),
            });
            let errqueue = cfg!(target_os = "linux") && method == Method::Datagram;
            let reader = tokio::spawn(read_loop(shared.clone(), errqueue));
            return Ok(Session {
                shared,
                method,
                reader,
            });
        }
        Err(ProbeError::new(
            ErrorKind::Permission,
            format!(
                "cannot open an ICMP{} socket ({}); {ENABLE_HINT}",
                if ipv6 { "v6" } else { "" },
                why.join("; ")
            ),
        ))
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub async fn echo(&self, e: Echo) -> Result<Outcome, ProbeError> {
        let sh = &self.shared;
        let seq = sh.next_seq.fetch_add(1, Ordering::Relaxed);
        let packet = echo_request(sh.ipv6, sh.ident, seq, e.payload);
        let to = SocketAddr::new(e.dst, 0);
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let mut retried = false;
        loop {
            let sent = {
                let _guard = lock(&sh.send_lock);
                if let Some(ttl) = e.ttl {
                    let r = if sh.ipv6 {
                        SockRef::from(&sh.sock).set_unicast_hops_v6(u32::from(ttl))
                    } else {
                        SockRef::from(&sh.sock).set_ttl_v4(u32::from(ttl))
                    };
                    r.map_err(|err| ProbeError::io("setting the TTL", &err))?;
                }
                // Registered before the send: the answer may beat our next line.
                if let Some(tx) = tx.take() {
                    let sent = SentAt::now();
                    let p = Pending {
                        dst: e.dst,
                        sent,
                        tx,
                    };
                    lock(&sh.pending).insert(seq, p);
                }
                sh.sock.try_send_to(&packet, to)
            };
            match sent {
                Ok(_) => break,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    // Take the request back, wait for room, send again.
                    tx = lock(&sh.pending).remove(&seq).map(|p| p.tx);
                    if tx.is_none() {
                        return Ok(Outcome::Timeout);
                    }
                    sh.sock
                        .writable()
                        .await
                        .map_err(|err| ProbeError::io("waiting to send an ICMP echo", &err))?;
                }
                Err(_) if !retried => {
                    // An ICMP error that came back for an earlier request
                    // (a router's Time Exceeded, Destination Unreachable,
                    // Fragmentation Needed) is kept as the socket's pending
                    // error until the reader takes it, and a send made
                    // before that fails with it instead of going out. The
                    // failed send consumed it: send once more, and this
                    // packet's own answer from the kernel is the one seen.
                    retried = true;
                    tx = lock(&sh.pending).remove(&seq).map(|p| p.tx);
                    if tx.is_none() {
                        return Ok(Outcome::Timeout);
                    }
                }
                Err(err) => {
                    lock(&sh.pending).remove(&seq);
                    if err.raw_os_error() == Some(nix::errno::Errno::EMSGSIZE as i32) {
                        return Ok(Outcome::TooBig {
                            from: None,
                            mtu: local_mtu(&sh.sock),
                        });
                    }
                    return Err(ProbeError::io(
                        &format!("sending an ICMP echo request to {}", e.dst),
                        &err,
                    ));
                }
            }
        }
        match tokio::time::timeout(e.timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => {
                lock(&sh.pending).remove(&seq);
                Ok(Outcome::Timeout)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The MTU the kernel knows for the socket's last destination, if it says.
fn local_mtu(_sock: &UdpSocket) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        linux::path_mtu(_sock)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

async fn read_loop(sh: Arc<Shared>, errqueue: bool) {
    let mut buf = vec![0u8; 65_536];
    let interest = if errqueue {
        Interest::READABLE | Interest::ERROR
    } else {
        Interest::READABLE
    };
    loop {
        let Ok(ready) = sh.sock.ready(interest).await else {
            return;
        };
        if ready.is_readable() {
            loop {
                match rxtime::recv(&sh.sock, &mut buf) {
                    Ok((n, Some(from), stamp)) => {
                        let at = Instant::now();
                        dispatch(&sh, &buf[..n], from.ip(), at, stamp);
                    }
                    Ok((_, None, _)) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // A queued socket error (reported once); its details
                    // come from the error queue below.
                    Err(_) => {
                        if !errqueue {
                            break;
                        }
                    }
                }
            }
        }
        #[cfg(target_os = "linux")]
        if errqueue {
            linux::drain_errqueue(&sh, &mut buf);
        }
    }
}

/// The request in flight with this sequence number, if it went to `dst`.
fn take(sh: &Shared, seq: u16, dst: IpAddr) -> Option<Pending> {
    let mut pending = lock(&sh.pending);
    match pending.get(&seq) {
        Some(p) if p.dst == dst => pending.remove(&seq),
        _ => None,
    }
}

fn dispatch(
    sh: &Shared,
    buf: &[u8],
    from: IpAddr,
    at: Instant,
    stamp: Option<std::time::SystemTime>,
) {
    let parsed = if sh.ipv6 {
        parse_v6(buf)
    } else {
        parse_v4(buf, sh.with_ip_header)
    };
    let Some(parsed) = parsed else {
        return;
    };
    let (ident, seq, dst) = match parsed {
        Parsed::Reply { ident, seq } => (ident, seq, from),
        Parsed::Error {
            ident, seq, dst, ..
        } => (ident, seq, dst),
    };
    if sh.match_ident && ident != sh.ident {
        return;
    }
    let Some(p) = take(sh, seq, dst) else {
        return;
    };
    let rtt = p.sent.rtt(at, stamp);
    let outcome = match parsed {
        Parsed::Reply { .. } => Outcome::Reply { from, rtt },
        Parsed::Error { kind, .. } => error_outcome(kind, from, rtt),
    };
    let _ = p.tx.send(outcome);
}

fn error_outcome(kind: ErrorMsg, from: IpAddr, rtt: std::time::Duration) -> Outcome {
    match kind {
        ErrorMsg::TimeExceeded => Outcome::TimeExceeded { from, rtt },
        ErrorMsg::Unreachable(code) => Outcome::Unreachable { from, rtt, code },
        ErrorMsg::TooBig(mtu) => Outcome::TooBig {
            from: Some(from),
            mtu,
        },
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // nix's socket-option macro expands to FFI calls
mod linux {
    use super::{dispatch_error, Shared};
    use super::{Method, UdpSocket};
    use nix::libc;
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
    use socket2::Socket;
    use std::net::IpAddr;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    sockopt_impl!(
        IpMtuDiscover,
        Both,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::c_int
    );
    sockopt_impl!(
        Ipv6MtuDiscover,
        Both,
        libc::IPPROTO_IPV6,
        libc::IPV6_MTU_DISCOVER,
        libc::c_int
    );

    pub fn configure(
        s: &Socket,
        ipv6: bool,
        method: Method,
        dont_fragment: bool,
    ) -> std::io::Result<()> {
        let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
        if method == Method::Datagram {
            // Routers' errors about our requests arrive on the error queue.
            if ipv6 {
                setsockopt(s, sockopt::Ipv6RecvErr, &true).map_err(io)?;
            } else {
                setsockopt(s, sockopt::Ipv4RecvErr, &true).map_err(io)?;
            }
        }
        if dont_fragment {
            // PROBE: set DF, never fragment, and ignore the kernel's cached
            // path MTU, so every size is really tried on the wire.
            if ipv6 {
                setsockopt(s, Ipv6MtuDiscover, &libc::IPV6_PMTUDISC_PROBE).map_err(io)?;
                setsockopt(s, sockopt::Ipv6DontFrag, &true).map_err(io)?;
            } else {
                setsockopt(s, IpMtuDiscover, &libc::IP_PMTUDISC_PROBE).map_err(io)?;
            }
        }
        Ok(())
    }

    pub fn path_mtu(sock: &UdpSocket) -> Option<u32> {
        getsockopt(sock, sockopt::IpMtu)
            .ok()
            .and_then(|m| u32::try_from(m).ok())
    }

    /// Reads every queued error: ICMP errors about our requests (time
    /// exceeded, unreachable, fragmentation needed) with the router that
    /// sent them, and local "message too long".
    pub fn drain_errqueue(sh: &Shared, buf: &mut [u8]) {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
        loop {
            let got = sh.sock.try_io(tokio::io::Interest::ERROR, || {
                let mut iov = [std::io::IoSliceMut::new(&mut buf[..])];
                // Room for the error (one message: the extended error and
                // the offender's address, 60 bytes for IPv6) and for the
                // arrival stamp that comes along with it (SO_TIMESTAMPNS is
                // on). Sized for the error alone, an IPv6 error was cut
                // (MSG_CTRUNC) and lost.
                let mut cmsg = nix::cmsg_space!(
                    libc::sock_extended_err,
                    libc::sockaddr_in6,
                    nix::sys::time::TimeSpec
                );
                let msg = recvmsg::<SockaddrStorage>(
                    sh.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
                )
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                let at = Instant::now();
                let dst = msg.address.and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|s| IpAddr::V4(s.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                });
                let mut err = None;
                let mut stamp = None;
                for c in msg.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmTimestampns(ts) = c {
                        stamp = Some(
                            std::time::SystemTime::UNIX_EPOCH
                                + std::time::Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32),
                        );
                    } else if let Some(e) = queued_error(c) {
                        err = Some(e);
                    }
                }
                Ok((msg.bytes, dst, err, at, stamp))
            });
            let Ok((n, dst, err, at, stamp)) = got else {
                return;
            };
            let (Some(dst), Some((ee, offender))) = (dst, err) else {
                continue;
            };
            // The queued packet is our own request: its sequence is at 6..8.
            let Some(seq) = buf
                .get(6..8)
                .filter(|_| n >= 8)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
            else {
                continue;
            };
            let Some(kind) = error_msg(&ee) else {
                continue;
            };
            dispatch_error(sh, kind, seq, dst, offender, at, stamp);
        }
    }

    /// An error-queue control message: the extended error and the address
    /// of whoever sent it (a router, or the target).
    pub fn queued_error(
        c: nix::sys::socket::ControlMessageOwned,
    ) -> Option<(libc::sock_extended_err, Option<IpAddr>)> {
        use nix::sys::socket::ControlMessageOwned as C;
        match c {
            C::Ipv4RecvErr(ee, off) => Some((
                ee,
                off.map(|o| IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(o.sin_addr.s_addr)))),
            )),
            C::Ipv6RecvErr(ee, off) => Some((
                ee,
                off.map(|o| IpAddr::V6(std::net::Ipv6Addr::from(o.sin6_addr.s6_addr))),
            )),
            _ => None,
        }
    }

    /// What a queued extended error says, for ICMP and ICMPv6 alike.
    pub fn error_msg(ee: &libc::sock_extended_err) -> Option<super::ErrorMsg> {
        use super::ErrorMsg;
        Some(match (ee.ee_origin, ee.ee_type, ee.ee_code) {
            (libc::SO_EE_ORIGIN_ICMP, 11, _) | (libc::SO_EE_ORIGIN_ICMP6, 3, _) => {
                ErrorMsg::TimeExceeded
            }
            (libc::SO_EE_ORIGIN_ICMP, 3, 4) | (libc::SO_EE_ORIGIN_ICMP6, 2, _) => {
                ErrorMsg::TooBig(Some(ee.ee_info).filter(|m| *m >= 68))
            }
            (libc::SO_EE_ORIGIN_ICMP, 3, c) | (libc::SO_EE_ORIGIN_ICMP6, 1, c) => {
                ErrorMsg::Unreachable(c)
            }
            (libc::SO_EE_ORIGIN_LOCAL, _, _) if ee.ee_errno == libc::EMSGSIZE as u32 => {
                ErrorMsg::TooBig(Some(ee.ee_info).filter(|m| *m >= 68))
            }
            _ => return None,
        })
    }
}

/// An error read from the error queue, already matched to a sequence.
#[cfg(target_os = "linux")]
fn dispatch_error(
    sh: &Shared,
    kind: ErrorMsg,
    seq: u16,
    dst: IpAddr,
    offender: Option<IpAddr>,
    at: Instant,
    stamp: Option<std::time::SystemTime>,
) {
    let Some(p) = take(sh, seq, dst) else {
        return;
    };
    // The error's arrival stamp (the router's packet, as a reply's is).
    let rtt = p.sent.rtt(at, stamp);
    let outcome = match (kind, offender) {
        (ErrorMsg::TooBig(mtu), from) => Outcome::TooBig { from, mtu },
        (kind, Some(from)) => error_outcome(kind, from, rtt),
        (_, None) => return,
    };
    let _ = p.tx.send(outcome);
}

#[cfg(target_os = "macos")]
mod macos {
    use nix::sys::socket::{setsockopt, sockopt};
    use socket2::Socket;

    pub fn configure(s: &Socket, ipv6: bool, dont_fragment: bool) -> std::io::Result<()> {
        let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
        if dont_fragment {
            if ipv6 {
                setsockopt(s, sockopt::Ipv6DontFrag, &true).map_err(io)?;
            } else {
                setsockopt(s, sockopt::IpDontFrag, &true).map_err(io)?;
            }
        }
        Ok(())
    }
}
