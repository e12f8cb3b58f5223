//! TCP data streams: blocks written or read as fast as the path takes them
//! until the window ends, bytes counted only after slow start (`omit`).

use super::{Counted, Live, Window, BLOCK};
use crate::probe::ProbeError;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes asked for per read.
const READ_BUF: usize = 1 << 20;

/// Sends blocks until the window ends; counts the bytes inside it. The
/// stream is handed back: it stays open until the test ends.
pub(super) async fn send(
    id: u32,
    mut s: TcpStream,
    w: Window,
    live: Live,
) -> Result<(Counted, TcpStream), ProbeError> {
    let block = vec![0x55u8; BLOCK];
    let (mut total, mut at_omit, mut omit_seen) = (0u64, 0u64, None);
    // One timer for the whole window, not one per write.
    let deadline = tokio::time::sleep_until(w.end.into());
    tokio::pin!(deadline);
    while Instant::now() < w.end {
        tokio::select! {
            biased;
            r = s.write(&block) => match r {
                Ok(n) => {
                    total += n as u64;
                    if omit_seen.is_some() {
                        live.add_up(n);
                    }
                }
                Err(e) => return Err(ProbeError::io("send to the iperf3 server", &e)),
            },
            () = &mut deadline => break,
        }
        if omit_seen.is_none() && Instant::now() >= w.omit_end {
            omit_seen = Some(Instant::now());
            at_omit = total;
        }
    }
    let started = omit_seen.unwrap_or(w.omit_end);
    let c = Counted {
        bytes: total - at_omit,
        seconds: Instant::now()
            .saturating_duration_since(started)
            .as_secs_f64(),
        retransmits: crate::probe::tcp_info::total_retrans(&s),
        ..Counted::new(id, true)
    };
    Ok((c, s))
}

/// Reads until the window ends, counting the bytes inside it. What the
/// server sends after (until it sees the test end) is left unread.
pub(super) async fn receive(
    id: u32,
    mut s: TcpStream,
    w: Window,
    live: Live,
) -> Result<(Counted, TcpStream), ProbeError> {
    // Reads as large as the kernel will hand over at once: fewer calls.
    let mut buf = vec![0u8; READ_BUF];
    let (mut counted, mut open) = (0u64, true);
    let mut started = None;
    let deadline = tokio::time::sleep_until(w.end.into());
    tokio::pin!(deadline);
    while open && Instant::now() < w.end {
        tokio::select! {
            biased;
            r = s.read(&mut buf) => match r {
                Ok(0) => open = false,
                Ok(n) => {
                    let now = Instant::now();
                    if now >= w.omit_end {
                        started.get_or_insert(now);
                        counted += n as u64;
                        live.add_down(n);
                    }
                }
                Err(e) => return Err(ProbeError::io("receive from the iperf3 server", &e)),
            },
            () = &mut deadline => break,
        }
    }
    let started = started.unwrap_or(w.omit_end).min(w.end);
    let c = Counted {
        bytes: counted,
        seconds: w.end.saturating_duration_since(started).as_secs_f64(),
        ..Counted::new(id, false)
    };
    Ok((c, s))
}
