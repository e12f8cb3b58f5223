//! HTTP/3: one request on a new QUIC connection (quinn + h3). Phases:
//! `dns_ms` (system resolver), `connect_ms` = the QUIC handshake (transport
//! and TLS 1.3 together, one round trip; there is no separate `tls_ms`),
//! `ttfb_ms` from sending the request to the response head, `total_ms`.
//! A handshake that gets no answer is [`ErrorKind::Http3Unavailable`]:
//! UDP is blocked on the way or the server does not offer HTTP/3.
//!
//! Both the handshake and the time to first byte end when the datagram
//! that completed them was read off the socket, not when quinn and h3 have
//! finished decrypting, verifying the certificate and decoding the headers
//! ([`StampedUdp`]): that work is ours, not the network's. The handshake
//! starts when the first Initial datagram is written.

use super::net::resolve;
use super::tls;
use super::{ms, ProbeError};
use crate::model::{ErrorKind, Measurement};
use bytes::Buf;
use hyper::header::{HeaderValue, ACCEPT, USER_AGENT};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use url::Url;

pub const ALPN_H3: &[u8] = b"h3";

/// What one HTTP/3 request ended with.
pub struct H3Outcome {
    pub status: u16,
    pub location: Option<String>,
}

pub struct H3Request<'a> {
    pub url: &'a Url,
    pub host: &'a str,
    pub port: u16,
    pub insecure: bool,
    pub ca_file: Option<&'a Path>,
    /// How long the QUIC handshake may take before HTTP/3 counts as unavailable.
    pub handshake_timeout: Duration,
    pub max_body_bytes: u64,
}

pub async fn fetch(r: H3Request<'_>, m: &mut Measurement) -> Result<H3Outcome, ProbeError> {
    // Local set-up before the clock starts.
    let tls = tls::client_config(r.insecure, r.ca_file, &[ALPN_H3])?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ProbeError::new(ErrorKind::Tls, format!("QUIC TLS set-up: {e}")))?;
    let mut transport = quinn::TransportConfig::default();
    if let Ok(idle) = quinn::IdleTimeout::try_from(r.handshake_timeout) {
        transport.max_idle_timeout(Some(idle));
    }
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(Arc::new(transport));
    let name = r.host.trim_start_matches('[').trim_end_matches(']');

    let start = Instant::now();
    let resolved = resolve(r.host, r.port).await?;
    m.metrics.dns_ms = resolved.dns_ms;
    let addr = resolved.addrs[0];
    m.resolved_ip = Some(addr.ip().to_string());
    let (mut endpoint, wire) =
        stamped_endpoint(addr).map_err(|e| ProbeError::io("opening a UDP socket for QUIC", &e))?;
    endpoint.set_default_client_config(client);

    let t = Instant::now();
    let connecting = endpoint
        .connect(addr, name)
        .map_err(|e| ProbeError::new(ErrorKind::Config, format!("QUIC connect to {addr}: {e}")))?;
    // A closed UDP port answers with ICMP port unreachable: said at once,
    // not after the whole handshake wait.
    let conn = tokio::select! {
        c = tokio::time::timeout(r.handshake_timeout, connecting) => match c {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(connection_error(addr, &e, r.handshake_timeout)),
            Err(_) => return Err(unavailable(addr, r.handshake_timeout)),
        },
        _ = wire.port_closed() => return Err(ProbeError::new(
            ErrorKind::Http3Unavailable,
            format!("HTTP/3 unavailable: UDP port {} is closed at {} (ICMP port unreachable)", addr.port(), addr.ip()),
        )),
    };
    let handshake = wire.span(wire.first_send().unwrap_or(t), t);
    m.metrics.connect_ms = Some(ms(handshake));
    m.metrics.tls_version = Some("TLSv1.3".into());
    if let Some(certs) = conn.peer_identity().and_then(|id| {
        id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()
    }) {
        if let Some(f) = certs
            .first()
            .and_then(|c| tls::cert_facts(c.as_ref(), chrono::Utc::now().timestamp()))
        {
            m.metrics.cert_subject = Some(f.subject);
            m.metrics.cert_issuer = Some(f.issuer);
            m.metrics.cert_days_left = Some(f.days_left);
        }
    }

    let (mut driver, mut sender) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
        .await
        .map_err(|e| ProbeError::new(ErrorKind::Protocol, format!("HTTP/3 set-up: {e}")))?;
    let drive = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let result = exchange(&mut sender, &r, &wire, start, m).await;
    conn.close(0u32.into(), b"done");
    drive.abort();
    endpoint.close(0u32.into(), b"done");
    result
}

