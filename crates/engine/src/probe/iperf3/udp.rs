//! UDP data streams: datagrams paced at a set bitrate, each stamped with
//! its send time (seconds and microseconds) and a sequence number (u32, big
//! endian, from 1), as iperf3 writes them. The receiving side counts loss
//! from gaps in the sequence, out-of-order arrivals, and jitter as iperf3
//! does (RFC 1889's smoothed transit difference), so a download's figures
//! compare with the server's for an upload.

use super::{Counted, Live, Window};
use crate::probe::ProbeError;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;

/// Datagram payload bytes: fits a 1500-byte MTU over IPv6 too.
pub(super) const DATAGRAM: usize = 1400;
/// The 4 bytes a stream opens with and how often and how long it waits for
/// the server's 4-byte answer.
const HELLO: [u8; 4] = 0x3637_3839u32.to_le_bytes();
const HELLO_TRIES: u32 = 3;
const HELLO_WAIT: Duration = Duration::from_secs(1);
/// The pacing tick: at most this long between bursts.
const TICK: Duration = Duration::from_millis(1);
/// The sequence header: seconds, microseconds, counter.
const HEADER: usize = 12;

/// Opens one UDP stream: the datagram that tells the server where we are,
/// and its answer.
pub(super) async fn open(addr: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0u8; 4], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let s = UdpSocket::bind(local)
        .await
        .map_err(|e| ProbeError::io("open a UDP socket", &e))?;
    s.connect(addr)
        .await
        .map_err(|e| ProbeError::io(&format!("open a UDP stream to {addr}"), &e))?;
    let mut answer = [0u8; 64];
    for _ in 0..HELLO_TRIES {
        s.send(&HELLO)
            .await
            .map_err(|e| ProbeError::io("send the UDP stream's hello", &e))?;
        match tokio::time::timeout(HELLO_WAIT, s.recv(&mut answer)).await {
            Ok(Ok(_)) => return Ok(s),
            Ok(Err(e)) => return Err(ProbeError::io("read the UDP stream's answer", &e)),
            Err(_) => continue,
        }
    }
    Err(ProbeError::new(
        crate::model::ErrorKind::Timeout,
        format!(
            "the iperf3 server did not answer a UDP stream's hello on {addr} \
             ({HELLO_TRIES} tries, {} s apart): is UDP blocked on the way?",
            HELLO_WAIT.as_secs()
        ),
    ))
}

fn stamp(buf: &mut [u8], seq: u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // iperf3's header holds the seconds in 32 bits: they wrap in 2106.
    buf[0..4].copy_from_slice(&(now.as_secs() as u32).to_be_bytes());
    buf[4..8].copy_from_slice(&now.subsec_micros().to_be_bytes());
    buf[8..12].copy_from_slice(&seq.to_be_bytes());
}

/// Sends datagrams at `bitrate` bits per second until the window ends.
pub(super) async fn send(
    id: u32,
    s: UdpSocket,
    w: Window,
    bitrate: u64,
    live: Live,
) -> Result<(Counted, UdpSocket), ProbeError> {
    let mut buf = [0x55u8; DATAGRAM];
    let per_second = bitrate as f64 / 8.0;
    let start = Instant::now();
    let (mut bytes, mut seq) = (0u64, 0u32);
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        let due = now.duration_since(start).as_secs_f64() * per_second;
        while (bytes as f64) < due {
            seq = seq.wrapping_add(1);
            stamp(&mut buf, seq);
            match s.send(&buf).await {
                Ok(n) => {
                    bytes += n as u64;
                    live.add_up(n);
                }
                // The interface queue is full: that datagram is not sent.
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                    seq = seq.wrapping_sub(1);
                    break;
                }
                Err(e) => return Err(ProbeError::io("send to the iperf3 server", &e)),
            }
        }
        tokio::time::sleep(TICK).await;
    }
    let c = Counted {
        bytes,
        packets: u64::from(seq),
        seconds: Instant::now().duration_since(start).as_secs_f64(),
        ..Counted::new(id, true)
    };
    Ok((c, s))
}

