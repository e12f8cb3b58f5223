//! The HTTP peer on pingora-core: a custom HTTP app that streams its
//! bodies (never a whole body in memory), behind a gate that bounds the
//! connections served at once. Download bytes are random, made once at
//! start and sent as shared slices, so the server is never the bottleneck.

use super::routes::{self, Route};
use super::Limits;
use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::apps::{HttpServerApp, HttpServerOptions, ServerApp};
use pingora_core::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora_core::services::listening::Service;
use pingora_http::ResponseHeader;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// The random bytes downloads are cut from, and the largest write.
const POOL: usize = 8 << 20;
const CHUNK: usize = 1 << 20;
/// Longest request target and most header lines a request may have.
const MAX_TARGET: usize = 8 << 10;
const MAX_HEADERS: usize = 100;
/// Largest result a client may post.
const MAX_RESULT: usize = 16 << 10;

pub struct Peer {
    pool: Bytes,
    limits: Limits,
    open: AtomicUsize,
    /// HTTP/2 over plain TCP (`h2c`) beside HTTP/1.1: the responsiveness
    /// test's self probes share a loaded connection.
    options: HttpServerOptions,
}

/// The gate: counts connections, answers 503 beyond the limit, hands the
/// rest to the peer (pingora's HTTP/1.1 keep-alive loop runs inside).
struct Gate(Arc<Peer>);

struct Leave<'a>(&'a AtomicUsize);
impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ServerApp for Gate {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let now = self.0.open.fetch_add(1, Ordering::Relaxed) + 1;
        let _leave = Leave(&self.0.open);
        low_water(&stream);
        if now > self.0.limits.max_connections {
            let body = format!(
                "busy: {} connections is this peer's limit; try again shortly\n",
                self.0.limits.max_connections
            );
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            return None;
        }
        self.0.process_new(stream, shutdown).await
    }
}

/// Unsent bytes a connection's socket may hold beyond what is in flight.
/// Responsiveness tests time small answers sent behind a large download on
/// one connection: with the kernel's default the answer would wait behind
/// megabytes queued in this server's own send buffer, which is this
/// server's delay, not the network's (the IETF draft asks servers for
/// this). 16 KiB: a connection with a sixteenth of 20 Mbit/s drains it in
/// 100 ms; 64 KiB left self probes as slow on a 10 ms queue as on a 300 ms
/// one.
const NOTSENT_LOWAT: u32 = 16 << 10;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn low_water(stream: &Stream) {
    use std::os::fd::{AsRawFd, BorrowedFd};
    let Some(s) = stream
        .as_any()
        .downcast_ref::<pingora_core::protocols::l4::stream::Stream>()
    else {
        return;
    };
    // SAFETY: the descriptor belongs to `s`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
    if let Err(e) = socket2::SockRef::from(&fd).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        tracing::debug!("TCP_NOTSENT_LOWAT not set: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn low_water(_stream: &Stream) {
    let _ = NOTSENT_LOWAT;
}

/// SIGINT and SIGTERM both stop the peer at once: a speed test in flight
/// is not worth waiting for.
struct Stop;

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = int.recv() => tracing::info!("SIGINT: stopping"),
                }
            }
            _ => std::future::pending::<()>().await,
        }
        ShutdownSignal::FastShutdown
    }
}

/// The pingora server holding the peer's one listening service.
pub fn server(addr: SocketAddr, limits: Limits) -> Result<Server> {
    let mut pool = vec![0u8; POOL];
    fastrand::fill(&mut pool);
    let peer = Arc::new(Peer {
        pool: Bytes::from(pool),
        limits,
        open: AtomicUsize::new(0),
        options: {
            let mut o = HttpServerOptions::default();
            o.h2c = true;
            o
        },
    });
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    let mut service = Service::new("waddleperf peer".into(), Gate(peer));
    service.add_tcp(&addr.to_string());
    server.add_service(service);
    Ok(server)
}

pub fn run(server: Server) {
    server.run(RunArgs {
        shutdown_signal: Box::new(Stop),
    });
}

impl Peer {
    fn limits(&self) -> &Limits {
        &self.limits
    }
}