async fn exchange(
    sender: &mut h3::client::SendRequest<h3_quinn::OpenStreams, bytes::Bytes>,
    r: &H3Request<'_>,
    wire: &StampedUdp,
    start: Instant,
    m: &mut Measurement,
) -> Result<H3Outcome, ProbeError> {
    let req = http::Request::get(r.url.as_str())
        .header(
            USER_AGENT,
            HeaderValue::from_static(concat!("WaddlePerf/", env!("CARGO_PKG_VERSION"))),
        )
        .header(ACCEPT, "*/*")
        .body(())
        .map_err(|e| {
            ProbeError::new(
                ErrorKind::Config,
                format!("cannot build a request for `{}`: {e}", r.url),
            )
        })?;
    let sent = Instant::now();
    let h3err = |stage: &str, e: &dyn std::fmt::Display| {
        ProbeError::new(ErrorKind::Protocol, format!("HTTP/3 {stage}: {e}"))
    };
    let mut stream = sender
        .send_request(req)
        .await
        .map_err(|e| h3err("request", &e))?;
    stream.finish().await.map_err(|e| h3err("request", &e))?;
    let resp = stream
        .recv_response()
        .await
        .map_err(|e| h3err("response", &e))?;
    m.metrics.ttfb_ms = Some(ms(wire.span(sent, sent)));
    let status = resp.status().as_u16();
    m.metrics.status_code = Some(status);
    m.metrics.http_version = Some("3".into());
    let location = resp
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut count = super::body::BodyCount::new(r.max_body_bytes);
    while let Some(chunk) = stream
        .recv_data()
        .await
        .map_err(|e| h3err("reading the body", &e))?
    {
        if !count.add(chunk.remaining()) {
            break;
        }
    }
    count.record(m);
    super::body::record_transfer(m, start, sent, count.bytes);
    Ok(H3Outcome { status, location })
}

/// A client endpoint on a [`StampedUdp`] socket of `addr`'s family.
fn stamped_endpoint(addr: SocketAddr) -> std::io::Result<(quinn::Endpoint, Arc<StampedUdp>)> {
    let socket = std::net::UdpSocket::bind(super::net::local_any(addr))?;
    let runtime: Arc<dyn quinn::Runtime> = Arc::new(quinn::TokioRuntime);
    // Linux: the peer's ICMP port unreachable is heard on the socket's error
    // queue (see `udp_refusal`).
    #[cfg(target_os = "linux")]
    let refusal = super::udp_refusal::watch(&socket, addr)?;
    let wire = Arc::new(StampedUdp {
        inner: runtime.wrap_udp_socket(socket)?,
        stamps: Mutex::new(WireStamps::default()),
        #[cfg(target_os = "linux")]
        refusal,
    });
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        None,
        wire.clone(),
        runtime,
    )?;
    Ok((endpoint, wire))
}

/// quinn's UDP socket, noting when the first datagram was written and when
/// the latest one was read.
#[derive(Debug)]
pub struct StampedUdp {
    inner: Arc<dyn quinn::AsyncUdpSocket>,
    stamps: Mutex<WireStamps>,
    /// Hears the peer's port unreachable (Linux); dropped with the socket.
    #[cfg(target_os = "linux")]
    refusal: super::udp_refusal::Refusal,
}

#[derive(Debug, Default, Clone, Copy)]
struct WireStamps {
    first_send: Option<Instant>,
    last_recv: Option<Instant>,
}

impl StampedUdp {
    /// Resolves when the peer's UDP port is reported closed; never where
    /// that cannot be heard.
    async fn port_closed(&self) {
        #[cfg(target_os = "linux")]
        if self.refusal.refused().await {
            return;
        }
        std::future::pending::<()>().await
    }

