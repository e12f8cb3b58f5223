//! HTTP(S) probe with per-phase timing on a fresh connection per request.
//!
//! reqwest hides connection phases, so this drives hyper 1's connection-level
//! client over a connector timed here: system DNS → TCP connect → TLS
//! handshake (ALPN) → request until the response's first byte (TTFB,
//! stamped on the stream: see `wire.rs`) → body to the end. Each phase is
//! reported on its own; together they add up to `total_ms`. Redirects are
//! followed on new connections; the phase figures describe the final
//! response, earlier hops are listed in `redirect_chain`.
//!
//! HTTP/3 (`mode = "http3"`) runs over QUIC instead (see `http3.rs`). In
//! `auto` mode an HTTPS answer that offers HTTP/3 in `Alt-Svc` is fetched
//! again over HTTP/3, as a browser does on its next visit; when that works
//! the result is the HTTP/3 one, else the TCP one stands.

use super::body::{record_transfer, BodyCount};
use super::http3::{self, H3Request};
use super::net::{connect, resolve};
use super::tls::{self, ALPN_H2, ALPN_HTTP1};
use super::wire::{Stamped, Stamps};
use super::{ms, Probe, ProbeError};
use crate::kinds::HttpMode;
use crate::model::{ErrorKind, Measurement, Metrics, RedirectHop, TestType};
use crate::spec::{self, parse_http_url, HttpSpec};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// One HTTP(S) test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub spec: HttpSpec,
    pub tier: u8,
}
super::spec_probe!(HttpProbe, HttpSpec);

impl HttpProbe {
    /// A fetch of `url` with the default options.
    pub fn new(url: Url) -> Self {
        HttpProbe {
            spec: HttpSpec::new(url),
            tier: 1,
        }
    }

    /// `Alt-Svc` offered HTTP/3 on `port`: measures the same URL over
    /// HTTP/3 on a new connection; if that works, its figures replace the
    /// TCP ones and its status is returned. A failure leaves `m` as it was.
    async fn upgrade_to_h3(&self, url: &Url, port: u16, m: &mut Measurement) -> Option<u16> {
        let host = url.host_str()?;
        let mut h3m = Measurement::begin(TestType::Http, self.target());
        let req = H3Request {
            url,
            host,
            port,
            insecure: self.insecure,
            ca_file: self.ca_file.as_deref(),
            handshake_timeout: ALT_SVC_HANDSHAKE_WAIT,
            max_body_bytes: self.max_body_bytes,
        };
        let out = http3::fetch(req, &mut h3m).await.ok()?;
        m.metrics = Metrics {
            redirects: m.metrics.redirects,
            redirect_chain: m.metrics.redirect_chain.take(),
            ..h3m.metrics
        };
        m.latency_ms = h3m.latency_ms;
        m.resolved_ip = h3m.resolved_ip;
        Some(out.status)
    }

    /// One request on a new connection. Writes this hop's figures into `m`
    /// as they are measured, so a timeout keeps what was reached.
    async fn fetch(&self, url: &Url, m: &mut Measurement) -> Result<HopOutcome, ProbeError> {
        let host = url
            .host_str()
            .ok_or_else(|| ProbeError::new(ErrorKind::Config, format!("`{url}` has no host")))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| ProbeError::new(ErrorKind::Config, format!("`{url}` has no port")))?;
        if self.mode == HttpMode::Http3 {
            if url.scheme() != "https" {
                return Err(ProbeError::new(
                    ErrorKind::Config,
                    format!("HTTP/3 needs an https:// URL, not `{url}`"),
                ));
            }
            let req = H3Request {
                url,
                host: &host,
                port,
                insecure: self.insecure,
                ca_file: self.ca_file.as_deref(),
                // Leave room to report "unavailable" before the test's own timeout.
                handshake_timeout: (self.timeout * 3 / 4).max(Duration::from_millis(100)),
                max_body_bytes: self.max_body_bytes,
            };
            let out = http3::fetch(req, m).await?;
            return Ok(HopOutcome {
                status: out.status,
                location: out.location,
                alt_svc_h3: None,
            });
        }
        // TLS set-up is local work, not a network phase: done before the clock starts.
        let tls_setup = if url.scheme() == "https" {
            let alpn: &[&[u8]] = match self.mode {
                HttpMode::Auto => &[ALPN_H2, ALPN_HTTP1],
                HttpMode::Http1 => &[ALPN_HTTP1],
                HttpMode::Http2 => &[ALPN_H2],
                HttpMode::Http3 => &[],
            };
            let cfg = tls::client_config(self.insecure, self.ca_file.as_deref(), alpn)?;
            Some((cfg, tls::server_name(&host)?))
        } else {
            None
        };
        let start = Instant::now();

