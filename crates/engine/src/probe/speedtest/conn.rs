//! One HTTP connection of a speed test: opened to a URL's origin (DNS, TCP,
//! TLS for `https`), HTTP/1.1 or HTTP/2 (`h2c` over plain TCP, ALPN over
//! TLS), with its connect and handshake times; requests on it, and bodies
//! counted as they arrive or as they are sent.

use crate::model::ErrorKind;
use crate::probe::net::{connect, resolve};
use crate::probe::tls::{self, ALPN_H2, ALPN_HTTP1};
use crate::probe::{ms, ProbeError};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use url::Url;

/// Random bytes uploads are cut from: made once per test.
pub fn upload_pool() -> Bytes {
    let mut v = vec![0u8; 1 << 20];
    fastrand::fill(&mut v);
    Bytes::from(v)
}

/// How long a small request may take, loaded queues included.
const SMALL_LIMIT: Duration = Duration::from_secs(10);

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    Http2,
}

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<BoxBody>),
    H2(hyper::client::conn::http2::SendRequest<BoxBody>),
}

/// An open connection and how long opening it took.
pub struct Conn {
    sender: Sender,
    pub addr: SocketAddr,
    pub connect_ms: f64,
    pub tls_ms: Option<f64>,
    authority: String,
    scheme: String,
    /// The socket, to ask the OS how much of an upload was delivered.
    #[cfg(target_os = "linux")]
    sock: Option<Arc<std::os::fd::OwnedFd>>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::new(ErrorKind::Protocol, format!("{what}: {e}"))
}

impl Conn {
    /// Opens a connection to `url`'s origin, within `limit`.
    pub async fn open(url: &Url, proto: Proto, limit: Duration) -> Result<Conn, ProbeError> {
        tokio::time::timeout(limit, Conn::open_now(url, proto))
            .await
            .map_err(|_| {
                ProbeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no connection to {} within {} ms",
                        origin(url),
                        limit.as_millis()
                    ),
                )
            })?
    }

    async fn open_now(url: &Url, proto: Proto) -> Result<Conn, ProbeError> {
        let host = url
            .host_str()
            .ok_or_else(|| ProbeError::new(ErrorKind::Config, format!("`{url}` names no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let tls_setup = if url.scheme() == "https" {
            let alpn: &[&[u8]] = match proto {
                Proto::Http1 => &[ALPN_HTTP1],
                Proto::Http2 => &[ALPN_H2, ALPN_HTTP1],
            };
            Some((
                tls::client_config(false, None, alpn)?,
                tls::server_name(&host)?,
            ))
        } else {
            None
        };
        let resolved = resolve(&host, port).await?;
        let c = connect(&resolved.addrs).await?;
        let _ = c.stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        let sock = {
            use std::os::fd::AsFd;
            c.stream.as_fd().try_clone_to_owned().ok().map(Arc::new)
        };
        let addr = c.addr;
        let authority = match url.port() {
            Some(p) if addr.is_ipv6() && host.contains(':') => format!("[{host}]:{p}"),
            Some(p) => format!("{host}:{p}"),
            None if host.contains(':') => format!("[{host}]"),
            None => host.clone(),
        };
        let mut tls_ms = None;
        let sender = match tls_setup {
            Some((cfg, name)) => {
                let t = Instant::now();
                let s = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, c.stream)
                    .await
                    .map_err(|e| tls::handshake_error(&e))?;
                tls_ms = Some(ms(t.elapsed()));
                let h2 = s.get_ref().1.alpn_protocol() == Some(ALPN_H2);
                handshake(TokioIo::new(s), h2).await?
            }
            None => handshake(TokioIo::new(c.stream), proto == Proto::Http2).await?,
        };
        let conn = Conn {
            sender,
            addr,
            connect_ms: c.connect_ms,
            tls_ms,
            authority,
            scheme: url.scheme().to_owned(),
            #[cfg(target_os = "linux")]
            sock,
        };
        Ok(conn)
    }

    pub fn proto(&self) -> Proto {
        match self.sender {
            Sender::H1(_) => Proto::Http1,
            Sender::H2(_) => Proto::Http2,
        }
    }

    /// A request for `url` (same origin) with `body`.
    pub fn request(&self, method: Method, url: &Url, body: BoxBody) -> Request<BoxBody> {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut b = Request::builder()
            .method(method)
            .header(
                USER_AGENT,
                concat!("WaddlePerf/", env!("CARGO_PKG_VERSION")),
            )
            .header(ACCEPT_ENCODING, "identity")
            .header(CACHE_CONTROL, "no-store");
        b = match self.sender {
            Sender::H2(_) => b
                .uri(format!("{}://{}{path}", self.scheme, self.authority))
                .version(Version::HTTP_2),
            Sender::H1(_) => b.uri(path).header(HOST, self.authority.as_str()),
        };
        if body.size_hint().exact() != Some(0) {
            b = b.header(CONTENT_TYPE, "application/octet-stream");
        }
        // The parts are all valid by construction; a URL that is not would
        // have failed in the spec.
        b.body(body).unwrap_or_else(|_| Request::new(empty()))
    }

    /// Sends `req`; its response head.
    pub async fn send(&mut self, req: Request<BoxBody>) -> Result<Response<Incoming>, ProbeError> {
        let r = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| fail("connection", e))?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| fail("connection", e))?;
                s.send_request(req).await
            }
        };
        let r = r.map_err(|e| fail("request", e))?;
        if !r.status().is_success() {
            return Err(ProbeError::new(
                ErrorKind::Http,
                format!("the server answered HTTP {}", r.status()),
            ));
        }
        Ok(r)
    }

    /// GETs `url` and reads its body (at most `max` bytes, within 10 s):
    /// the time from the request to the end of the answer, in ms.
    pub async fn fetch_small(&mut self, url: &Url, max: usize) -> Result<(f64, Bytes), ProbeError> {
        let t = Instant::now();
        let req = self.request(Method::GET, url, empty());
        let work = async {
            let mut body = self.send(req).await?.into_body();
            let mut out = Vec::new();
            while let Some(f) = body.frame().await {
                let f = f.map_err(|e| fail("reading the answer", e))?;
                if let Some(d) = f.data_ref() {
                    if out.len() + d.len() > max {
                        return Err(ProbeError::new(
                            ErrorKind::Protocol,
                            format!("the answer from {url} is longer than {max} bytes"),
                        ));
                    }
                    out.extend_from_slice(d);
                }
            }
            Ok(Bytes::from(out))
        };
        let out = tokio::time::timeout(SMALL_LIMIT, work)
            .await
            .map_err(|_| {
                ProbeError::new(
                    ErrorKind::Timeout,
                    format!("no answer from {url} within {} s", SMALL_LIMIT.as_secs()),
                )
            })??;
        Ok((ms(t.elapsed()), out))
    }

    /// A clone that sends on the same HTTP/2 connection (streams beside
    /// one another); `None` for HTTP/1.1.
    pub fn h2_clone(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                addr: self.addr,
                connect_ms: self.connect_ms,
                tls_ms: self.tls_ms,
                authority: self.authority.clone(),
                scheme: self.scheme.clone(),
                #[cfg(target_os = "linux")]
                sock: None,
            }),
            Sender::H1(_) => None,
        }
    }
}