#[async_trait]
impl HttpServerApp for Peer {
    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }

    /// Windows wide enough that one stream fills a fast link.
    fn h2_options(&self) -> Option<H2Options> {
        let mut o = default_h2_options();
        o.initial_window_size(8 << 20);
        o.initial_connection_window_size(16 << 20);
        Some(o)
    }

    async fn process_new_http(
        self: &Arc<Self>,
        mut s: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<pingora_core::apps::ReusedHttpStream> {
        match s.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!("unreadable request: {e}");
                // No request was read: nothing of it may be looked at.
                let body = Bytes::from_static(b"bad request: not HTTP/1.1 this peer can read\n");
                if let Ok(mut h) = head(400, "text/plain") {
                    if h.insert_header("Content-Length", body.len().to_string())
                        .is_ok()
                        && s.write_response_header(Box::new(h)).await.is_ok()
                    {
                        let _ = s.write_response_body(body, true).await;
                    }
                }
                return None;
            }
        }
        let idle = self.limits().idle;
        s.set_read_timeout(Some(idle));
        s.set_write_timeout(Some(idle));
        if *shutdown.borrow() {
            s.set_keepalive(None);
        }
        let method = s.req_header().method.as_str().to_owned();
        let target = s
            .req_header()
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let route = if target.len() > MAX_TARGET {
            Route::Error(
                414,
                format!("request target longer than {MAX_TARGET} bytes"),
            )
        } else if s.req_header().headers.len() > MAX_HEADERS {
            Route::Error(431, format!("more than {MAX_HEADERS} header lines"))
        } else {
            routes::route(&method, &target)
        };
        let done = self.answer(&mut s, route).await;
        if !done {
            return None;
        }
        let keep = pingora_core::apps::HttpPersistentSettings::for_session(&s);
        match s.finish().await {
            Ok(Some(stream)) => Some(pingora_core::apps::ReusedHttpStream::from_reusable_stream(
                stream, keep,
            )),
            _ => None,
        }
    }
}