#[cfg(unix)]
const ENOBUFS: i32 = nix::errno::Errno::ENOBUFS as i32;
#[cfg(windows)]
const ENOBUFS: i32 = windows_sys::Win32::Networking::WinSock::WSAENOBUFS;

/// Loss, order and jitter of one received stream, as iperf3 counts them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Arrivals {
    /// The highest sequence number seen.
    pub highest: u64,
    pub lost: u64,
    pub out_of_order: u64,
    pub jitter_s: f64,
    prev_transit: Option<f64>,
}

impl Arrivals {
    /// One datagram with sequence `seq`, sent at `sent_s` and received at
    /// `arrived_s` (seconds on each side's wall clock: only differences
    /// between datagrams count, so the clocks need not agree).
    pub fn record(&mut self, seq: u64, sent_s: f64, arrived_s: f64) {
        if seq > self.highest {
            self.lost += seq - self.highest - 1;
            self.highest = seq;
        } else {
            // A late one: it was counted lost when the gap opened.
            self.out_of_order += 1;
            self.lost = self.lost.saturating_sub(1);
        }
        let transit = arrived_s - sent_s;
        let d = (transit - self.prev_transit.unwrap_or(transit)).abs();
        self.prev_transit = Some(transit);
        self.jitter_s += (d - self.jitter_s) / 16.0;
    }
}

/// Receives datagrams until the window ends, counting those inside it.
pub(super) async fn receive(
    id: u32,
    s: UdpSocket,
    w: Window,
    live: Live,
) -> Result<(Counted, UdpSocket), ProbeError> {
    let mut buf = vec![0u8; 65_536];
    let mut a = Arrivals::default();
    let mut bytes = 0u64;
    let mut started = None;
    while Instant::now() < w.end {
        let left = w.end.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, s.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(ProbeError::io("receive from the iperf3 server", &e)),
            Err(_) => break,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        started.get_or_insert_with(Instant::now);
        if n < HEADER {
            continue;
        }
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let sent = f64::from(word(0)) + f64::from(word(4)) / 1e6;
        bytes += n as u64;
        live.add_down(n);
        a.record(u64::from(word(8)), sent, now);
    }
    let started = started.unwrap_or(w.omit_end).min(w.end);
    let c = Counted {
        bytes,
        seconds: w.end.saturating_duration_since(started).as_secs_f64(),
        packets: a.highest,
        lost: a.lost,
        out_of_order: Some(a.out_of_order),
        jitter_s: a.jitter_s,
        ..Counted::new(id, false)
    };
    Ok((c, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_lost_late_ones_out_of_order() {
        let mut a = Arrivals::default();
        for (seq, t) in [(1, 0.0), (2, 0.01), (5, 0.04), (3, 0.02), (6, 0.05)] {
            a.record(seq, t, t + 0.1);
        }
        assert_eq!(a.highest, 6);
        assert_eq!(a.out_of_order, 1);
        assert_eq!(a.lost, 1, "3 and 4 missing when 5 came, 3 came late");
        assert!(a.jitter_s.abs() < 1e-12, "constant transit: no jitter");
    }

    #[test]
    fn jitter_follows_transit_changes() {
        let mut a = Arrivals::default();
        // Transit alternates 10 ms and 12 ms: every difference is 2 ms; the
        // smoothed figure converges on it.
        for seq in 1..=400u64 {
            let sent = seq as f64 * 0.001;
            let transit = if seq % 2 == 0 { 0.012 } else { 0.010 };
            a.record(seq, sent, sent + transit);
        }
        assert!((a.jitter_s - 0.002).abs() < 1e-6, "{}", a.jitter_s);
        assert_eq!((a.lost, a.out_of_order), (0, 0));
    }

    #[test]
    fn the_stamp_is_big_endian_with_the_sequence_last() {
        let mut b = [0u8; HEADER];
        stamp(&mut b, 0x0102_0304);
        assert_eq!(&b[8..12], &[1, 2, 3, 4]);
        let us = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        assert!(us < 1_000_000);
    }
}
