//! An iperf3-protocol client for `iperf3 -s` servers (3.x), written here:
//! TCP upload, download (`reverse`) and both at once (`bidirectional`)
//! over parallel streams, with the first `omit` seconds of TCP slow start
//! left out. The protocol (`shared/reference/measurements.md`): a control
//! connection that sends a 37-byte cookie, then follows the server's state
//! bytes; JSON parameters and results framed by a 4-byte big-endian length;
//! one more connection per stream, each opening with the cookie.
//!
//! Figures come from the receiving side, as iperf3 reports them: an upload's
//! from the server's results, a download's from the bytes counted here over
//! the measured seconds. Retransmits are the sender's: the server's for a
//! download, this machine's (Linux `TCP_INFO`) for an upload.

use super::bandwidth::Progress;
use super::loaded::{self, Load, Pinger, Recent};
use super::net::{connect, resolve};
use super::ProbeError;
use crate::kinds::Direction;
use crate::model::{ErrorKind, Interim, Measurement};
use crate::spec::BandwidthSpec;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;

mod results;
mod tcp;
mod udp;

// The server's (and the client's) states, one signed byte each.
const TEST_START: i8 = 1;
const TEST_RUNNING: i8 = 2;
const TEST_END: i8 = 4;
const PARAM_EXCHANGE: i8 = 9;
const CREATE_STREAMS: i8 = 10;
const SERVER_TERMINATE: i8 = 11;
const EXCHANGE_RESULTS: i8 = 13;
const DISPLAY_RESULTS: i8 = 14;
const IPERF_DONE: i8 = 16;
const ACCESS_DENIED: i8 = -1;
const SERVER_ERROR: i8 = -2;

/// The cookie's characters (iperf3's base32 alphabet).
const COOKIE_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Bytes per write: iperf3's default TCP block.
const BLOCK: usize = 128 * 1024;
/// A refused connection is tried again this many times, this long apart
/// (see `connect_between_tests`).
const REFUSED_TRIES: u32 = 4;
const REFUSED_WAIT: Duration = Duration::from_millis(250);
/// How long the server may take to close the control connection after
/// the test.
const DONE_WAIT: Duration = Duration::from_secs(2);
/// The largest JSON message read from a server.
const MAX_MESSAGE: u32 = 1 << 20;

