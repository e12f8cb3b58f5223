//! A closed UDP port, heard at once (Linux). A QUIC client's socket is not
//! connected, so the kernel does not turn the peer's ICMP port unreachable
//! into an error on its reads; with `IP_RECVERR` the ICMP error is queued on
//! the socket instead, and the socket signals it. A watcher on a duplicate
//! of the socket waits for that signal and reads the queued error, so an
//! HTTP/3 test to a closed port ends in one round trip instead of after the
//! whole handshake wait. Only errors about the probed address count.

use nix::libc;
use std::net::SocketAddr;
use tokio::io::Interest;

/// Watches a UDP socket's error queue for the peer's port unreachable.
#[derive(Debug)]
pub struct Refusal {
    sock: tokio::net::UdpSocket,
    peer: SocketAddr,
}

/// Turns on error queueing for `socket` and watches a duplicate of it.
pub fn watch(socket: &std::net::UdpSocket, peer: SocketAddr) -> std::io::Result<Refusal> {
    use nix::sys::socket::{setsockopt, sockopt};
    let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
    match peer {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4RecvErr, &true).map_err(io)?,
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvErr, &true).map_err(io)?,
    }
    let dup = socket.try_clone()?;
    dup.set_nonblocking(true)?;
    Ok(Refusal {
        sock: tokio::net::UdpSocket::from_std(dup)?,
        peer,
    })
}

impl Refusal {
    /// Resolves `true` when the peer's port is reported closed; `false` if
    /// the socket can no longer be watched.
    pub async fn refused(&self) -> bool {
        loop {
            if self.sock.ready(Interest::ERROR).await.is_err() {
                return false;
            }
            loop {
                match self.sock.try_io(Interest::ERROR, || self.read_one()) {
                    Ok(true) => return true,
                    Ok(false) => continue,
                    // Empty (the readiness is cleared) or unreadable.
                    Err(_) => break,
                }
            }
        }
    }

    /// Reads one queued error: `true` for a port unreachable about the peer,
    /// `false` for anything else; `WouldBlock` when the queue is empty.
    fn read_one(&self) -> std::io::Result<bool> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        // Room for the error and for what quinn asks of every message
        // (packet info, TOS): with less, the error is cut off (MSG_CTRUNC).
        let mut cmsg = nix::cmsg_space!(
            libc::in6_pktinfo,
            libc::c_int,
            libc::c_int,
            libc::sock_extended_err,
            libc::sockaddr_in6
        );
        let msg = recvmsg::<SockaddrStorage>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
        let about_peer = msg.address.is_some_and(|a| {
            a.as_sockaddr_in()
                .map(|s| SocketAddr::from((s.ip(), s.port())))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|s| SocketAddr::from((s.ip(), s.port())))
                })
                == Some(self.peer)
        });
        let refused = msg.cmsgs().into_iter().flatten().any(|c| match c {
            ControlMessageOwned::Ipv4RecvErr(ee, _) | ControlMessageOwned::Ipv6RecvErr(ee, _) => {
                ee.ee_errno == libc::ECONNREFUSED as u32
            }
            _ => false,
        });
        Ok(about_peer && refused)
    }
}
