//! UDP echo: `count` datagrams `interval` apart to an echo peer (RFC 862,
//! e.g. `waddleperf serve --udp-echo PORT`). Each carries a tag, a session
//! number and a sequence number; a reply counts only if it comes from the
//! probed address (the socket is connected to it), carries this test's tag
//! and session, and answers a datagram not yet answered. A datagram written
//! is not a reply: success needs replies.
//!
//! The round trip is the network's, as ping's is: our own responder writes
//! how long the datagram spent in it (from the kernel's arrival stamp to
//! its reply leaving) into a field the probe leaves unfilled, and the probe
//! takes that off, the way a TWAMP reflector reports its processing time
//! (RFC 5357). A plain echo peer returns the field unfilled and the whole
//! round trip stands.

use super::rxtime::SentAt;
use super::{ms, record_samples, resolve_one, Probe, ProbeError};
use crate::model::{ErrorKind, Measurement, TestType};
use crate::spec::{HostPort, UdpSpec};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;

pub const TAG: &[u8; 4] = b"WPUE";
/// Tag, session, sequence.
pub const HEADER: usize = 12;
/// Bytes 12..20 of a datagram of at least this size: the responder's
/// turnaround in nanoseconds (u64, big-endian), sent as [`UNFILLED`].
pub const STAMPED: usize = 20;
pub const UNFILLED: [u8; 8] = [0xff; 8];

/// One UDP echo test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct UdpProbe {
    pub spec: UdpSpec,
    pub tier: u8,
}
super::spec_probe!(UdpProbe, UdpSpec);

impl UdpProbe {
    pub fn new(address: HostPort) -> Self {
        UdpProbe {
            spec: UdpSpec::new(address),
            tier: 1,
        }
    }
}

