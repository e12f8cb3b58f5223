//! Time to first byte, stamped on the connection itself.
//!
//! hyper's client hands a request to its connection task and the response
//! head back through a channel; stamping around `send_request` counts both
//! hand-offs (about 0.1 ms on a busy machine) as network time. [`Stamped`]
//! wraps the connection's byte stream (above TLS: plaintext) and notes the
//! instant the request's first bytes were written and the instant the
//! response's first bytes were read, as curl does in its own loop:
//!
//! - HTTP/1.1: the first write is the request; the first read after it is
//!   the response.
//!
//! A write is stamped *before* its system call, a read after its own: a
//! write to loopback wakes the server, which may take this core at once and
//! answer before the writer runs again, so a stamp taken after the write
//! returns can fall after the server's whole turnaround (TTFB of 20 µs was
//! seen against a Python server that needs 400 µs). Stamped this way the
//! TTFB can only err long, by a preemption, never short.
//! - HTTP/2: the connection also carries the client preface and SETTINGS
//!   both ways, so both directions are parsed into frames and the stamps are
//!   the write and the read holding the start of the HEADERS frame of
//!   stream 1 (the only request on a probe's connection).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// HTTP/2's client connection preface (RFC 9113 §3.4).
const H2_PREFACE: usize = 24;
const H2_FRAME_HEADER: usize = 9;
const H2_HEADERS: u8 = 0x1;

/// When the request left and the response began, as seen on the stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    pub request: Option<Instant>,
    pub response: Option<Instant>,
}

/// Finds the start of the HEADERS frame on stream 1 in a byte stream cut
/// into arbitrary pieces.
#[derive(Debug, Clone)]
struct FrameScan {
    /// Bytes still to pass over before the next frame header (the preface,
    /// or the rest of a frame's payload).
    skip: usize,
    head: [u8; H2_FRAME_HEADER],
    have: usize,
    /// When the frame header being gathered began.
    began: Option<Instant>,
}

impl FrameScan {
    fn new(preface: usize) -> FrameScan {
        FrameScan {
            skip: preface,
            head: [0; H2_FRAME_HEADER],
            have: 0,
            began: None,
        }
    }

    /// Feeds the next piece, which crossed the stream at `at`. Returns when
    /// the HEADERS frame of stream 1 began, once its header is whole.
    fn feed(&mut self, mut b: &[u8], at: Instant) -> Option<Instant> {
        while !b.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(b.len());
                self.skip -= n;
                b = &b[n..];
                continue;
            }
            let began = *self.began.get_or_insert(at);
            let n = (H2_FRAME_HEADER - self.have).min(b.len());
            self.head[self.have..self.have + n].copy_from_slice(&b[..n]);
            self.have += n;
            b = &b[n..];
            if self.have < H2_FRAME_HEADER {
                break;
            }
            let h = self.head;
            self.have = 0;
            self.began = None;
            let stream = u32::from_be_bytes([h[5] & 0x7f, h[6], h[7], h[8]]);
            if h[3] == H2_HEADERS && stream == 1 {
                return Some(began);
            }
            self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        }
        None
    }
}

enum Scan {
    /// HTTP/1.1: the first write, then the first read after it.
    Http1,
    /// HTTP/2: written and read frames.
    Http2 { out: FrameScan, inn: FrameScan },
}

struct State {
    scan: Scan,
    stamps: Stamps,
}

/// A byte stream that stamps the request and the response (see the module
/// notes). Clone the handle from [`Stamped::stamps`] before giving the
/// stream to hyper.
pub struct Stamped<S> {
    inner: S,
    state: Arc<Mutex<State>>,
}

/// Reads the stamps of a [`Stamped`] stream after it was handed away.
#[derive(Clone)]
pub struct StampsHandle(Arc<Mutex<State>>);

impl StampsHandle {
    pub fn get(&self) -> Stamps {
        self.0.lock().map(|s| s.stamps).unwrap_or_default()
    }
}

impl<S> Stamped<S> {
    pub fn new(inner: S, h2: bool) -> Stamped<S> {
        let scan = if h2 {
            Scan::Http2 {
                out: FrameScan::new(H2_PREFACE),
                inn: FrameScan::new(0),
            }
        } else {
            Scan::Http1
        };
        Stamped {
            inner,
            state: Arc::new(Mutex::new(State {
                scan,
                stamps: Stamps::default(),
            })),
        }
    }

    pub fn stamps(&self) -> StampsHandle {
        StampsHandle(Arc::clone(&self.state))
    }

