//! HTTP speed tests: a WaddlePerf test server (`/speedtest/*`, as
//! `waddleperf serve` answers it) and LibreSpeed servers (`garbage`,
//! `empty`, with or without `.php`), and responsiveness (`rpm.rs`).
//!
//! The method, the same for both kinds: idle latency first (one request to
//! warm the connection, then 10 small requests 100 ms apart on a kept-alive
//! connection: their median and jitter); then each direction the spec asks
//! for (download before upload), `streams` connections each repeating large
//! downloads (or uploads) for `omit` seconds of slow start, left out, and
//! `seconds` measured. The rate is the bytes counted in the measured
//! seconds over their length: no fudge factor. The latency requests go on
//! while the link is loaded, through the same queues: their median is the
//! loaded latency of that direction.

pub mod conn;
pub mod rpm;

use super::bandwidth::Progress;
use super::loaded;
use super::ProbeError;
use crate::kinds::{BandwidthKind, Direction};
use crate::model::{ErrorKind, Interim, Measurement};
use crate::spec::BandwidthSpec;
use conn::{empty, Conn, Proto, Sent, Upload};
use hyper::Method;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use url::Url;

/// Latency requests while idle, and how far apart (idle and loaded).
const IDLE_PINGS: usize = 10;
const PING_EVERY: Duration = Duration::from_millis(100);
/// Bytes of one upload request, and the size a download asks for.
const UPLOAD_BYTES: u64 = 8 << 20;
/// Longest answer a latency request may have.
const PING_MAX: usize = 4096;
/// How long a new connection may take.
const OPEN_LIMIT: Duration = Duration::from_secs(10);

/// The URLs of one server.
#[derive(Clone)]
struct Paths {
    ping: Url,
    download: Url,
    upload: Url,
    /// Between the starts of the load connections (LibreSpeed's client
    /// staggers its streams).
    stagger: Duration,
    /// Latency requests carry a random parameter (LibreSpeed's `empty`
    /// may be cached on the way; WaddlePerf's ping says no-cache itself).
    cache_buster: bool,
}

fn join(base: &Url, rel: &str) -> Result<Url, ProbeError> {
    base.join(rel).map_err(|e| {
        ProbeError::new(
            ErrorKind::Config,
            format!("cannot make a URL of {base} and {rel}: {e}"),
        )
    })
}

/// The server's paths; for LibreSpeed, whether it wants `.php` is found
/// with a first request.
async fn paths(kind: BandwidthKind, base: &Url, c: &mut Conn) -> Result<Paths, ProbeError> {
    match kind {
        BandwidthKind::Waddleperf => Ok(Paths {
            ping: join(base, "speedtest/ping")?,
            download: join(base, "speedtest/download?size=100")?,
            upload: join(base, "speedtest/upload")?,
            stagger: Duration::ZERO,
            cache_buster: false,
        }),
        _ => {
            let mut ext = ".php";
            if let Err(e) = c.fetch_small(&join(base, "empty.php")?, PING_MAX).await {
                if e.kind != ErrorKind::Http {
                    return Err(e);
                }
                ext = "";
                c.fetch_small(&join(base, "empty")?, PING_MAX)
                    .await
                    .map_err(|e| {
                        ProbeError::new(
                            e.kind,
                            format!(
                                "{base} is not a LibreSpeed server: neither empty.php nor empty answers ({})",
                                e.message
                            ),
                        )
                    })?;
            }
            Ok(Paths {
                ping: join(base, &format!("empty{ext}"))?,
                download: join(base, &format!("garbage{ext}?ckSize=100"))?,
                upload: join(base, &format!("empty{ext}"))?,
                stagger: Duration::from_millis(300),
                cache_buster: true,
            })
        }
    }
}

/// A latency request's URL: LibreSpeed's get a random parameter so no
/// cache answers them.
fn ping_url(p: &Paths) -> Url {
    let mut u = p.ping.clone();
    if p.cache_buster {
        u.set_query(Some(&format!("r={}", fastrand::u64(..))));
    }
    u
}