/// A new random cookie: 36 characters and a NUL.
fn cookie() -> [u8; 37] {
    let mut c = [0u8; 37];
    for b in c.iter_mut().take(36) {
        *b = COOKIE_CHARS[fastrand::usize(..COOKIE_CHARS.len())];
    }
    c
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> ProbeError {
    move |e| ProbeError::io(what, &e)
}

fn protocol(message: impl Into<String>) -> ProbeError {
    ProbeError::new(ErrorKind::Protocol, message)
}

/// Waits for the server's state `want`, turning the states that end a test
/// into their errors.
async fn expect_state(ctrl: &mut TcpStream, want: i8, while_: &str) -> Result<(), ProbeError> {
    let mut b = [0u8; 1];
    ctrl.read_exact(&mut b)
        .await
        .map_err(io("read the iperf3 server's state"))?;
    match b[0] as i8 {
        s if s == want => Ok(()),
        ACCESS_DENIED => Err(ProbeError::new(
            ErrorKind::Busy,
            "the iperf3 server is busy with another test (it runs one at a time): try again later",
        )),
        SERVER_ERROR => {
            let mut codes = [0u8; 8];
            let detail = match ctrl.read_exact(&mut codes).await {
                Ok(_) => {
                    let e = i32::from_be_bytes([codes[0], codes[1], codes[2], codes[3]]);
                    let errno = i32::from_be_bytes([codes[4], codes[5], codes[6], codes[7]]);
                    format!(" (iperf3 error {e}, errno {errno})")
                }
                Err(_) => String::new(),
            };
            Err(protocol(format!(
                "the iperf3 server failed while {while_}{detail}"
            )))
        }
        SERVER_TERMINATE => Err(protocol(format!(
            "the iperf3 server ended the test while {while_}"
        ))),
        other => Err(protocol(format!(
            "the iperf3 server sent state {other} while {while_}, not {want}: is it an iperf3 server?"
        ))),
    }
}

async fn send_state(ctrl: &mut TcpStream, state: i8) -> Result<(), ProbeError> {
    ctrl.write_all(&[state as u8])
        .await
        .map_err(io("send a state to the iperf3 server"))
}

async fn write_json(ctrl: &mut TcpStream, v: &Value) -> Result<(), ProbeError> {
    let body = v.to_string().into_bytes();
    let len = u32::try_from(body.len()).map_err(|_| protocol("a JSON message too large"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    ctrl.write_all(&framed)
        .await
        .map_err(io("send JSON to the iperf3 server"))
}

async fn read_json(ctrl: &mut TcpStream) -> Result<Value, ProbeError> {
    let mut len = [0u8; 4];
    ctrl.read_exact(&mut len)
        .await
        .map_err(io("read the iperf3 server's results"))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_MESSAGE {
        return Err(protocol(format!(
            "the iperf3 server announced a {len}-byte message (at most {MAX_MESSAGE} are read)"
        )));
    }
    let mut body = vec![0u8; len as usize];
    ctrl.read_exact(&mut body)
        .await
        .map_err(io("read the iperf3 server's results"))?;
    serde_json::from_slice(&body).map_err(|e| {
        protocol(format!(
            "the iperf3 server's results are not JSON: {e}: {}",
            crate::model::excerpt(&String::from_utf8_lossy(&body), 200)
        ))
    })
}

/// What one stream moved in the measured seconds (UDP: and how the
/// datagrams arrived).
#[derive(Debug, Clone, Copy)]
pub(super) struct Counted {
    id: u32,
    sending: bool,
    bytes: u64,
    seconds: f64,
    retransmits: Option<u64>,
    /// UDP: datagrams sent, or the highest sequence number received.
    packets: u64,
    /// UDP, received: sequence gaps not filled later.
    lost: u64,
    out_of_order: Option<u64>,
    jitter_s: f64,
}

impl Counted {
    fn new(id: u32, sending: bool) -> Counted {
        Counted {
            id,
            sending,
            bytes: 0,
            seconds: 0.0,
            retransmits: None,
            packets: 0,
            lost: 0,
            out_of_order: None,
            jitter_s: 0.0,
        }
    }
}

/// Bytes moved each way in the measured seconds so far, shared by the
/// streams, read once a second for live progress.
#[derive(Clone, Default)]
pub(super) struct Live(Arc<[AtomicU64; 2]>);

impl Live {
    fn add_up(&self, n: usize) {
        self.0[0].fetch_add(n as u64, Ordering::Relaxed);
    }
    fn add_down(&self, n: usize) {
        self.0[1].fetch_add(n as u64, Ordering::Relaxed);
    }
    fn read(&self) -> [u64; 2] {
        [
            self.0[0].load(Ordering::Relaxed),
            self.0[1].load(Ordering::Relaxed),
        ]
    }
}

/// Tells `progress` once a second how the test is going, from the end of
/// slow start to the end of the window.
async fn report(
    progress: Progress,
    live: Live,
    recent: Option<Recent>,
    w: Window,
    spec: BandwidthSpec,
) {
    tokio::time::sleep_until(w.omit_end.into()).await;
    let (mut last, mut last_at) = (live.read(), Instant::now());
    let (up, down) = match spec.direction {
        Direction::Upload => (true, false),
        Direction::Download => (false, true),
        Direction::Bidir => (true, true),
    };
    while Instant::now() < w.end {
        tokio::time::sleep(
            Duration::from_secs(1).min(w.end.saturating_duration_since(Instant::now())),
        )
        .await;
        let (now, at) = (live.read(), Instant::now());
        let dt = at.duration_since(last_at).as_secs_f64();
        if dt <= 0.0 {
            continue;
        }
        let rate = |i: usize| (now[i].saturating_sub(last[i])) as f64 * 8.0 / 1e6 / dt;
        progress.send(Interim {
            elapsed_s: at.saturating_duration_since(w.omit_end).as_secs_f64(),
            seconds: spec.seconds,
            upload_mbps: up.then(|| rate(0)),
            download_mbps: down.then(|| rate(1)),
            loaded_latency_ms: recent.as_ref().and_then(|r| r.median_of_last(5)),
        });
        (last, last_at) = (now, at);
    }
}

/// The measured window of a test: after `omit`, for `seconds`.
#[derive(Clone, Copy)]
pub(super) struct Window {
    omit_end: Instant,
    end: Instant,
}

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A data stream, TCP or UDP, open and not yet started.
enum Stream {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// Runs the test `spec` asks for and writes its figures into `m`.
pub async fn run(
    spec: &BandwidthSpec,
    m: &mut Measurement,
    progress: Option<&Progress>,
) -> Result<(), ProbeError> {
    let resolved = resolve(&spec.server.host, spec.server.port).await?;
    m.metrics.dns_ms = resolved.dns_ms;
    m.metrics.server_kind = Some("iperf3".into());
    let (addr, connect_ms, mut ctrl, cookie) = greet(&resolved.addrs).await?;
    m.metrics.connect_ms = Some(connect_ms);
    m.resolved_ip = Some(addr.ip().to_string());
    // The idle latency, while the server waits for the parameters (its
    // other clients are not held up meanwhile).
    let pinger = Pinger::open(addr.ip());
    let idle = match &pinger {
        Some(p) => p.idle().await,
        None => Vec::new(),
    };

    // UDP has no slow start to leave out.
    let omit = if spec.udp_bitrate.is_some() {
        0
    } else {
        spec.omit
    };
    let mut params = json!({
        "omit": omit,
        "time": spec.seconds,
        "num": 0,
        "blockcount": 0,
        "parallel": spec.streams,
        "pacing_timer": 1000,
        "client_version": concat!("waddleperf-", env!("CARGO_PKG_VERSION")),
    });
    match spec.udp_bitrate {
        Some(bitrate) => {
            params["udp"] = json!(true);
            params["len"] = json!(udp::DATAGRAM);
            params["bandwidth"] = json!(bitrate);
        }
        None => {
            params["tcp"] = json!(true);
            params["len"] = json!(BLOCK);
        }
    }
    match spec.direction {
        Direction::Upload => {}
        Direction::Download => params["reverse"] = json!(true),
        Direction::Bidir => params["bidirectional"] = json!(true),
    }
    write_json(&mut ctrl, &params).await?;
    expect_state(&mut ctrl, CREATE_STREAMS, "exchanging parameters").await?;

    // Sending streams first, then receiving ones, as iperf3 orders them;
    // ids 1, 3, 4, 5, …
    let n = spec.streams as usize;
    let sending: Vec<bool> = match spec.direction {
        Direction::Upload => vec![true; n],
        Direction::Download => vec![false; n],
        Direction::Bidir => [vec![true; n], vec![false; n]].concat(),
    };
    let mut streams = Vec::with_capacity(sending.len());
    for (i, s) in sending.iter().enumerate() {
        let stream = match spec.udp_bitrate {
            Some(_) => Stream::Udp(udp::open(addr).await?),
            None => Stream::Tcp(open_stream(addr, &cookie).await?),
        };
        let id = if i == 0 { 1 } else { i as u32 + 2 };
        streams.push((id, *s, stream));
    }
    expect_state(&mut ctrl, TEST_START, "creating the streams").await?;
    expect_state(&mut ctrl, TEST_RUNNING, "starting the test").await?;

    let begin = Instant::now();
    let omit_end = begin + Duration::from_secs(u64::from(omit));
    let window = Window {
        omit_end,
        end: omit_end + Duration::from_secs(u64::from(spec.seconds)),
    };
    let sampler = pinger.as_ref().map(Pinger::start);
    let live = Live::default();
    let reporter = progress.map(|p| {
        let recent = sampler.as_ref().map(|s| s.recent());
        AbortOnDrop(tokio::spawn(report(
            p.clone(),
            live.clone(),
            recent,
            window,
            spec.clone(),
        )))
    });
    let (mut tcp_tasks, mut udp_tasks) = (JoinSet::new(), JoinSet::new());
    for (id, sending, stream) in streams {
        match (stream, sending) {
            (Stream::Tcp(s), true) => tcp_tasks.spawn(tcp::send(id, s, window, live.clone())),
            (Stream::Tcp(s), false) => tcp_tasks.spawn(tcp::receive(id, s, window, live.clone())),
            (Stream::Udp(s), true) => {
                let bitrate = spec.udp_bitrate.unwrap_or_default();
                udp_tasks.spawn(udp::send(id, s, window, bitrate, live.clone()))
            }
            (Stream::Udp(s), false) => udp_tasks.spawn(udp::receive(id, s, window, live.clone())),
        };
    }
    // The streams stay open until the server has its results.
    let mut counted = Vec::new();
    let (tcp_open, udp_open) = (
        finish(&mut tcp_tasks, &mut counted).await?,
        finish(&mut udp_tasks, &mut counted).await?,
    );
    counted.sort_by_key(|c| c.id);
    drop(reporter);
    let under_load = sampler
        .map(|s| s.stop(window.omit_end, window.end))
        .unwrap_or_default();

    send_state(&mut ctrl, TEST_END).await?;
    expect_state(&mut ctrl, EXCHANGE_RESULTS, "ending the test").await?;
    write_json(&mut ctrl, &results::ours(&counted)).await?;
    let theirs = read_json(&mut ctrl).await?;
    expect_state(&mut ctrl, DISPLAY_RESULTS, "exchanging results").await?;
    send_state(&mut ctrl, IPERF_DONE).await?;
    // The server closes the control connection once it has put the test
    // away; waiting for that (briefly) lets a test that follows at once
    // find it free rather than busy.
    let _ = tokio::time::timeout(DONE_WAIT, async {
        let mut b = [0u8; 64];
        while let Ok(n) = ctrl.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    drop((tcp_open, udp_open));
    let load = match spec.direction {
        Direction::Upload => Load::Up,
        Direction::Download => Load::Down,
        Direction::Bidir => Load::Both,
    };
    loaded::record(m, &idle, &under_load, load);
    results::figures(spec, &counted, &theirs, m)
}

/// Waits for every stream of one kind, collecting what each counted; the
/// sockets are handed back open.
async fn finish<S: 'static>(
    tasks: &mut JoinSet<Result<(Counted, S), ProbeError>>,
    counted: &mut Vec<Counted>,
) -> Result<Vec<S>, ProbeError> {
    let mut open = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (c, s) = joined
            .map_err(|e| ProbeError::new(ErrorKind::Io, format!("a stream failed: {e}")))??;
        counted.push(c);
        open.push(s);
    }
    Ok(open)
}

/// Connects, allowing for an iperf3 server between two tests: it closes
/// its listening socket when a test ends and opens a new one a moment later,
/// so a test that follows another at once can be refused, or reset while
/// the old socket goes away (seen on a busy machine), in between.
async fn connect_between_tests(addrs: &[SocketAddr]) -> Result<super::net::Connected, ProbeError> {
    let mut tries = 0;
    loop {
        match connect(addrs).await {
            Err(e)
                if matches!(e.kind, ErrorKind::Refused | ErrorKind::Reset)
                    && tries < REFUSED_TRIES =>
            {
                tries += 1;
                tokio::time::sleep(REFUSED_WAIT).await;
            }
            r => return r,
        }
    }
}

/// The control connection up to the server's first state: connected, the
/// cookie sent, PARAM_EXCHANGE read; with the address and connect time. A
/// server that has just finished a test may refuse the connection or reset
/// it unread while it re-opens its port: both are tried again, as in
/// [`connect_between_tests`].
async fn greet(addrs: &[SocketAddr]) -> Result<(SocketAddr, f64, TcpStream, [u8; 37]), ProbeError> {
    let mut tries = 0;
    loop {
        let super::net::Connected {
            stream: mut ctrl,
            addr,
            connect_ms,
        } = connect_between_tests(addrs).await?;
        let _ = ctrl.set_nodelay(true);
        let cookie = cookie();
        let greeted = match ctrl.write_all(&cookie).await {
            Ok(()) => expect_state(&mut ctrl, PARAM_EXCHANGE, "starting").await,
            Err(e) => Err(ProbeError::io("send the cookie to the iperf3 server", &e)),
        };
        match greeted {
            Ok(()) => return Ok((addr, connect_ms, ctrl, cookie)),
            Err(e) if e.kind == ErrorKind::Reset && tries < REFUSED_TRIES => {
                tries += 1;
                tokio::time::sleep(REFUSED_WAIT).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn open_stream(addr: SocketAddr, cookie: &[u8; 37]) -> Result<TcpStream, ProbeError> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| ProbeError::io(&format!("open a stream to {addr}"), &e))?;
    let _ = s.set_nodelay(true);
    s.write_all(cookie)
        .await
        .map_err(io("send the cookie on a stream"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_36_base32_characters_and_a_nul() {
        let c = cookie();
        assert_eq!(c[36], 0);
        assert!(c[..36].iter().all(|b| COOKIE_CHARS.contains(b)));
        assert_ne!(cookie(), c, "a new cookie each time");
    }
}
