//! TCP probe: connect time (`raw`); connect and TLS handshake timed apart with
//! protocol, cipher and certificate facts (`tls`); or connect and the server's
//! SSH identification line (`ssh`), which must arrive for the test to pass.

use super::net::{connect, resolve};
use super::{ms, tls, Probe, ProbeError};
use crate::kinds::TcpMode;
use crate::model::{ErrorKind, Measurement, TestType};
use crate::spec::{self, HostPort, TcpSpec};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// RFC 4253 §4.2: the identification line is at most 255 characters, and a
/// server may send other lines first; we read at most this much looking for it.
const SSH_PREAMBLE_LIMIT: usize = 8 * 1024;

/// One TCP test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    pub spec: TcpSpec,
    pub tier: u8,
}
super::spec_probe!(TcpProbe, TcpSpec);

impl TcpProbe {
    pub fn new(address: HostPort, mode: TcpMode) -> Self {
        TcpProbe {
            spec: TcpSpec::new(address, mode),
            tier: 1,
        }
    }
}

async fn handshake(
    stream: TcpStream,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    connect_ms: f64,
    m: &mut Measurement,
) -> Result<(), ProbeError> {
    let start = Instant::now();
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, stream)
        .await
        .map_err(|e| tls::handshake_error(&e))?;
    let tls_ms = ms(start.elapsed());
    m.metrics.tls_ms = Some(tls_ms);
    m.latency_ms = Some(connect_ms + tls_ms);
    tls::record_session(tls.get_ref().1, &mut m.metrics);
    Ok(())
}

/// Reads until a line starting with `SSH-` arrives; records it and the time
/// it took after connecting (`ttfb_ms`).
async fn read_ssh_banner(mut stream: TcpStream, m: &mut Measurement) -> Result<(), ProbeError> {
    let start = Instant::now();
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(banner) = find_banner(&buf) {
            m.metrics.ttfb_ms = Some(ms(start.elapsed()));
            m.metrics.ssh_banner = Some(banner);
            return Ok(());
        }
        if buf.len() >= SSH_PREAMBLE_LIMIT {
            return Err(ProbeError::new(
                ErrorKind::Protocol,
                format!("no SSH banner in the first {SSH_PREAMBLE_LIMIT} bytes"),
            ));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| ProbeError::io("reading the SSH banner", &e))?;
        if n == 0 {
            let got = String::from_utf8_lossy(&buf);
            let got = got.trim();
            return Err(ProbeError::new(
                ErrorKind::Protocol,
                if got.is_empty() {
                    "the server closed the connection without an SSH banner".to_owned()
                } else {
                    format!("not an SSH server: it said `{}`", truncate(got, 80))
                },
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The first complete line beginning with `SSH-`, without its line ending.
fn find_banner(buf: &[u8]) -> Option<String> {
    let mut rest = buf;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..pos];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"SSH-") {
            return Some(String::from_utf8_lossy(&line[..line.len().min(255)]).into_owned());
        }
        rest = &rest[pos + 1..];
    }
    None
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Probe for TcpProbe {
    fn test_type(&self) -> TestType {
        TestType::Tcp
    }

    /// `host:port` for raw connects; `tls://host:port` and `ssh://host:port`
    /// for the other modes, so each mode is its own series in history.
    fn target(&self) -> String {
        spec::tcp_id(&self.address, self.mode)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let (host, port) = (self.address.host.as_str(), self.address.port);
        // TLS set-up is local work: done before anything is timed.
        let tls_setup = match self.mode {
            TcpMode::Tls => Some((
                tls::client_config(self.insecure, self.ca_file.as_deref(), &[])?,
                tls::server_name(self.server_name.as_deref().unwrap_or(host))?,
            )),
            _ => None,
        };
        let resolved = resolve(host, port).await?;
        m.metrics.dns_ms = resolved.dns_ms;
        let conn = connect(&resolved.addrs).await?;
        m.resolved_ip = Some(conn.addr.ip().to_string());
        m.metrics.connect_ms = Some(conn.connect_ms);
        m.latency_ms = Some(conn.connect_ms);
        match (self.mode, tls_setup) {
            (TcpMode::Tls, Some((cfg, name))) => {
                handshake(conn.stream, cfg, name, conn.connect_ms, m).await
            }
            (TcpMode::Ssh, _) => read_ssh_banner(conn.stream, m).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_found_after_preamble_lines() {
        assert_eq!(
            find_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n").unwrap(),
            "SSH-2.0-OpenSSH_9.2p1 Debian"
        );
        assert_eq!(
            find_banner(b"hello\r\nwelcome\nSSH-2.0-x\n").unwrap(),
            "SSH-2.0-x"
        );
        assert!(find_banner(b"SSH-2.0-incomplete").is_none());
        assert!(find_banner(b"HTTP/1.1 400 Bad Request\r\n").is_none());
    }

    #[test]
    fn targets_name_their_mode() {
        assert_eq!(
            TcpProbe::new(HostPort::parse("a:1").unwrap(), TcpMode::Raw).target(),
            "a:1"
        );
        assert_eq!(
            TcpProbe::new(HostPort::parse("a:1").unwrap(), TcpMode::Tls).target(),
            "tls://a:1"
        );
        assert_eq!(
            TcpProbe::new(HostPort::parse("a:1").unwrap(), TcpMode::Ssh).target(),
            "ssh://a:1"
        );
    }
}