        let resolved = resolve(&host, port).await?;
        m.metrics.dns_ms = resolved.dns_ms;
        let conn = connect(&resolved.addrs).await?;
        m.metrics.connect_ms = Some(conn.connect_ms);
        m.resolved_ip = Some(conn.addr.ip().to_string());

        if let Some((cfg, name)) = tls_setup {
            let t = Instant::now();
            let stream = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, conn.stream)
                .await
                .map_err(|e| {
                    let err = tls::handshake_error(&e);
                    // Asked for HTTP/2 alone, a server without it refuses
                    // the ALPN offer: that is HTTP/2 refused, not a TLS fault.
                    if self.mode == HttpMode::Http2 && tls::refused_alpn(&e) {
                        ProbeError::new(
                            ErrorKind::Protocol,
                            "HTTP/2 refused: the server does not offer h2 over ALPN (try --http1)",
                        )
                    } else {
                        err
                    }
                })?;
            m.metrics.tls_ms = Some(ms(t.elapsed()));
            let (_, session) = stream.get_ref();
            tls::record_session(session, &mut m.metrics);
            let h2 = session.alpn_protocol() == Some(ALPN_H2);
            if self.mode == HttpMode::Http2 && !h2 {
                return Err(ProbeError::new(
                    ErrorKind::Protocol,
                    "the server did not agree to HTTP/2 over ALPN",
                ));
            }
            self.exchange(stream, h2, url, &host, start, m).await
        } else {
            let h2 = self.mode == HttpMode::Http2;
            self.exchange(conn.stream, h2, url, &host, start, m).await
        }
    }

    async fn exchange<S>(
        &self,
        io: S,
        h2: bool,
        url: &Url,
        host: &str,
        start: Instant,
        m: &mut Measurement,
    ) -> Result<HopOutcome, ProbeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // The request's write and the response's first read, on the stream.
        let io = Stamped::new(io, h2);
        let stamps = io.stamps();
        let io = TokioIo::new(io);
        let user_agent =
            HeaderValue::from_static(concat!("WaddlePerf/", env!("CARGO_PKG_VERSION")));
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", host_for_header(host)),
            None => host_for_header(host),
        };
        let builder = Request::get(if h2 {
            format!("{}://{authority}{path}", url.scheme())
        } else {
            path
        })
        .header(USER_AGENT, user_agent)
        .header(ACCEPT, "*/*")
        // Count the bytes as they cross the wire: no compression.
        .header(ACCEPT_ENCODING, "identity");
        let builder = if h2 {
            builder.version(Version::HTTP_2)
        } else {
            builder.header(HOST, authority)
        };
        let req = builder.body(Empty::<Bytes>::new()).map_err(|e| {
            ProbeError::new(
                ErrorKind::Config,
                format!("cannot build a request for `{url}`: {e}"),
            )
        })?;

        let asked;
        let response = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| hyper_error("HTTP/2 handshake", &e))?;
            tokio::spawn(conn);
            asked = Instant::now();
            sender.send_request(req).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| hyper_error("HTTP/1.1 handshake", &e))?;
            tokio::spawn(conn);
            asked = Instant::now();
            sender.send_request(req).await
        }
        .map_err(|e| hyper_error("request", &e))?;
        // Stamped on the stream; around the call (which adds hyper's
        // hand-offs) only if the stream did not see both.
        let (sent, ttfb) = match stamps.get() {
            Stamps {
                request: Some(a),
                response: Some(b),
            } if b >= a => (a, b - a),
            _ => (asked, asked.elapsed()),
        };
        m.metrics.ttfb_ms = Some(ms(ttfb));
        let status = response.status().as_u16();
        m.metrics.status_code = Some(status);
        m.metrics.http_version = Some(version_name(response.version()).to_owned());
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let alt_svc_h3 = response
            .headers()
            .get(hyper::header::ALT_SVC)
            .and_then(|v| v.to_str().ok())
            .and_then(http3::alt_svc_h3_port)
            .filter(|_| url.scheme() == "https");

        let mut body = response.into_body();
        let mut count = BodyCount::new(self.max_body_bytes);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| hyper_error("reading the body", &e))?;
            if let Some(chunk) = frame.data_ref() {
                if !count.add(chunk.len()) {
                    break;
                }
            }
        }
        count.record(m);
        record_transfer(m, start, sent, count.bytes);
        Ok(HopOutcome {
            status,
            location,
            alt_svc_h3,
        })
    }
}

