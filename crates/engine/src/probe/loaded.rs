//! Latency under load: ICMP echoes to the server a bandwidth test loads,
//! a few while the link is idle (before the test) and a steady stream while
//! it is loaded, so the test can say how much its own traffic delays
//! everything else on the link: the queue it fills (bufferbloat).
//!
//! The echoes go through the same queues as the test's data: an upload's
//! data waits in this side's queue with the echo requests, a download's in
//! the far side's with the replies. Figures (`shared/reference/measurements.md`):
//! idle median as `latency_ms`, the loaded median per direction,
//! `latency_increase_ms` = loaded − idle, and `bufferbloat_grade` from it.
//!
//! Where this machine may not send ICMP echoes (no unprivileged ping, not
//! root) or the server does not answer them, these figures are left out;
//! the test's throughput is measured all the same.

use super::icmp::{Echo, Outcome, Session, SessionOptions};
use super::ms;
use crate::model::{Measurement, SampleStats};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Echoes sent while idle, and how far apart (idle and loaded).
pub const IDLE_ECHOES: u32 = 10;
pub const INTERVAL: Duration = Duration::from_millis(100);
/// How long one echo waits for its reply: a loaded queue can hold a reply
/// for seconds.
const REPLY_WAIT: Duration = Duration::from_secs(3);
/// Fewer replies than this under load give no loaded figure.
const MIN_LOADED: usize = 3;

/// The bufferbloat grade of a latency increase, on the scale of the
/// DSLReports and LibreQoS tests: A+ under 5 ms, A under 30, B under 60,
/// C under 200, D under 400, F from 400.
pub fn bufferbloat_grade(increase_ms: f64) -> &'static str {
    match increase_ms.max(0.0) {
        x if x < 5.0 => "A+",
        x if x < 30.0 => "A",
        x if x < 60.0 => "B",
        x if x < 200.0 => "C",
        x if x < 400.0 => "D",
        _ => "F",
    }
}

/// A plain-words reading of a grade, for people.
pub fn grade_words(grade: &str) -> &'static str {
    match grade {
        "A+" | "A" => {
            "no noticeable bufferbloat: calls and games stay smooth while the link is busy"
        }
        "B" => "slight bufferbloat: a busy link adds a little delay",
        "C" => "bufferbloat: video calls and games suffer while the link is busy",
        "D" => "bad bufferbloat: a busy link makes everything else slow",
        _ => "severe bufferbloat: a busy link makes everything else very slow",
    }
}

/// Echo replies of `dst` as (when the request went, RTT in ms).
type Replies = Arc<Mutex<Vec<(Instant, f64)>>>;

/// An ICMP session to the server, when this machine allows one.
pub struct Pinger {
    session: Arc<Session>,
    dst: IpAddr,
}

impl Pinger {
    pub fn open(dst: IpAddr) -> Option<Pinger> {
        match Session::open(dst, SessionOptions::default()) {
            Ok(s) => Some(Pinger {
                session: Arc::new(s),
                dst,
            }),
            Err(e) => {
                tracing::debug!("no latency under load: cannot send ICMP echoes: {e}");
                None
            }
        }
    }

    fn echo(&self) -> impl std::future::Future<Output = Option<f64>> + Send + 'static {
        let (session, dst) = (Arc::clone(&self.session), self.dst);
        async move {
            let e = Echo {
                dst,
                ttl: None,
                payload: 56,
                timeout: REPLY_WAIT,
            };
            match session.echo(e).await {
                Ok(Outcome::Reply { from, rtt }) if from == dst => Some(ms(rtt)),
                _ => None,
            }
        }
    }

    /// `IDLE_ECHOES` echoes `INTERVAL` apart: the replies' RTTs.
    pub async fn idle(&self) -> Vec<f64> {
        let mut tasks = JoinSet::new();
        for i in 0..IDLE_ECHOES {
            let echo = self.echo();
            tasks.spawn(async move {
                tokio::time::sleep(INTERVAL * i).await;
                echo.await
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some(rtt)) = r {
                out.push(rtt);
            }
        }
        out
    }

    /// Echoes every `INTERVAL` until the sampler is stopped.
    pub fn start(&self) -> Sampler {
        let replies: Replies = Arc::default();
        let (sink, session, dst) = (Arc::clone(&replies), Arc::clone(&self.session), self.dst);
        let ticker = tokio::spawn(async move {
            let pinger = Pinger { session, dst };
            let mut echoes = JoinSet::new();
            let mut tick = tokio::time::interval(INTERVAL);
            loop {
                tick.tick().await;
                let (echo, sink) = (pinger.echo(), Arc::clone(&sink));
                let sent = Instant::now();
                echoes.spawn(async move {
                    if let Some(rtt) = echo.await {
                        if let Ok(mut v) = sink.lock() {
                            v.push((sent, rtt));
                        }
                    }
                });
                while echoes.try_join_next().is_some() {}
            }
        });
        Sampler { ticker, replies }
    }
}

/// Echoes running in the background while a test loads the link.
pub struct Sampler {
    ticker: tokio::task::JoinHandle<()>,
    replies: Replies,
}

