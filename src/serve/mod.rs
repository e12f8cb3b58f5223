//! `waddleperf serve`: the peer other machines test against. The HTTP peer
//! (`http.rs`, on pingora-core: the WaddlePerf speed test, the LibreSpeed
//! paths and the responsiveness endpoints) and the UDP echo responder, each
//! on its own port, until SIGINT or SIGTERM.

use crate::args::ServeArgs;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
#[cfg(unix)]
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;
use waddleperf_engine::probe::udp;

#[cfg(unix)]
mod http;
#[cfg(unix)]
mod routes;

/// The port of the WaddlePerf test server's speed test.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The HTTP peer's limits (`serve --max-…`), checked on every OS.
#[derive(Debug, Clone)]
#[cfg_attr(not(unix), allow(dead_code))]
pub struct Limits {
    pub max_connections: usize,
    /// The longest single download or upload.
    pub max_transfer: Duration,
    pub max_upload_bytes: u64,
    /// How long a client may send nothing (headers or body) or take no data
    /// before its connection is closed.
    pub idle: Duration,
}

impl Limits {
    fn of(a: &ServeArgs) -> Result<Limits> {
        if a.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        if a.max_seconds == 0 {
            bail!("--max-seconds must be at least 1");
        }
        if a.max_upload_mib == 0 {
            bail!("--max-upload-mib must be at least 1");
        }
        if a.idle_seconds == 0 {
            bail!("--idle-seconds must be at least 1");
        }
        Ok(Limits {
            max_connections: a.max_connections,
            max_transfer: Duration::from_secs(a.max_seconds),
            max_upload_bytes: a.max_upload_mib.saturating_mul(1 << 20),
            idle: Duration::from_secs(a.idle_seconds),
        })
    }
}

pub fn run(a: ServeArgs) -> Result<()> {
    let limits = Limits::of(&a)?;
    let http_port = match (a.http, a.udp_echo) {
        (Some(p), _) => Some(p),
        (None, None) => Some(DEFAULT_HTTP_PORT),
        (None, Some(_)) => None,
    };
    // The UDP echo runs on a thread of its own beside the HTTP peer.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let mut done_tx = Some(done_tx);
    if let Some(port) = a.udp_echo {
        let addr = SocketAddr::new(a.listen, port);
        let sock = std::net::UdpSocket::bind(addr)
            .with_context(|| format!("cannot listen on UDP {addr}"))?;
        let local = sock.local_addr()?;
        let tx = done_tx.take();
        std::thread::Builder::new()
            .name("udp-echo".into())
            .spawn(move || {
                let r = udp::serve_echo(&sock).with_context(|| format!("UDP echo on {local}"));
                if let Some(tx) = tx {
                    let _ = tx.send(r);
                }
            })?;
        println!("UDP echo listening on {local}");
        std::io::stdout().flush()?;
        tracing::info!(%local, "UDP echo responder started");
    }
    match http_port {
        Some(port) => serve_http(a.listen, port, limits, done_rx),
        None => crate::open::tokio_rt()?.block_on(async move {
            tokio::select! {
                r = done_rx => match r {
                    Ok(r) => r,
                    Err(_) => bail!("the UDP echo thread ended"),
                },
                s = stop_signal() => {
                    tracing::info!("{}: UDP echo responder stopped", s?);
                    Ok(())
                }
            }
        }),
    }
}

#[cfg(unix)]
/// A free port on `ip` when `port` is 0, else `port` once it is known to
/// be free: a clear error here rather than a failed listener later.
fn pick_port(ip: IpAddr, port: u16) -> Result<SocketAddr> {
    let l = TcpListener::bind(SocketAddr::new(ip, port))
        .with_context(|| format!("cannot listen on TCP {}", SocketAddr::new(ip, port)))?;
    Ok(l.local_addr()?)
}

#[cfg(unix)]
/// Waits until the listener at `addr` takes connections.
fn wait_listening(addr: SocketAddr, within: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > within {
            bail!("the HTTP peer did not start listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn serve_http(
    ip: IpAddr,
    port: u16,
    limits: Limits,
    udp_done: tokio::sync::oneshot::Receiver<Result<()>>,
) -> Result<()> {
    let addr = pick_port(ip, port)?;
    let server = http::server(addr, limits)?;
    std::thread::Builder::new()
        .name("serve-ready".into())
        .spawn(move || {
            match wait_listening(addr, Duration::from_secs(10)) {
                Ok(()) => {
                    println!("HTTP peer listening on http://{addr}/ (WaddlePerf speed test, LibreSpeed, responsiveness)");
                    let _ = std::io::stdout().flush();
                    tracing::info!(%addr, "HTTP peer started");
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(1);
                }
            }
            // A UDP echo that fails ends the whole peer, as it would alone.
            if let Ok(Err(e)) = udp_done.blocking_recv() {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        })?;
    http::run(server);
    tracing::info!("HTTP peer stopped");
    Ok(())
}

#[cfg(not(unix))]
fn serve_http(
    _ip: IpAddr,
    _port: u16,
    _limits: Limits,
    _udp_done: tokio::sync::oneshot::Receiver<Result<()>>,
) -> Result<()> {
    bail!(
        "the HTTP peer of `serve` is not available on Windows (it runs on Linux and macOS); \
         `waddleperf serve --udp-echo PORT` works here"
    )
}

async fn stop_signal() -> Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok("SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}
