//! Responsiveness under working conditions (RPM), after the IETF IPPM
//! draft (-09) that Apple's `networkQuality` and Cloudflare's tools follow.
//!
//! The server publishes its URLs at `/.well-known/nq`: a 1-byte object, a
//! large (endless) one and an upload sink. For each direction asked for,
//! load-generating connections (HTTP/2 where the server speaks it) are
//! added one per second, up to 16, until goodput is stable: the standard
//! deviation of the last 4 one-second moving averages within 5 % of their
//! mean. All along, every 100 ms, a *foreign* probe opens a new connection
//! (its TCP connect `tcp_f`, TLS handshake `tls_f` and a 1-byte GET
//! `http_f` timed) and a *self* probe GETs the 1-byte object on a loaded
//! connection (`http_l`). From the probes of the last 4 intervals, with TM
//! the 95 % trimmed mean:
//! RPM = mean(60000 / ((TM(tcp_f)+TM(tls_f)+TM(http_f))/3), 60000 / TM(http_l))
//! (without TLS the first term divides by 2). Confidence: low (fewer than
//! 4 intervals), medium (goodput never stable), high (stable).
//!
//! Latency under load for the grade: the median foreign connect time
//! loaded, less its median idle (10 connects before any load): the delay a
//! new connection of any other application meets on the loaded link.

use super::conn::{self, empty, Conn, Proto, Sent, Upload};
use crate::kinds::Direction;
use crate::model::{ErrorKind, Interim, Measurement, SampleStats};
use crate::probe::bandwidth::Progress;
use crate::probe::{loaded, ProbeError};
use crate::spec::BandwidthSpec;
use hyper::Method;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use url::Url;

const INTERVAL: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_millis(100);
const MAX_CONNECTIONS: usize = 16;
/// Intervals in a moving average, and moving averages judged for stability.
const WINDOW: usize = 4;
const STABLE_WITHIN: f64 = 0.05;
const IDLE_PROBES: usize = 10;
const OPEN_LIMIT: Duration = Duration::from_secs(10);
/// Probes in flight at most (a badly loaded link answers slowly).
const MAX_IN_FLIGHT: usize = 32;

/// The three URLs of a responsiveness server.
#[derive(Debug, Clone)]
struct Urls {
    small: Url,
    large: Url,
    upload: Url,
}

/// The RPM confidence, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// A plain-words reading of an RPM figure, for people (Apple's bands:
/// under 300 low, from 1000 high).
pub fn rpm_words(rpm: f64) -> &'static str {
    match rpm {
        x if x < 300.0 => {
            "low responsiveness: on a busy link, calls, games and pages feel sluggish"
        }
        x if x < 1000.0 => "medium responsiveness: a busy link slows interactive apps somewhat",
        _ => "high responsiveness: interactive apps stay quick while the link is busy",
    }
}

/// The mean of the samples at or below their 95th percentile.
pub fn trimmed_mean(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let keep = ((v.len() as f64) * 0.95).ceil().max(1.0) as usize;
    let kept = &v[..keep.min(v.len())];
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// RPM from the probes' trimmed means (ms); `tls_f` is `None` over plain
/// TCP.
pub fn rpm(tcp_f: f64, tls_f: Option<f64>, http_f: f64, http_l: f64) -> f64 {
    let foreign = match tls_f {
        Some(t) => (tcp_f + t + http_f) / 3.0,
        None => (tcp_f + http_f) / 2.0,
    };
    (60_000.0 / foreign.max(1e-3) + 60_000.0 / http_l.max(1e-3)) / 2.0
}

/// Goodput stable: the last `WINDOW` moving averages' standard deviation
/// within 5 % of their mean.
pub fn stable(moving: &[f64]) -> bool {
    if moving.len() < WINDOW {
        return false;
    }
    let last = &moving[moving.len() - WINDOW..];
    match SampleStats::of(last) {
        Some(s) => s.mean > 0.0 && s.stddev <= STABLE_WITHIN * s.mean,
        None => false,
    }
}

/// One probe round's times (ms), stamped with when it was sent.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Foreign {
        at: Instant,
        tcp: f64,
        tls: Option<f64>,
        http: f64,
    },
    SelfProbe {
        at: Instant,
        http: f64,
    },
}