/// The replies of a running sampler, to read while it runs.
#[derive(Clone)]
pub struct Recent(Replies);

impl Recent {
    /// The median of the last `n` replies' RTTs.
    pub fn median_of_last(&self, n: usize) -> Option<f64> {
        let v = self.0.lock().ok()?;
        let last: Vec<f64> = v.iter().rev().take(n).map(|(_, rtt)| *rtt).collect();
        SampleStats::of(&last).map(|s| s.median)
    }
}

impl Sampler {
    pub fn recent(&self) -> Recent {
        Recent(Arc::clone(&self.replies))
    }

    /// Stops sending; the RTTs of echoes sent from `from` to `to` that
    /// have been answered.
    pub fn stop(self, from: Instant, to: Instant) -> Vec<f64> {
        self.ticker.abort();
        let v = self.replies.lock().map(|v| v.clone()).unwrap_or_default();
        v.into_iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .map(|(_, rtt)| rtt)
            .collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// Which way the link was loaded while the samples were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Up,
    Down,
    Both,
}

/// Writes the idle and loaded figures into `m`. The headline `latency_ms`
/// is the idle median; `loaded_latency_ms` the loaded median, also under
/// the direction's own name; the increase and its grade when both exist.
pub fn record(m: &mut Measurement, idle: &[f64], loaded: &[f64], load: Load) {
    let idle = SampleStats::of(idle).map(|s| s.median);
    m.latency_ms = idle;
    let loaded = (loaded.len() >= MIN_LOADED)
        .then(|| SampleStats::of(loaded).map(|s| s.median))
        .flatten();
    let x = &mut m.metrics;
    x.loaded_latency_ms = loaded;
    match load {
        Load::Up => x.loaded_latency_up_ms = loaded,
        Load::Down => x.loaded_latency_down_ms = loaded,
        Load::Both => {}
    }
    if let (Some(i), Some(l)) = (idle, loaded) {
        let increase = l - i;
        x.latency_increase_ms = Some(increase);
        x.bufferbloat_grade = Some(bufferbloat_grade(increase).to_owned());
    }
}

/// The figures of a test that loaded each direction in turn: the idle
/// median as `latency_ms` (its jitter too), each direction's loaded median
/// under its own name, `loaded_latency_ms` and the increase from the worse
/// of the two (the reference's max(loaded) − idle), and its grade.
pub fn record_directions(
    m: &mut Measurement,
    idle: &[f64],
    down: Option<&[f64]>,
    up: Option<&[f64]>,
) {
    let idle_stats = SampleStats::of(idle);
    m.latency_ms = idle_stats.map(|s| s.median);
    m.metrics.jitter_ms = idle_stats.filter(|_| idle.len() > 1).map(|s| s.jitter);
    let median = |v: Option<&[f64]>| {
        v.filter(|v| v.len() >= MIN_LOADED)
            .and_then(SampleStats::of)
            .map(|s| s.median)
    };
    let (d, u) = (median(down), median(up));
    let x = &mut m.metrics;
    x.loaded_latency_down_ms = d;
    x.loaded_latency_up_ms = u;
    x.loaded_latency_ms = match (d, u) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    if let (Some(i), Some(l)) = (m.latency_ms, x.loaded_latency_ms) {
        let increase = l - i;
        x.latency_increase_ms = Some(increase);
        x.bufferbloat_grade = Some(bufferbloat_grade(increase).to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestType;

    #[test]
    fn grades_follow_the_published_scale() {
        let cases = [
            (-3.0, "A+"),
            (4.9, "A+"),
            (5.0, "A"),
            (29.9, "A"),
            (30.0, "B"),
            (59.0, "B"),
            (60.0, "C"),
            (199.0, "C"),
            (200.0, "D"),
            (399.0, "D"),
            (400.0, "F"),
            (5000.0, "F"),
        ];
        for (ms, g) in cases {
            assert_eq!(bufferbloat_grade(ms), g, "{ms} ms");
        }
        assert!(grade_words("F").contains("severe"));
    }

    #[test]
    fn the_increase_is_loaded_median_less_idle_median() {
        let mut m = Measurement::begin(TestType::Bandwidth, "iperf3://x:5201");
        record(
            &mut m,
            &[10.0, 11.0, 12.0],
            &[100.0, 250.0, 260.0, 270.0],
            Load::Up,
        );
        assert_eq!(m.latency_ms, Some(11.0));
        assert_eq!(m.metrics.loaded_latency_up_ms, Some(255.0));
        assert_eq!(m.metrics.loaded_latency_down_ms, None);
        assert_eq!(m.metrics.latency_increase_ms, Some(244.0));
        assert_eq!(m.metrics.bufferbloat_grade.as_deref(), Some("D"));

        let mut m = Measurement::begin(TestType::Bandwidth, "iperf3://x:5201");
        record(&mut m, &[10.0], &[20.0, 21.0], Load::Down);
        assert_eq!(m.metrics.loaded_latency_ms, None, "too few loaded replies");
        assert_eq!(m.metrics.bufferbloat_grade, None);
    }
}