    fn note_write(&self, b: &[u8], at: Instant) {
        let Ok(mut s) = self.state.lock() else { return };
        if b.is_empty() || s.stamps.request.is_some() {
            return;
        }
        let hit = match &mut s.scan {
            Scan::Http1 => Some(at),
            Scan::Http2 { out, .. } => out.feed(b, at),
        };
        s.stamps.request = hit;
    }

    fn note_read(&self, b: &[u8], at: Instant) {
        let Ok(mut s) = self.state.lock() else { return };
        if b.is_empty() || s.stamps.response.is_some() {
            return;
        }
        let request_sent = s.stamps.request.is_some();
        let hit = match &mut s.scan {
            Scan::Http1 => request_sent.then_some(at),
            // Frames are followed from the first byte, before the request too.
            Scan::Http2 { inn, .. } => inn.feed(b, at).filter(|_| request_sent),
        };
        s.stamps.response = hit;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let at = Instant::now();
            this.note_read(&buf.filled()[before..], at);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let before = Instant::now();
        let r = Pin::new(&mut this.inner).poll_write(cx, b);
        if let Poll::Ready(Ok(n)) = r {
            this.note_write(&b[..n.min(b.len())], before);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = Instant::now();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = r {
            for b in bufs {
                if n == 0 {
                    break;
                }
                let k = n.min(b.len());
                this.note_write(&b[..k], at);
                n -= k;
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(ty: u8, stream: u32, payload: usize) -> Vec<u8> {
        let mut f = vec![
            (payload >> 16) as u8,
            (payload >> 8) as u8,
            payload as u8,
            ty,
            0,
        ];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend(std::iter::repeat_n(0xab, payload));
        f
    }

    #[test]
    fn the_headers_frame_of_stream_1_is_found_across_any_cut() {
        // What a client writes: preface, SETTINGS, WINDOW_UPDATE, HEADERS.
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        assert_eq!(out.len(), H2_PREFACE);
        out.extend(frame(0x4, 0, 18));
        out.extend(frame(0x8, 0, 4));
        let headers_at = out.len();
        out.extend(frame(H2_HEADERS, 1, 40));
        let t0 = Instant::now();
        // Every cut of the stream into two pieces: the piece holding the
        // HEADERS frame's first byte is the one credited.
        for cut in 1..out.len() {
            let mut scan = FrameScan::new(H2_PREFACE);
            let (a, b) = out.split_at(cut);
            let (ta, tb) = (t0, t0 + Duration::from_millis(1));
            let hit = scan.feed(a, ta).or_else(|| scan.feed(b, tb));
            let want = if cut <= headers_at { tb } else { ta };
            assert_eq!(hit, Some(want), "cut at {cut}");
        }
        // One byte at a time.
        let mut scan = FrameScan::new(H2_PREFACE);
        let mut hit = None;
        for (i, b) in out.iter().enumerate() {
            let at = t0 + Duration::from_micros(i as u64);
            if let Some(h) = scan.feed(std::slice::from_ref(b), at) {
                hit = Some(h);
            }
        }
        assert_eq!(hit, Some(t0 + Duration::from_micros(headers_at as u64)));
    }

    #[test]
    fn other_streams_and_frame_types_are_passed_over() {
        // The server's SETTINGS, a HEADERS frame of stream 3, then stream 1's.
        let mut inn = frame(0x4, 0, 12);
        inn.extend(frame(H2_HEADERS, 3, 5));
        inn.extend(frame(0x0, 1, 7));
        let mut scan = FrameScan::new(0);
        let t = Instant::now();
        assert_eq!(scan.feed(&inn, t), None);
        assert_eq!(scan.feed(&frame(H2_HEADERS, 1, 3), t), Some(t));
    }

    #[tokio::test]
    async fn http1_stamps_the_request_write_and_the_first_read_after_it() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(1024);
        let mut s = Stamped::new(client, false);
        let h = s.stamps();
        assert_eq!(h.get(), Stamps::default());
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let sent = h.get().request.expect("the request's write");
        assert_eq!(h.get().response, None);
        let mut b = [0u8; 64];
        let n = server.read(&mut b).await.unwrap();
        assert!(n > 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        let st = h.get();
        assert_eq!(st.request, Some(sent), "the first write stays");
        let ttfb = st.response.unwrap() - sent;
        assert!(ttfb >= Duration::from_millis(5), "{ttfb:?}");
    }
}