async fn config(base: &Url) -> Result<(Urls, std::net::IpAddr), ProbeError> {
    let cfg_url = base.join(".well-known/nq").map_err(|e| {
        ProbeError::new(
            ErrorKind::Config,
            format!("cannot make the config URL: {e}"),
        )
    })?;
    let mut c = Conn::open(&cfg_url, Proto::Http1, OPEN_LIMIT).await?;
    let (_, body) = c.fetch_small(&cfg_url, 64 << 10).await.map_err(|e| {
        ProbeError::new(
            e.kind,
            format!("{cfg_url}: not a responsiveness server ({})", e.message),
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ProbeError::new(
            ErrorKind::Protocol,
            format!("{cfg_url} did not answer JSON: {e}"),
        )
    })?;
    let url = |name: &str| -> Result<Url, ProbeError> {
        let s = v["urls"][name].as_str().ok_or_else(|| {
            ProbeError::new(
                ErrorKind::Protocol,
                format!("{cfg_url}: the answer has no urls.{name}"),
            )
        })?;
        let u = base.join(s).map_err(|e| {
            ProbeError::new(
                ErrorKind::Protocol,
                format!("{cfg_url}: urls.{name} is not a URL: {e}"),
            )
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(ProbeError::new(
                ErrorKind::Protocol,
                format!("{cfg_url}: urls.{name} is not http or https"),
            ));
        }
        Ok(u)
    };
    let urls = Urls {
        small: url("small_download_url")?,
        large: url("large_download_url")?,
        upload: url("upload_url")?,
    };
    Ok((urls, c.addr.ip()))
}

/// A foreign probe: a new connection, a 1-byte GET on it.
async fn foreign(u: &Urls) -> Result<Sample, ProbeError> {
    let at = Instant::now();
    let mut c = Conn::open(&u.small, Proto::Http1, OPEN_LIMIT).await?;
    let (http, _) = c.fetch_small(&u.small, 1024).await?;
    Ok(Sample::Foreign {
        at,
        tcp: c.connect_ms,
        tls: c.tls_ms,
        http,
    })
}

pub(crate) async fn run(
    s: &BandwidthSpec,
    m: &mut Measurement,
    progress: Option<&Progress>,
) -> Result<(), ProbeError> {
    let base = s
        .url
        .as_ref()
        .ok_or_else(|| ProbeError::new(ErrorKind::Config, "no base URL for the RPM test"))?;
    m.metrics.server_kind = Some(s.kind.as_str().to_owned());
    let (urls, ip) = config(base).await?;
    m.resolved_ip = Some(ip.to_string());
    // Idle: new connections' connect times.
    let mut idle = Vec::with_capacity(IDLE_PROBES);
    for _ in 0..IDLE_PROBES {
        if let Sample::Foreign { tcp, .. } = foreign(&urls).await? {
            idle.push(tcp);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let dirs: &[Direction] = match s.direction {
        Direction::Download => &[Direction::Download],
        Direction::Upload => &[Direction::Upload],
        Direction::Bidir => &[Direction::Download, Direction::Upload],
    };
    let (mut window, mut conf, mut most) = (Vec::new(), Confidence::High, 0usize);
    let (mut down, mut up) = (None, None);
    let (mut measured, mut moved) = (0.0, 0u64);
    for &dir in dirs {
        let r = load(s, &urls, dir, progress).await?;
        conf = conf.min(r.confidence);
        most = most.max(r.connections);
        measured += r.seconds;
        moved += r.total;
        let connects: Vec<f64> = r
            .window
            .iter()
            .filter_map(|x| match x {
                Sample::Foreign { tcp, .. } => Some(*tcp),
                Sample::SelfProbe { .. } => None,
            })
            .collect();
        if dir == Direction::Upload {
            m.metrics.upload_mbps = Some(r.mbps);
            up = Some(connects);
        } else {
            m.metrics.download_mbps = Some(r.mbps);
            down = Some(connects);
        }
        window.extend(r.window);
    }
    let pick = |f: fn(&Sample) -> Option<f64>| window.iter().filter_map(f).collect::<Vec<f64>>();
    let tcp_f = trimmed_mean(&pick(|x| match x {
        Sample::Foreign { tcp, .. } => Some(*tcp),
        _ => None,
    }));
    let tls_f = trimmed_mean(&pick(|x| match x {
        Sample::Foreign { tls, .. } => *tls,
        _ => None,
    }));
    let http_f = trimmed_mean(&pick(|x| match x {
        Sample::Foreign { http, .. } => Some(*http),
        _ => None,
    }));
    let http_l = trimmed_mean(&pick(|x| match x {
        Sample::SelfProbe { http, .. } => Some(*http),
        _ => None,
    }));
    let (Some(tcp_f), Some(http_f), Some(http_l)) = (tcp_f, http_f, http_l) else {
        return Err(ProbeError::new(
            ErrorKind::Timeout,
            "no probe was answered while the link was loaded",
        ));
    };
    tracing::debug!(
        tcp_f,
        ?tls_f,
        http_f,
        http_l,
        probes = window.len(),
        "responsiveness"
    );
    m.metrics.rpm = Some(rpm(tcp_f, tls_f, http_f, http_l).round());
    m.metrics.rpm_confidence = Some(conf.as_str().to_owned());
    m.metrics.streams = Some(most as u32);
    m.metrics.seconds = Some(measured);
    m.metrics.bytes = Some(moved);
    loaded::record_directions(m, &idle, down.as_deref(), up.as_deref());
    // The idle connect times are the test's headline latency; their jitter
    // says little here.
    m.metrics.jitter_ms = None;
    Ok(())
}

struct Loaded {
    mbps: f64,
    seconds: f64,
    /// Bytes moved (the data budget counts them).
    total: u64,
    confidence: Confidence,
    connections: usize,
    window: Vec<Sample>,
}

/// A load-generating connection: the large object (or the upload sink)
/// over and over until stopped. Its HTTP/2 handle is shared for self
/// probes.
async fn generate(
    u: Urls,
    dir: Direction,
    counter: Arc<AtomicU64>,
    sent: Sent,
    stop: Arc<AtomicBool>,
    selfs: Arc<Mutex<Vec<Conn>>>,
) -> Result<(), ProbeError> {
    let target = if dir == Direction::Upload {
        &u.upload
    } else {
        &u.large
    };
    let mut c = Conn::open(target, Proto::Http2, OPEN_LIMIT).await?;
    sent.track(&c);
    if let Some(h) = c.h2_clone() {
        if let Ok(mut v) = selfs.lock() {
            v.push(h);
        }
    }
    let pool = conn::upload_pool();
    while !stop.load(Ordering::Relaxed) {
        if dir == Direction::Upload {
            let body = Upload::body(
                pool.clone(),
                None,
                Arc::clone(&sent.handed),
                Arc::clone(&stop),
            );
            let req = c.request(Method::POST, target, body);
            let resp = c.send(req).await?;
            conn::drain(resp.into_body(), &AtomicU64::new(0), &stop).await?;
        } else {
            let req = c.request(Method::GET, target, empty());
            let resp = c.send(req).await?;
            conn::drain(resp.into_body(), &counter, &stop).await?;
        }
    }
    Ok(())
}

async fn load(
    s: &BandwidthSpec,
    u: &Urls,
    dir: Direction,
    progress: Option<&Progress>,
) -> Result<Loaded, ProbeError> {
    // Downloads count what arrives; uploads what the server acknowledged.
    let counter = Arc::new(AtomicU64::new(0));
    let sent = Sent::default();
    let count = |sent: &Sent, counter: &AtomicU64| conn::moved(dir, sent, counter);
    let stop = Arc::new(AtomicBool::new(false));
    let selfs: Arc<Mutex<Vec<Conn>>> = Arc::default();
    let failed: Arc<Mutex<Option<ProbeError>>> = Arc::default();
    let mut gens = JoinSet::new();
    let add = |gens: &mut JoinSet<()>| {
        let (u, counter, sent, stop, selfs, failed) = (
            u.clone(),
            Arc::clone(&counter),
            sent.clone(),
            Arc::clone(&stop),
            Arc::clone(&selfs),
            Arc::clone(&failed),
        );
        gens.spawn(async move {
            if let Err(e) = generate(u, dir, counter, sent, stop, selfs).await {
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert(e);
                }
            }
        });
    };
    add(&mut gens);
    let mut opened = 1usize;
    // Probes every 100 ms until the end.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let prober = {
        let (u, stop, selfs, samples) = (
            u.clone(),
            Arc::clone(&stop),
            Arc::clone(&selfs),
            Arc::clone(&samples),
        );
        tokio::spawn(async move {
            let mut flying = JoinSet::new();
            let mut tick = tokio::time::interval(PROBE_EVERY);
            let mut turn = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                while flying.try_join_next().is_some() {}
                if flying.len() >= MAX_IN_FLIGHT {
                    continue;
                }
                let (uf, sink) = (u.clone(), Arc::clone(&samples));
                flying.spawn(async move {
                    if let Ok(x) = foreign(&uf).await {
                        if let Ok(mut v) = sink.lock() {
                            v.push(x);
                        }
                    }
                });
                let h = selfs.lock().ok().and_then(|v| {
                    (!v.is_empty())
                        .then(|| v[turn % v.len()].h2_clone())
                        .flatten()
                });
                turn += 1;
                if let Some(mut h) = h {
                    let (small, sink) = (u.small.clone(), Arc::clone(&samples));
                    flying.spawn(async move {
                        let at = Instant::now();
                        if let Ok((http, _)) = h.fetch_small(&small, 1024).await {
                            if let Ok(mut v) = sink.lock() {
                                v.push(Sample::SelfProbe { at, http });
                            }
                        }
                    });
                }
            }
            flying.abort_all();
        })
    };
    let start = Instant::now();
    let limit = Duration::from_secs(u64::from(s.seconds.max(WINDOW as u32)));
    let (mut rates, mut moving) = (Vec::new(), Vec::new());
    let mut last = (start, 0u64);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::from_std(start + INTERVAL), INTERVAL);
    let mut is_stable = false;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let bytes = count(&sent, &counter);
        let mbps = (bytes - last.1) as f64 * 8.0 / 1e6 / (now - last.0).as_secs_f64().max(1e-3);
        last = (now, bytes);
        rates.push(mbps);
        let from = rates.len().saturating_sub(WINDOW);
        moving.push(rates[from..].iter().sum::<f64>() / (rates.len() - from) as f64);
        if let Some(p) = progress {
            let recent = samples.lock().ok().and_then(|v| {
                v.iter().rev().find_map(|x| match x {
                    Sample::SelfProbe { http, .. } => Some(*http),
                    _ => None,
                })
            });
            p.send(Interim {
                elapsed_s: (now - start).as_secs_f64(),
                seconds: s.seconds,
                upload_mbps: (dir == Direction::Upload).then_some(mbps),
                download_mbps: (dir != Direction::Upload).then_some(mbps),
                loaded_latency_ms: recent,
            });
        }
        while gens.try_join_next().is_some() {}
        if gens.is_empty() {
            break;
        }
        is_stable = stable(&moving);
        if is_stable || now - start + INTERVAL / 2 >= limit {
            break;
        }
        if opened < MAX_CONNECTIONS {
            add(&mut gens);
            opened += 1;
        }
    }
    let end = Instant::now();
    stop.store(true, Ordering::Relaxed);
    gens.abort_all();
    prober.abort();
    let intervals = rates.len();
    let err = failed.lock().ok().and_then(|mut f| f.take());
    let total = count(&sent, &counter);
    if total == 0 {
        return Err(err.unwrap_or_else(|| {
            ProbeError::new(
                ErrorKind::Protocol,
                format!("no {} data from the responsiveness server", dir.as_str()),
            )
        }));
    }
    let since = end - INTERVAL * (WINDOW.min(intervals) as u32);
    let window = samples
        .lock()
        .map(|v| {
            v.iter()
                .filter(|x| match x {
                    Sample::Foreign { at, .. } | Sample::SelfProbe { at, .. } => *at >= since,
                })
                .copied()
                .collect()
        })
        .unwrap_or_default();
    Ok(Loaded {
        mbps: moving.last().copied().unwrap_or(0.0),
        seconds: (end - start).as_secs_f64(),
        total,
        confidence: if intervals < WINDOW {
            Confidence::Low
        } else if is_stable {
            Confidence::High
        } else {
            Confidence::Medium
        },
        connections: opened,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_follows_the_drafts_formula() {
        // 20 ms for each foreign step and 20 ms loaded: 3000 RPM.
        assert_eq!(rpm(20.0, Some(20.0), 20.0, 20.0), 3000.0);
        // Without TLS the foreign term divides by 2.
        assert_eq!(
            rpm(10.0, None, 30.0, 60.0),
            (60_000.0 / 20.0 + 1000.0) / 2.0
        );
    }

    #[test]
    fn the_trimmed_mean_drops_the_top_five_percent() {
        let mut v: Vec<f64> = (0..19).map(|_| 10.0).collect();
        v.push(1000.0);
        assert_eq!(trimmed_mean(&v), Some(10.0));
        assert_eq!(trimmed_mean(&[]), None);
        assert_eq!(trimmed_mean(&[7.0]), Some(7.0));
    }

    #[test]
    fn goodput_is_stable_within_five_percent() {
        assert!(!stable(&[100.0, 100.0, 100.0]));
        assert!(stable(&[10.0, 50.0, 98.0, 100.0, 101.0, 99.0]));
        assert!(!stable(&[50.0, 70.0, 90.0, 100.0]));
        assert!(!stable(&[0.0, 0.0, 0.0, 0.0]));
    }
}
