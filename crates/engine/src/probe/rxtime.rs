//! Kernel receive timestamps (`SO_TIMESTAMPNS` on Linux, `SO_TIMESTAMP`
//! elsewhere on Unix): the time a reply reached the host, not the time this
//! process got round to reading it. Sampled probes (ICMP, UDP) measure RTT
//! from the send to that stamp, as `ping` does, so a busy machine's
//! wake-up latency does not inflate their figures.

use std::time::{Duration, Instant, SystemTime};

/// When a request went out, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct SentAt {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl SentAt {
    pub fn now() -> SentAt {
        SentAt {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// The round trip to a reply read at `read_at` and stamped `kernel` on
    /// arrival. The kernel stamp is used when it is consistent with the
    /// monotonic clock (not after the read, not before the send, no clock
    /// step in between); else the monotonic read time.
    pub fn rtt(&self, read_at: Instant, kernel: Option<SystemTime>) -> Duration {
        let mono = read_at.saturating_duration_since(self.mono);
        match kernel.and_then(|k| k.duration_since(self.wall).ok()) {
            Some(k) if k <= mono && mono - k < Duration::from_millis(100) => k,
            _ => mono,
        }
    }
}

#[cfg(unix)]
pub use unix::{enable, recv, recv_blocking};

#[cfg(unix)]
mod unix {
    use super::*;
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
    };
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use tokio::io::Interest;
    use tokio::net::UdpSocket;

    /// Turns receive timestamps on; `false` if the OS refused.
    pub fn enable<S: AsFd>(s: &S) -> bool {
        #[cfg(target_os = "linux")]
        let r = setsockopt(s, sockopt::ReceiveTimestampns, &true);
        #[cfg(not(target_os = "linux"))]
        let r = setsockopt(s, sockopt::ReceiveTimestamp, &true);
        r.is_ok()
    }

    /// A datagram: its length, sender and kernel arrival time.
    pub type Received = (usize, Option<SocketAddr>, Option<SystemTime>);

    /// One datagram without waiting (`WouldBlock` when none is queued).
    pub fn recv(sock: &UdpSocket, buf: &mut [u8]) -> std::io::Result<Received> {
        sock.try_io(Interest::READABLE, || {
            recv_fd(sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
        })
    }

    /// The next datagram on a blocking socket (the echo responder's).
    pub fn recv_blocking(sock: &std::net::UdpSocket, buf: &mut [u8]) -> std::io::Result<Received> {
        recv_fd(sock.as_raw_fd(), buf, MsgFlags::empty())
    }

    fn recv_fd(fd: RawFd, buf: &mut [u8], flags: MsgFlags) -> std::io::Result<Received> {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), flags)
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
        let from = msg.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| SocketAddr::new(IpAddr::V4(s.ip()), s.port()))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|s| SocketAddr::new(IpAddr::V6(s.ip()), s.port()))
                })
        });
        let mut stamp = None;
        for c in msg.cmsgs().into_iter().flatten() {
            match c {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    stamp = Some(
                        SystemTime::UNIX_EPOCH
                            + Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32),
                    )
                }
                ControlMessageOwned::ScmTimestamp(tv) => {
                    stamp = Some(
                        SystemTime::UNIX_EPOCH
                            + Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000),
                    )
                }
                _ => {}
            }
        }
        Ok((msg.bytes, from, stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_stamp_is_used_only_when_consistent() {
        let s = SentAt::now();
        let read = s.mono + Duration::from_millis(31);
        let k = |ms: u64| Some(s.wall + Duration::from_millis(ms));
        assert_eq!(s.rtt(read, k(30)), Duration::from_millis(30));
        assert_eq!(s.rtt(read, None), Duration::from_millis(31));
        // After the read: a clock step; before the send: likewise.
        assert_eq!(s.rtt(read, k(40)), Duration::from_millis(31));
        assert_eq!(
            s.rtt(read, Some(s.wall - Duration::from_millis(5))),
            Duration::from_millis(31)
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn loopback_datagrams_carry_a_kernel_stamp() {
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(enable(&b));
        let sent = SentAt::now();
        a.send_to(b"x", b.local_addr().unwrap()).await.unwrap();
        b.readable().await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from, stamp) = recv(&b, &mut buf).unwrap();
        assert_eq!((n, from), (1, Some(a.local_addr().unwrap())));
        let stamp = stamp.expect("a kernel timestamp");
        assert!(stamp >= sent.wall);
        assert!(sent.rtt(Instant::now(), Some(stamp)) < Duration::from_millis(100));
    }
}