/// The next datagram: its length, when it was read, and when the kernel
/// received it (where the OS says).
async fn recv_stamped(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, Instant, Option<std::time::SystemTime>)> {
    #[cfg(unix)]
    loop {
        sock.readable().await?;
        match super::rxtime::recv(sock, buf) {
            Ok((n, _, stamp)) => return Ok((n, Instant::now(), stamp)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let n = sock.recv(buf).await?;
        Ok((n, Instant::now(), None))
    }
}

/// The sequence number of a reply to `session`, if it is one, and the
/// responder's turnaround if it filled it in.
fn parse_reply(b: &[u8], session: u32) -> Option<(usize, Option<Duration>)> {
    if b.len() < HEADER || &b[..4] != TAG || b[4..8] != session.to_be_bytes() {
        return None;
    }
    let seq = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
    let turnaround = b
        .get(HEADER..STAMPED)
        .filter(|f| *f != UNFILLED)
        .and_then(|f| <[u8; 8]>::try_from(f).ok())
        .map(|f| Duration::from_nanos(u64::from_be_bytes(f)));
    Some((seq, turnaround))
}

/// Writes the responder's turnaround into a probe's datagram that asks for
/// it (ours, long enough, the field unfilled): from the kernel's arrival
/// stamp, or from the read when there is none, to now.
fn fill_turnaround(b: &mut [u8], kernel: Option<SystemTime>, read: Instant) {
    if b.len() < STAMPED || &b[..4] != TAG || b[HEADER..STAMPED] != UNFILLED {
        return;
    }
    let since_read = read.elapsed();
    // The wall-clock stamp only when it agrees with the monotonic clock.
    let turnaround = kernel
        .and_then(|k| SystemTime::now().duration_since(k).ok())
        .filter(|d| *d >= since_read && *d < Duration::from_secs(1))
        .unwrap_or(since_read);
    let nanos = u64::try_from(turnaround.as_nanos()).unwrap_or(u64::MAX - 1);
    b[HEADER..STAMPED].copy_from_slice(&nanos.to_be_bytes());
}

impl Probe for UdpProbe {
    fn test_type(&self) -> TestType {
        TestType::Udp
    }

    fn target(&self) -> String {
        self.address.to_string()
    }

    fn timeout(&self) -> Duration {
        super::sampled_limit(self.count, self.interval, self.timeout)
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let ip = resolve_one(&self.address.host, self.family, m).await?;
        let peer = SocketAddr::new(ip, self.address.port);
        let local = super::net::local_any(peer);
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| ProbeError::io("opening a UDP socket", &e))?;
        #[cfg(unix)]
        super::rxtime::enable(&sock);
        // Connected: the kernel delivers only datagrams from the peer.
        sock.connect(peer)
            .await
            .map_err(|e| ProbeError::io(&format!("UDP to {peer}"), &e))?;

        let session: u32 = fastrand::u32(..);
        let count = self.count as usize;
        let mut packet = vec![0u8; self.size.max(HEADER)];
        packet[..4].copy_from_slice(TAG);
        packet[4..8].copy_from_slice(&session.to_be_bytes());
        for (i, b) in packet[HEADER..].iter_mut().enumerate() {
            *b = b"WaddlePerf"[i % 10];
        }
        if packet.len() >= STAMPED {
            packet[HEADER..STAMPED].copy_from_slice(&UNFILLED);
        }
        let mut sent_at: Vec<Option<SentAt>> = vec![None; count];
        let mut rtt: Vec<Option<f64>> = vec![None; count];
        let mut answered = 0usize;
        let mut refused = false;
        let mut buf = vec![0u8; 65_536];
        let start = tokio::time::Instant::now();
        let mut next = 0usize;
        let mut last_send = start;
        loop {
            // `next` datagrams went out, every one of them answered: done.
            if next == count && answered == count {
                break;
            }
            let send_at = start + self.interval * next as u32;
            let deadline = last_send + self.reply_wait;
            tokio::select! {
                biased;
                r = recv_stamped(&sock, &mut buf) => {
                    match r {
                        Ok((n, at, stamp)) => {
                            let Some((seq, turnaround)) = parse_reply(&buf[..n], session) else { continue };
                            let Some(Some(t0)) = sent_at.get(seq) else { continue };
                            if rtt[seq].is_none() {
                                let round_trip = t0.rtt(at, stamp);
                                // The responder's own time, when it says and it fits.
                                let network = turnaround
                                    .and_then(|t| round_trip.checked_sub(t))
                                    .unwrap_or(round_trip);
                                rtt[seq] = Some(ms(network));
                                answered += 1;
                            }
                        }
                        // ICMP port unreachable for an earlier datagram.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
                        Err(e) => return Err(ProbeError::io(&format!("receiving from {peer}"), &e)),
                    }
                }
                _ = tokio::time::sleep_until(send_at), if next < count => {
                    packet[8..12].copy_from_slice(&(next as u32).to_be_bytes());
                    let t0 = SentAt::now();
                    match sock.send(&packet).await {
                        Ok(_) => {
                            sent_at[next] = Some(t0);
                            last_send = tokio::time::Instant::now();
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            // The error belongs to an earlier datagram; this one is sent again next turn.
                            refused = true;
                            continue;
                        }
                        Err(e) => return Err(ProbeError::io(&format!("sending to {peer}"), &e)),
                    }
                    next += 1;
                }
                _ = tokio::time::sleep_until(deadline), if next == count => break,
            }
        }
        let samples: Vec<f64> = rtt.iter().flatten().copied().collect();
        record_samples(m, self.count, &samples);
        if !samples.is_empty() {
            return Ok(());
        }
        Err(if refused {
            ProbeError::new(
                ErrorKind::Refused,
                format!("nothing listens on UDP {peer} (ICMP port unreachable)"),
            )
        } else {
            ProbeError::new(
                ErrorKind::Timeout,
                format!(
                    "100 % loss: no echo of any of {} datagrams from {peer}",
                    self.count
                ),
            )
        })
    }
}

/// The UDP echo responder (`waddleperf serve --udp-echo`): returns every
/// datagram to its sender until an error ends it, unchanged but for a
/// WaddlePerf probe's turnaround field (see the module's notes). A blocking
/// loop on its own thread: a reply leaves as soon as the kernel wakes the
/// thread, with no event-loop hand-off.
pub fn serve_echo(sock: &std::net::UdpSocket) -> std::io::Result<()> {
    sock.set_nonblocking(false)?;
    #[cfg(unix)]
    super::rxtime::enable(sock);
    let mut buf = vec![0u8; 65_536];
    loop {
        #[cfg(unix)]
        let received = super::rxtime::recv_blocking(sock, &mut buf);
        #[cfg(not(unix))]
        let received = sock.recv_from(&mut buf).map(|(n, f)| (n, Some(f), None));
        let read = Instant::now();
        let (n, from, stamp) = match received {
            Ok((n, Some(from), stamp)) => (n, from, stamp),
            Ok((_, None, _)) => continue,
            // A previous reply's ICMP error (Windows reports it here), or a
            // signal: keep serving.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        fill_turnaround(&mut buf[..n], stamp, read);
        if let Err(e) = sock.send_to(&buf[..n], from) {
            tracing::debug!("echo to {from}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_must_carry_tag_and_session() {
        let mut p = vec![0u8; 16];
        p[..4].copy_from_slice(TAG);
        p[4..8].copy_from_slice(&7u32.to_be_bytes());
        p[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(parse_reply(&p, 7), Some((3, None)), "a plain echo's field");
        assert_eq!(parse_reply(&p, 8), None, "another test's reply");
        assert_eq!(parse_reply(&p[..11], 7), None, "truncated");
        p[0] = b'X';
        assert_eq!(parse_reply(&p, 7), None, "not ours");
    }

    #[test]
    fn the_responder_fills_only_a_probes_unfilled_field() {
        let mut p = vec![0u8; 32];
        p[..4].copy_from_slice(TAG);
        p[4..8].copy_from_slice(&7u32.to_be_bytes());
        p[HEADER..STAMPED].copy_from_slice(&UNFILLED);
        let echoed = p.clone();
        assert_eq!(
            parse_reply(&echoed, 7),
            Some((0, None)),
            "returned unfilled"
        );
        let arrived = SystemTime::now() - Duration::from_micros(250);
        fill_turnaround(&mut p, Some(arrived), Instant::now());
        let (_, t) = parse_reply(&p, 7).unwrap();
        let t = t.expect("filled");
        assert!(
            t >= Duration::from_micros(250) && t < Duration::from_secs(1),
            "{t:?}"
        );
        // Filled once: a second pass (a loop of two responders) keeps it.
        let before = p.clone();
        fill_turnaround(&mut p, Some(arrived), Instant::now());
        assert_eq!(p, before);
        // Not ours, or too short: returned as it came.
        let mut other = vec![0xffu8; 32];
        fill_turnaround(&mut other, None, Instant::now());
        assert_eq!(other, vec![0xffu8; 32]);
        let mut short = echoed[..16].to_vec();
        fill_turnaround(&mut short, None, Instant::now());
        assert_eq!(short, echoed[..16]);
        // A kernel stamp that disagrees with the monotonic clock (a step):
        // the time since the read stands.
        let mut q = echoed.clone();
        let read = Instant::now() - Duration::from_micros(100);
        fill_turnaround(
            &mut q,
            Some(SystemTime::now() + Duration::from_secs(5)),
            read,
        );
        let t = parse_reply(&q, 7).unwrap().1.unwrap();
        assert!(
            t >= Duration::from_micros(100) && t < Duration::from_secs(1),
            "{t:?}"
        );
    }

    #[tokio::test]
    async fn loopback_echo_has_every_reply_and_a_silent_port_has_none() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || serve_echo(&sock));
        let mut p = UdpProbe::new(addr.into());
        p.count = 5;
        p.interval = Duration::from_millis(10);
        let r = p.run().await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.metrics.sent, Some(5));
        assert_eq!(r.metrics.received, Some(5));
        assert_eq!(r.metrics.loss_pct, Some(0.0));
        assert!(r.latency_ms.unwrap() < 50.0);

        // A plain echo peer (RFC 862): every datagram back as it came.
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while let Ok((n, from)) = plain.recv_from(&mut b) {
                let _ = plain.send_to(&b[..n], from);
            }
        });
        let mut p = UdpProbe::new(addr.into());
        p.count = 5;
        p.interval = Duration::from_millis(10);
        let r = p.run().await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.metrics.received, Some(5));

        // A bound socket that never answers: 100 % loss, as a result.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut p = UdpProbe::new(silent.local_addr().unwrap().into());
        p.count = 3;
        p.interval = Duration::from_millis(10);
        p.reply_wait = Duration::from_millis(200);
        let r = p.run().await;
        assert!(!r.success);
        assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
        assert_eq!(r.metrics.loss_pct, Some(100.0));
        assert_eq!(r.metrics.received, Some(0));
    }
}