impl Peer {
    /// Writes the answer; `false` when the connection must close.
    async fn answer(&self, s: &mut ServerSession, route: Route) -> bool {
        let r = match route {
            Route::Health => {
                let v = waddleperf_engine::version::VERSION;
                json(
                    s,
                    200,
                    &serde_json::json!({"status": "healthy", "version": v}),
                )
                .await
            }
            Route::Ping => {
                json(
                    s,
                    200,
                    &serde_json::json!({"pong": true, "timestamp": unix_ms()}),
                )
                .await
            }
            Route::Info => {
                let body = serde_json::json!({
                    "name": "waddleperf serve",
                    "version": waddleperf_engine::version::VERSION,
                    "max_chunk_size_mb": 100,
                    "default_chunk_size_mb": 10,
                    "recommended_streams": 6,
                    "max_streams": 32,
                });
                json(s, 200, &body).await
            }
            Route::NqConfig => {
                let host = s
                    .req_header()
                    .headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .and_then(routes::plain_host)
                    .map(str::to_owned)
                    .or_else(|| s.server_addr().map(|a| a.to_string()));
                let base = format!("http://{}", host.unwrap_or_default());
                let body = serde_json::json!({
                    "version": 1,
                    "urls": {
                        "large_download_url": format!("{base}/rpm/large"),
                        "small_download_url": format!("{base}/rpm/small"),
                        "upload_url": format!("{base}/rpm/upload"),
                    },
                    "test_endpoint": null,
                });
                json(s, 200, &body).await
            }
            Route::Small => reply(s, 200, "application/octet-stream", self.pool.slice(0..1)).await,
            Route::Empty | Route::Preflight => {
                let code = if matches!(route, Route::Preflight) {
                    204
                } else {
                    200
                };
                reply(s, code, "text/plain", Bytes::new()).await
            }
            Route::ClientIp => {
                let ip = s
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip().to_canonical().to_string())
                    .unwrap_or_default();
                json(
                    s,
                    200,
                    &serde_json::json!({"processedString": ip, "rawIspInfo": ""}),
                )
                .await
            }
            Route::Download(len) => return self.download(s, len).await,
            Route::Upload { report } => return self.upload(s, report).await,
            Route::Result => return self.result(s).await,
            Route::Error(code, why) => {
                s.set_keepalive(None);
                let _ = reply(s, code, "text/plain", format!("{why}\n").into()).await;
                return false;
            }
        };
        r.is_ok()
    }

    /// `len` bytes (or until the client stops or the time limit), in 1 MiB
    /// slices of the random pool.
    async fn download(&self, s: &mut ServerSession, len: Option<u64>) -> bool {
        let mut h = match head(200, "application/octet-stream") {
            Ok(h) => h,
            Err(_) => return false,
        };
        let ok = match len {
            Some(n) => h.insert_header("Content-Length", n.to_string()).is_ok(),
            None => h.insert_header("Transfer-Encoding", "chunked").is_ok(),
        };
        if !ok || s.write_response_header(Box::new(h)).await.is_err() {
            return false;
        }
        if s.req_header().method == "HEAD" {
            return true;
        }
        let deadline = Instant::now() + self.limits.max_transfer;
        let mut left = len.unwrap_or(u64::MAX);
        let mut at = 0usize;
        while left > 0 {
            if Instant::now() > deadline {
                // A sized body cut short must not look whole: close.
                return len.is_none() && s.write_response_body(Bytes::new(), true).await.is_ok();
            }
            let n = (CHUNK as u64).min(left) as usize;
            if at + n > POOL {
                at = 0;
            }
            left -= n as u64;
            let last = left == 0;
            if s.write_response_body(self.pool.slice(at..at + n), last)
                .await
                .is_err()
            {
                return false;
            }
            at += n;
        }
        true
    }

    /// Counts the request body and drops it, within the size and time
    /// limits; answers in WaddlePerf's way (`report`) or with nothing.
    async fn upload(&self, s: &mut ServerSession, report: bool) -> bool {
        if expects_continue(s) && s.write_continue_response().await.is_err() {
            return false;
        }
        let start = Instant::now();
        let mut bytes = 0u64;
        loop {
            let chunk = match s.read_request_body().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(_) => return false,
            };
            bytes += chunk.len() as u64;
            if bytes > self.limits.max_upload_bytes {
                return too_large(
                    s,
                    format!(
                        "upload larger than this peer's limit of {} MiB",
                        self.limits.max_upload_bytes >> 20
                    ),
                )
                .await;
            }
            if start.elapsed() > self.limits.max_transfer {
                return too_large(
                    s,
                    format!(
                        "upload longer than this peer's limit of {} s",
                        self.limits.max_transfer.as_secs()
                    ),
                )
                .await;
            }
        }
        if !report {
            return reply(s, 200, "text/plain", Bytes::new()).await.is_ok();
        }
        let secs = start.elapsed().as_secs_f64();
        let mbps = if secs > 0.0 {
            bytes as f64 * 8.0 / 1e6 / secs
        } else {
            0.0
        };
        let body = serde_json::json!({
            "success": true,
            "bytes_received": bytes,
            "duration_ms": (secs * 1000.0).round() as u64,
            "throughput_mbps": (mbps * 100.0).round() / 100.0,
        });
        json(s, 200, &body).await.is_ok()
    }

    /// A client's posted result (at most 16 KiB of JSON), logged.
    async fn result(&self, s: &mut ServerSession) -> bool {
        let mut body = Vec::new();
        loop {
            match s.read_request_body().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > MAX_RESULT {
                        return too_large(s, format!("a result is at most {MAX_RESULT} bytes"))
                            .await;
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(_) => return false,
            }
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.is_object() => {
                let from = s.client_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::info!(%from, result = %v, "speed test result posted");
                json(s, 200, &serde_json::json!({"success": true}))
                    .await
                    .is_ok()
            }
            _ => {
                s.set_keepalive(None);
                let _ = reply(s, 400, "text/plain", "a result is a JSON object\n".into()).await;
                false
            }
        }
    }
}

fn expects_continue(s: &ServerSession) -> bool {
    s.req_header()
        .headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

async fn too_large(s: &mut ServerSession, why: String) -> bool {
    s.set_keepalive(None);
    let _ = reply(s, 413, "text/plain", format!("{why}\n").into()).await;
    false
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A response head with the headers every answer carries: no caching (a
/// speed test must reach the server) and open to browser clients.
fn head(code: u16, ctype: &str) -> pingora_core::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(code, Some(6))?;
    h.insert_header("Content-Type", ctype)?;
    h.insert_header("Cache-Control", "no-store, no-cache, must-revalidate")?;
    h.insert_header("Access-Control-Allow-Origin", "*")?;
    h.insert_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")?;
    h.insert_header("Access-Control-Allow-Headers", "*")?;
    Ok(h)
}

async fn reply(
    s: &mut ServerSession,
    code: u16,
    ctype: &str,
    body: Bytes,
) -> pingora_core::Result<()> {
    let mut h = head(code, ctype)?;
    h.insert_header("Content-Length", body.len().to_string())?;
    s.write_response_header(Box::new(h)).await?;
    if !body.is_empty() && s.req_header().method != "HEAD" {
        s.write_response_body(body, true).await?;
    }
    Ok(())
}

async fn json(s: &mut ServerSession, code: u16, v: &serde_json::Value) -> pingora_core::Result<()> {
    reply(s, code, "application/json", v.to_string().into()).await
}