    fn stamps(&self) -> WireStamps {
        match self.stamps.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn note(&self, f: impl FnOnce(&mut WireStamps)) {
        match self.stamps.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn first_send(&self) -> Option<Instant> {
        self.stamps().first_send
    }

    /// From `from` to the latest datagram read, taken now that the
    /// awaited step has completed; the plain time since `from` when no
    /// datagram was read after `floor` (a step that completed on data
    /// already at hand).
    fn span(&self, from: Instant, floor: Instant) -> Duration {
        let now = Instant::now();
        match self.stamps().last_recv {
            Some(at) if at >= floor && at >= from => at - from,
            _ => now.saturating_duration_since(from),
        }
    }
}

impl quinn::AsyncUdpSocket for StampedUdp {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit) -> std::io::Result<()> {
        // Stamped before the send, as the TCP stamps are (see `wire.rs`): the
        // peer may answer before this thread runs again.
        let before = Instant::now();
        let r = self.inner.try_send(transmit);
        if r.is_ok() {
            self.note(|s| {
                s.first_send.get_or_insert(before);
            });
        }
        r
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        let r = self.inner.poll_recv(cx, bufs, meta);
        if let Poll::Ready(Ok(n)) = &r {
            if *n > 0 {
                let now = Instant::now();
                self.note(|s| s.last_recv = Some(now));
            }
        }
        r
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

fn unavailable(addr: SocketAddr, wait: Duration) -> ProbeError {
    ProbeError::new(
        ErrorKind::Http3Unavailable,
        format!(
            "HTTP/3 unavailable: no QUIC handshake with {addr} within {} ms (UDP blocked on the way, or the server does not offer HTTP/3)",
            wait.as_millis()
        ),
    )
}

fn connection_error(addr: SocketAddr, e: &quinn::ConnectionError, wait: Duration) -> ProbeError {
    use quinn::ConnectionError as C;
    let crypto = |code: u64| (0x100..0x200).contains(&code);
    match e {
        C::TimedOut => unavailable(addr, wait),
        C::TransportError(t) if crypto(u64::from(t.code)) => ProbeError::new(
            ErrorKind::Tls,
            format!("QUIC TLS handshake with {addr} failed: {}", t.reason),
        ),
        C::ConnectionClosed(c) if crypto(u64::from(c.error_code)) => ProbeError::new(
            ErrorKind::Tls,
            format!("{addr} refused the QUIC TLS handshake: {c}"),
        ),
        C::VersionMismatch => ProbeError::new(
            ErrorKind::Http3Unavailable,
            format!("HTTP/3 unavailable: {addr} speaks no QUIC version we do"),
        ),
        other => ProbeError::new(
            ErrorKind::Protocol,
            format!("QUIC connection to {addr}: {other}"),
        ),
    }
}

/// The port an `Alt-Svc` header offers HTTP/3 on, for the same host
/// (`h3=":443"`); alternatives naming another host are not followed.
pub fn alt_svc_h3_port(header: &str) -> Option<u16> {
    header.split(',').find_map(|alt| {
        let alt = alt.trim();
        let (proto, rest) = alt.split_once('=')?;
        if proto.trim() != "h3" {
            return None;
        }
        let value = rest.split(';').next()?.trim().trim_matches('"');
        let (host, port) = value.rsplit_once(':')?;
        if !host.is_empty() {
            return None;
        }
        port.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spans_end_at_the_latest_datagram_read_after_the_floor() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (_endpoint, wire) = stamped_endpoint(peer).expect("a loopback UDP socket");
        let t0 = Instant::now();
        let read = t0 + Duration::from_millis(30);
        wire.note(|s| s.last_recv = Some(read));
        // Ends at the read, not at the (later) moment we ask.
        assert_eq!(wire.span(t0, t0), Duration::from_millis(30));
        // A read from before the step began does not end it: time since `from`.
        let later = t0 + Duration::from_millis(40);
        std::thread::sleep(Duration::from_millis(45));
        let fallback = wire.span(later, later);
        assert!(fallback >= Duration::from_millis(5) && fallback < Duration::from_secs(5));
        assert_eq!(wire.first_send(), None, "nothing written yet");
    }

    #[test]
    fn alt_svc_offers_are_read() {
        assert_eq!(alt_svc_h3_port(r#"h3=":443"; ma=2592000"#), Some(443));
        assert_eq!(
            alt_svc_h3_port(r#"h3-29=":8443", h3=":8444"; ma=86400"#),
            Some(8444)
        );
        assert_eq!(alt_svc_h3_port(r#"h2=":443""#), None);
        assert_eq!(alt_svc_h3_port(r#"h3="other.example:443""#), None);
        assert_eq!(alt_svc_h3_port("clear"), None);
    }
}