pub(super) async fn run(
    s: &BandwidthSpec,
    m: &mut Measurement,
    progress: Option<&Progress>,
) -> Result<(), ProbeError> {
    let base = s
        .url
        .as_ref()
        .ok_or_else(|| ProbeError::new(ErrorKind::Config, "no base URL for the speed test"))?;
    m.metrics.server_kind = Some(s.kind.as_str().to_owned());
    m.metrics.streams = Some(s.streams);
    let mut pinger = Conn::open(base, Proto::Http1, OPEN_LIMIT).await?;
    m.resolved_ip = Some(pinger.addr.ip().to_string());
    m.metrics.connect_ms = Some(pinger.connect_ms);
    m.metrics.tls_ms = pinger.tls_ms;
    let p = paths(s.kind, base, &mut pinger).await?;
    // The first request warms the connection; it is left out.
    pinger.fetch_small(&ping_url(&p), PING_MAX).await?;
    let mut idle = Vec::with_capacity(IDLE_PINGS);
    for i in 0..IDLE_PINGS {
        if i > 0 {
            tokio::time::sleep(PING_EVERY).await;
        }
        idle.push(pinger.fetch_small(&ping_url(&p), PING_MAX).await?.0);
    }
    let dirs: &[Direction] = match s.direction {
        Direction::Download => &[Direction::Download],
        Direction::Upload => &[Direction::Upload],
        Direction::Bidir => &[Direction::Download, Direction::Upload],
    };
    let pinger = Arc::new(tokio::sync::Mutex::new(pinger));
    let (mut down, mut up) = (None, None);
    let (mut measured, mut moved) = (0.0, 0u64);
    for &dir in dirs {
        let r = load(s, &p, dir, Arc::clone(&pinger), progress).await?;
        measured += r.seconds;
        moved += r.total;
        match dir {
            Direction::Upload => {
                m.metrics.upload_mbps = Some(r.mbps);
                up = Some(r.loaded);
            }
            _ => {
                m.metrics.download_mbps = Some(r.mbps);
                down = Some(r.loaded);
            }
        }
    }
    m.metrics.seconds = Some(measured);
    m.metrics.bytes = Some(moved);
    loaded::record_directions(m, &idle, down.as_deref(), up.as_deref());
    Ok(())
}

/// One direction's figures.
struct Loaded {
    mbps: f64,
    seconds: f64,
    loaded: Vec<f64>,
    /// Bytes moved, slow start included (the data budget counts them).
    total: u64,
}