/// How long an `Alt-Svc` HTTP/3 try may wait for its handshake in `auto`
/// mode before the TCP result stands.
const ALT_SVC_HANDSHAKE_WAIT: Duration = Duration::from_millis(1_000);

impl Probe for HttpProbe {
    fn test_type(&self) -> TestType {
        TestType::Http
    }

    fn target(&self) -> String {
        spec::http_id(&self.written, self.mode)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let mut url = self.url.clone();
        let mut chain: Vec<RedirectHop> = Vec::new();
        loop {
            let hop = self.fetch(&url, m).await?;
            let redirect = matches!(hop.status, 301 | 302 | 303 | 307 | 308);
            let Some(location) = hop.location.filter(|_| redirect) else {
                let mut status = hop.status;
                if let Some(port) = hop.alt_svc_h3.filter(|_| self.mode == HttpMode::Auto) {
                    if let Some(s) = self.upgrade_to_h3(&url, port, m).await {
                        status = s;
                    }
                }
                m.metrics.redirects = Some(chain.len() as u32);
                if !chain.is_empty() {
                    m.metrics.redirect_chain = Some(chain);
                }
                if status >= 400 {
                    return Err(ProbeError::new(
                        ErrorKind::Http,
                        format!("the server answered HTTP {}", status_text(status)),
                    ));
                }
                return Ok(());
            };
            // `redirects` counts the redirects followed, at most the limit.
            let followed = chain.len() as u32;
            chain.push(RedirectHop {
                url: url.to_string(),
                status_code: hop.status,
                total_ms: m.metrics.total_ms.unwrap_or_default(),
            });
            if followed >= self.max_redirects {
                m.metrics.redirects = Some(followed);
                m.metrics.redirect_chain = Some(chain);
                return Err(ProbeError::new(
                    ErrorKind::Protocol,
                    format!(
                        "more than {} redirects: stopped at {url}, which redirects again to {}",
                        self.max_redirects,
                        crate::model::excerpt(&location, 200)
                    ),
                ));
            }
            m.metrics.redirects = Some(followed + 1);
            let next = url.join(&location).map_err(|e| {
                ProbeError::new(
                    ErrorKind::Protocol,
                    format!("redirect to an invalid location `{location}`: {e}"),
                )
            })?;
            url = parse_http_url(next.as_str()).map_err(|e| {
                ProbeError::new(ErrorKind::Protocol, format!("redirect refused: {e}"))
            })?;
            clear_hop(m);
        }
    }
}

struct HopOutcome {
    status: u16,
    location: Option<String>,
    /// The port `Alt-Svc` offers HTTP/3 on (same host), if any.
    alt_svc_h3: Option<u16>,
}

/// Clears one hop's figures before the next hop is measured; only the
/// redirect count carries over.
fn clear_hop(m: &mut Measurement) {
    m.metrics = Metrics {
        redirects: m.metrics.redirects,
        ..Metrics::default()
    };
    m.latency_ms = None;
    m.resolved_ip = None;
}

fn host_for_header(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

pub fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "?",
    }
}

fn status_text(code: u16) -> String {
    match hyper::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    }
}

fn hyper_error(stage: &str, e: &hyper::Error) -> ProbeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return ProbeError::io(stage, io);
        }
        source = s.source();
    }
    if e.is_parse() || e.is_parse_status() {
        ProbeError::new(
            ErrorKind::Protocol,
            format!("{stage}: the server's answer is not valid HTTP ({e})"),
        )
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        ProbeError::new(
            ErrorKind::Reset,
            format!("{stage}: the server closed the connection before a complete answer"),
        )
    } else {
        ProbeError::new(ErrorKind::Protocol, format!("{stage}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_canonical() {
        assert_eq!(version_name(Version::HTTP_11), "1.1");
        assert_eq!(version_name(Version::HTTP_2), "2");
        assert_eq!(version_name(Version::HTTP_3), "3");
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_headers() {
        assert_eq!(host_for_header("::1"), "[::1]");
        assert_eq!(host_for_header("[::1]"), "[::1]");
        assert_eq!(host_for_header("example.com"), "example.com");
    }

    #[test]
    fn a_bad_url_is_refused_at_the_spec_naming_the_scheme() {
        let e = HttpSpec::parse("ftp://example.com/").unwrap_err();
        assert_eq!(e.field, "url");
        assert!(e.message.contains("ftp"), "{e}");
    }
}