async fn handshake<S>(io: TokioIo<S>, h2: bool) -> Result<Sender, ProbeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (s, c) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(io)
            .await
            .map_err(|e| fail("HTTP/2 handshake", e))?;
        tokio::spawn(c);
        Ok(Sender::H2(s))
    } else {
        let (s, c) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| fail("HTTP/1.1 handshake", e))?;
        tokio::spawn(c);
        Ok(Sender::H1(s))
    }
}

/// What an upload over several connections has delivered: the bytes each
/// socket's peer acknowledged, where the OS says (Linux); elsewhere the
/// bytes handed to the connections (which runs ahead by what waits in the
/// send buffers: right in steady state, high while buffers grow).
#[derive(Clone, Default)]
pub struct Sent {
    #[cfg(target_os = "linux")]
    socks: Arc<std::sync::Mutex<Vec<Arc<std::os::fd::OwnedFd>>>>,
    pub handed: Arc<AtomicU64>,
}

impl Sent {
    /// Counts `c`'s socket from now on (kept open until the meter goes, so
    /// its count stays readable after the connection ends).
    pub fn track(&self, _c: &Conn) {
        #[cfg(target_os = "linux")]
        if let (Some(s), Ok(mut v)) = (&_c.sock, self.socks.lock()) {
            v.push(Arc::clone(s));
        }
    }

    pub fn total(&self) -> u64 {
        #[cfg(target_os = "linux")]
        if let Ok(v) = self.socks.lock() {
            if !v.is_empty() {
                let acked: Option<u64> = v
                    .iter()
                    .map(|s| crate::probe::tcp_info::bytes_acked(s.as_ref()))
                    .sum();
                if let Some(n) = acked {
                    return n;
                }
            }
        }
        self.handed.load(Ordering::Relaxed)
    }
}

/// What a load has moved so far: for an upload what the server
/// acknowledged (`sent`), for a download what arrived (`received`).
pub fn moved(dir: crate::kinds::Direction, sent: &Sent, received: &AtomicU64) -> u64 {
    if dir == crate::kinds::Direction::Upload {
        sent.total()
    } else {
        received.load(Ordering::Relaxed)
    }
}

pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

pub fn empty() -> BoxBody {
    Empty::<Bytes>::new().boxed()
}

/// Reads a response body to its end (or until `stop`), adding each chunk's
/// length to `counter` as it arrives.
pub async fn drain(
    mut body: Incoming,
    counter: &AtomicU64,
    stop: &AtomicBool,
) -> Result<(), ProbeError> {
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| fail("download", e))?;
        if let Some(d) = f.data_ref() {
            counter.fetch_add(d.len() as u64, Ordering::Relaxed);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

/// An upload body: `len` bytes (or endless) of the random pool in 64 KiB
/// pieces, each counted into `counter` as the connection takes it; it ends
/// early once `stop` is set.
pub struct Upload {
    pool: Bytes,
    at: usize,
    left: Option<u64>,
    counter: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

const PIECE: usize = 64 << 10;

impl Upload {
    pub fn body(
        pool: Bytes,
        len: Option<u64>,
        counter: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    ) -> BoxBody {
        Upload {
            pool,
            at: 0,
            left: len,
            counter,
            stop,
        }
        .boxed()
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.stop.load(Ordering::Relaxed) || self.left == Some(0) {
            return Poll::Ready(None);
        }
        let mut n = PIECE.min(self.pool.len());
        if let Some(left) = self.left {
            n = n.min(left as usize);
            self.left = Some(left - n as u64);
        }
        if self.at + n > self.pool.len() {
            self.at = 0;
        }
        let piece = self.pool.slice(self.at..self.at + n);
        self.at += n;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.left {
            Some(n) => hyper::body::SizeHint::with_exact(n),
            None => hyper::body::SizeHint::default(),
        }
    }
}