/// Loads the link one way with `streams` connections for `omit + seconds`,
/// measuring the rate over the last `seconds` and latency all along.
async fn load(
    s: &BandwidthSpec,
    p: &Paths,
    dir: Direction,
    pinger: Arc<tokio::sync::Mutex<Conn>>,
    progress: Option<&Progress>,
) -> Result<Loaded, ProbeError> {
    // Downloads count what arrives; uploads what the server acknowledged.
    let counter = Arc::new(AtomicU64::new(0));
    let sent = Sent::default();
    let count = |sent: &Sent, counter: &AtomicU64| conn::moved(dir, sent, counter);
    let stop = Arc::new(AtomicBool::new(false));
    let failed: Arc<Mutex<Option<ProbeError>>> = Arc::default();
    let pool = conn::upload_pool();
    let mut workers = JoinSet::new();
    for i in 0..s.streams {
        let (counter, stop, failed, sent) = (
            Arc::clone(&counter),
            Arc::clone(&stop),
            Arc::clone(&failed),
            sent.clone(),
        );
        let (url, pool, delay) = (
            if dir == Direction::Upload {
                p.upload.clone()
            } else {
                p.download.clone()
            },
            pool.clone(),
            p.stagger * i,
        );
        workers.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = stream(&url, dir, &pool, &counter, &sent, &stop).await {
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert(e);
                }
            }
        });
    }
    // Latency requests on the kept-alive connection, all along.
    let samples: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let mut pings = {
        let (samples, stop, p) = (Arc::clone(&samples), Arc::clone(&stop), p.clone());
        tokio::spawn(async move {
            let mut c = pinger.lock().await;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match c.fetch_small(&ping_url(&p), PING_MAX).await {
                    Ok((rtt, _)) => {
                        if let Ok(mut v) = samples.lock() {
                            v.push((sent, rtt));
                        }
                    }
                    // A connection the loaded link broke: a new one.
                    Err(_) => match Conn::open(&p.ping, Proto::Http1, OPEN_LIMIT).await {
                        Ok(n) => *c = n,
                        Err(_) => break,
                    },
                }
                tokio::time::sleep(PING_EVERY.saturating_sub(sent.elapsed())).await;
            }
        })
    };
    let start = Instant::now();
    let omit = Duration::from_secs(u64::from(s.omit));
    let window = Duration::from_secs(u64::from(s.seconds));
    // Slow start, left out (or ended by failure).
    let mut from = (Instant::now(), 0u64);
    let mut last = from;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(start + omit),
        Duration::from_secs(1),
    );
    let mut began = false;
    let end = start + omit + window;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let bytes = count(&sent, &counter);
        if !began {
            from = (now, bytes);
            last = from;
            began = true;
        } else if let Some(pr) = progress {
            let secs = (now - last.0).as_secs_f64();
            let mbps = (bytes - last.1) as f64 * 8.0 / 1e6 / secs.max(1e-3);
            let recent = samples.lock().ok().and_then(|v| v.last().map(|(_, r)| *r));
            pr.send(Interim {
                elapsed_s: (now - from.0).as_secs_f64(),
                seconds: s.seconds,
                upload_mbps: (dir == Direction::Upload).then_some(mbps),
                download_mbps: (dir != Direction::Upload).then_some(mbps),
                loaded_latency_ms: recent,
            });
            last = (now, bytes);
        }
        // Streams end only when they fail: all failed, nothing to wait for.
        while workers.try_join_next().is_some() {}
        if workers.is_empty() {
            break;
        }
        if now + Duration::from_millis(999) >= end {
            tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
            break;
        }
    }
    let to = (Instant::now(), count(&sent, &counter));
    stop.store(true, Ordering::Relaxed);
    workers.abort_all();
    // The latency requests end after the one in flight, so the connection
    // stays usable for the next direction.
    if tokio::time::timeout(Duration::from_secs(3), &mut pings)
        .await
        .is_err()
    {
        pings.abort();
    }
    let seconds = (to.0 - from.0).as_secs_f64();
    let err = failed.lock().ok().and_then(|mut f| f.take());
    if to.1 <= from.1 || seconds < 0.5 {
        return Err(err.unwrap_or_else(|| {
            ProbeError::new(
                ErrorKind::Protocol,
                format!("no {} data in the measured time", dir.as_str()),
            )
        }));
    }
    if let Some(e) = err {
        tracing::debug!("a speed-test stream failed: {e}");
    }
    let loaded = samples
        .lock()
        .map(|v| {
            v.iter()
                .filter(|(at, _)| *at >= from.0)
                .map(|(_, r)| *r)
                .collect()
        })
        .unwrap_or_default();
    Ok(Loaded {
        mbps: (to.1 - from.1) as f64 * 8.0 / 1e6 / seconds,
        seconds,
        loaded,
        total: to.1,
    })
}

/// One load connection: downloads (or uploads) one after another until
/// stopped.
async fn stream(
    url: &Url,
    dir: Direction,
    pool: &bytes::Bytes,
    counter: &Arc<AtomicU64>,
    sent: &Sent,
    stop: &Arc<AtomicBool>,
) -> Result<(), ProbeError> {
    let mut c = Conn::open(url, Proto::Http1, OPEN_LIMIT).await?;
    sent.track(&c);
    while !stop.load(Ordering::Relaxed) {
        if dir == Direction::Upload {
            let body = Upload::body(
                pool.clone(),
                Some(UPLOAD_BYTES),
                Arc::clone(&sent.handed),
                Arc::clone(stop),
            );
            let req = c.request(Method::POST, url, body);
            let resp = c.send(req).await?;
            conn::drain(resp.into_body(), &AtomicU64::new(0), stop).await?;
        } else {
            let req = c.request(Method::GET, url, empty());
            let resp = c.send(req).await?;
            conn::drain(resp.into_body(), counter, stop).await?;
        }
    }
    Ok(())
}
