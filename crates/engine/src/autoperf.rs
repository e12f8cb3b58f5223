//! AutoPerf: target health and tier escalation from the thresholds in
//! `measurements.md`.
//!
//! - A tier 1 result *breaches* when it failed or a tier 1 figure crosses its
//!   threshold (latency, loss, HTTP total, DNS time). Its target's health is
//!   `down` when it failed (or lost every probe), `degraded` on any other
//!   breach, else `ok`.
//! - After `escalate_after` consecutive tier 1 runs with a breach, tier 2 is
//!   escalated to: it runs at once, and again after every tier 1 run while
//!   escalated.
//! - After `escalate_after` consecutive tier 2 runs breaching a tier 2
//!   threshold (throughput, jitter, hops, certificate expiry, or a failure),
//!   tier 3 runs once; it runs again only after `tier3_cooldown_minutes`.
//! - After `deescalate_after` consecutive tier 1 runs with no breach, back to
//!   tier 1 only.
//!
//! The state machine is pure (no clock, no I/O) so it is tested directly; the
//! runtime persists [`EscalationState`] in the store between runs.

use crate::config::{AutoPerf, Thresholds};
use crate::model::{ErrorKind, Measurement, TestType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A target's health, from its latest tier 1 result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Health {
    Ok,
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One threshold crossed by one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Breach {
    pub test_type: TestType,
    pub target: String,
    /// The figure (`latency_ms`, `cert_days_left`…) or `success` for a failure.
    pub metric: String,
    /// The measured value (0 for a failure).
    pub value: f64,
    /// The threshold it crossed (for a failure, 1: the test should succeed).
    pub threshold: f64,
    /// Whether the value must stay `below` or `above` the threshold.
    pub limit: Limit,
    /// For a failure: its error kind and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Limit {
    /// The value must not exceed the threshold.
    Max,
    /// The value must not fall below the threshold.
    Min,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.error {
            return write!(f, "{} {} failed: {e}", self.test_type, self.target);
        }
        let rel = match self.limit {
            Limit::Max => "above",
            Limit::Min => "below",
        };
        write!(
            f,
            "{} {}: {} {} is {rel} the threshold {}",
            self.test_type,
            self.target,
            self.metric,
            trim(self.value),
            trim(self.threshold)
        )
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn breach(m: &Measurement, metric: &str, value: f64, threshold: f64, limit: Limit) -> Breach {
    Breach {
        test_type: m.test_type,
        target: m.target.clone(),
        metric: metric.to_owned(),
        value,
        threshold,
        limit,
        error: None,
    }
}

fn failure(m: &Measurement) -> Breach {
    let kind = m.error_kind.unwrap_or(ErrorKind::Io);
    let msg = m.error.as_deref().unwrap_or("no detail");
    Breach {
        error: Some(format!("{kind}: {msg}")),
        ..breach(m, "success", 0.0, 1.0, Limit::Min)
    }
}

/// Tier 1 thresholds crossed by a result (a failure is one breach; a busy
/// server says nothing about the network).
pub fn tier1_breaches(m: &Measurement, t: &Thresholds) -> Vec<Breach> {
    if m.error_kind == Some(ErrorKind::Busy) {
        return Vec::new();
    }
    if !m.success {
        return vec![failure(m)];
    }
    let mut out = Vec::new();
    let mx = &m.metrics;
    let latency = match m.test_type {
        // The network round trip: for TLS, the connect alone.
        TestType::Tcp => mx.connect_ms.or(m.latency_ms),
        TestType::Icmp | TestType::Udp => m.latency_ms,
        _ => None,
    };
    if let Some(v) = latency.filter(|v| *v > t.latency_ms) {
        out.push(breach(m, "latency_ms", v, t.latency_ms, Limit::Max));
    }
    if let Some(v) = mx.loss_pct.filter(|v| *v > t.loss_pct) {
        out.push(breach(m, "loss_pct", v, t.loss_pct, Limit::Max));
    }
    if m.test_type == TestType::Http {
        if let Some(v) = mx.total_ms.filter(|v| *v > t.http_total_ms) {
            out.push(breach(m, "total_ms", v, t.http_total_ms, Limit::Max));
        }
    }
    if m.test_type == TestType::Dns {
        if let Some(v) = m.latency_ms.filter(|v| *v > t.dns_ms) {
            out.push(breach(m, "dns_ms", v, t.dns_ms, Limit::Max));
        }
    }
    out
}

/// Tier 2 thresholds crossed by a result (a failure is one breach).
pub fn tier2_breaches(m: &Measurement, t: &Thresholds) -> Vec<Breach> {
    if m.error_kind == Some(ErrorKind::Busy) {
        return Vec::new();
    }
    if !m.success {
        return vec![failure(m)];
    }
    let mut out = Vec::new();
    let mx = &m.metrics;
    if m.test_type == TestType::Bandwidth {
        for (name, v) in [
            ("download_mbps", mx.download_mbps),
            ("upload_mbps", mx.upload_mbps),
        ] {
            if let Some(v) = v.filter(|v| *v < t.throughput_mbps) {
                out.push(breach(m, name, v, t.throughput_mbps, Limit::Min));
            }
        }
    }
    if let Some(v) = mx.jitter_ms.filter(|v| *v > t.jitter_ms) {
        out.push(breach(m, "jitter_ms", v, t.jitter_ms, Limit::Max));
    }
    if let Some(hops) = &mx.hops {
        let n = hops.len() as f64;
        if n > t.hops {
            out.push(breach(m, "hops", n, t.hops, Limit::Max));
        }
    }
    if let Some(d) = mx.cert_days_left {
        let d = d as f64;
        if d < t.cert_days_left {
            out.push(breach(m, "cert_days_left", d, t.cert_days_left, Limit::Min));
        }
    }
    out
}

/// The health of a target from its latest tier 1 result.
pub fn health_of(m: &Measurement, t: &Thresholds) -> Health {
    health_from(m, &tier1_breaches(m, t))
}

/// [`health_of`] given the result's tier 1 breaches, already computed.
pub fn health_from(m: &Measurement, tier1_breaches: &[Breach]) -> Health {
    if !m.success || m.metrics.loss_pct.is_some_and(|l| l >= 100.0) {
        Health::Down
    } else if tier1_breaches.is_empty() {
        Health::Ok
    } else {
        Health::Degraded
    }
}

/// The escalation state kept between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct EscalationState {
    /// 1 (tier 1 only) or 2 (tier 2 runs after every tier 1 run).
    pub level: u8,
    /// Consecutive tier 1 runs with a breach.
    pub tier1_breach_runs: u32,
    /// Consecutive tier 1 runs without one.
    pub tier1_healthy_runs: u32,
    /// Consecutive tier 2 runs with a breach.
    pub tier2_breach_runs: u32,
    /// When tier 3 last ran (for the cool-down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier3_last_run: Option<DateTime<Utc>>,
}

impl Default for EscalationState {
    fn default() -> Self {
        EscalationState {
            level: 1,
            tier1_breach_runs: 0,
            tier1_healthy_runs: 0,
            tier2_breach_runs: 0,
            tier3_last_run: None,
        }
    }
}

/// A change of tier decided by the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Transition {
    pub from: u8,
    pub to: u8,
    /// What breached (empty when going back down).
    pub breaches: Vec<Breach>,
    /// A sentence for logs, the event list and notifications.
    pub message: String,
}

/// What to do after the tier 2 results of a run.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Tier3 {
    /// Tier 2 is fine (or has not breached long enough).
    No,
    /// Run tier 3 now.
    Run(Transition),
    /// Tier 3 is due but ran too recently; it may run again at `until`.
    CoolingDown { until: DateTime<Utc> },
}

fn summary(breaches: &[Breach]) -> String {
    let mut parts: Vec<String> = breaches.iter().take(3).map(ToString::to_string).collect();
    if breaches.len() > 3 {
        parts.push(format!("and {} more", breaches.len() - 3));
    }
    parts.join("; ")
}

impl EscalationState {
    /// Takes a tier 1 run's breaches; returns a tier change, if any. When the
    /// level is 2 afterwards, tier 2 should run now.
    pub fn after_tier1(&mut self, breaches: &[Breach], cfg: &AutoPerf) -> Option<Transition> {
        if breaches.is_empty() {
            self.tier1_breach_runs = 0;
            self.tier1_healthy_runs = self.tier1_healthy_runs.saturating_add(1);
            if self.level > 1 && self.tier1_healthy_runs >= cfg.deescalate_after {
                let from = self.level;
                self.level = 1;
                self.tier2_breach_runs = 0;
                return Some(Transition {
                    from,
                    to: 1,
                    breaches: Vec::new(),
                    message: format!(
                        "back to tier 1: {} healthy runs in a row",
                        self.tier1_healthy_runs
                    ),
                });
            }
            return None;
        }
        self.tier1_healthy_runs = 0;
        self.tier1_breach_runs = self.tier1_breach_runs.saturating_add(1);
        if self.level == 1 && self.tier1_breach_runs >= cfg.escalate_after {
            self.level = 2;
            self.tier2_breach_runs = 0;
            return Some(Transition {
                from: 1,
                to: 2,
                breaches: breaches.to_vec(),
                message: format!(
                    "escalated to tier 2 after {} runs crossing thresholds: {}",
                    self.tier1_breach_runs,
                    summary(breaches)
                ),
            });
        }
        None
    }

    /// Takes a tier 2 run's breaches at `now`; says whether tier 3 runs.
    pub fn after_tier2(
        &mut self,
        breaches: &[Breach],
        now: DateTime<Utc>,
        cfg: &AutoPerf,
    ) -> Tier3 {
        if breaches.is_empty() {
            self.tier2_breach_runs = 0;
            return Tier3::No;
        }
        self.tier2_breach_runs = self.tier2_breach_runs.saturating_add(1);
        if self.tier2_breach_runs < cfg.escalate_after {
            return Tier3::No;
        }
        let cooldown = chrono::Duration::minutes(i64::from(cfg.tier3_cooldown_minutes));
        if let Some(last) = self.tier3_last_run {
            let until = last + cooldown;
            if now < until {
                return Tier3::CoolingDown { until };
            }
        }
        self.tier3_last_run = Some(now);
        Tier3::Run(Transition {
            from: 2,
            to: 3,
            breaches: breaches.to_vec(),
            message: format!(
                "escalated to tier 3 after {} tier 2 runs crossing thresholds: {}",
                self.tier2_breach_runs,
                summary(breaches)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Measurement;

    fn tcp(connect: f64) -> Measurement {
        let mut m = Measurement::begin(TestType::Tcp, "h:1");
        m.success = true;
        m.latency_ms = Some(connect);
        m.metrics.connect_ms = Some(connect);
        m
    }

    fn cfg() -> AutoPerf {
        AutoPerf {
            escalate_after: 2,
            deescalate_after: 3,
            tier3_cooldown_minutes: 60,
            ..AutoPerf::default()
        }
    }

    #[test]
    fn breaches_and_health_follow_the_thresholds() {
        let t = Thresholds::default();
        assert!(tier1_breaches(&tcp(99.0), &t).is_empty());
        let b = tier1_breaches(&tcp(150.0), &t);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].metric.as_str(), b[0].value, b[0].threshold),
            ("latency_ms", 150.0, 100.0)
        );
        assert_eq!(
            b[0].to_string(),
            "tcp h:1: latency_ms 150 is above the threshold 100"
        );
        assert_eq!(health_of(&tcp(20.0), &t), Health::Ok);
        assert_eq!(health_of(&tcp(150.0), &t), Health::Degraded);
        let mut down = tcp(1.0);
        down.fail(ErrorKind::Timeout, "no answer");
        assert_eq!(health_of(&down, &t), Health::Down);
        assert_eq!(
            tier1_breaches(&down, &t)[0].to_string(),
            "tcp h:1 failed: timeout: no answer"
        );

        // TLS: the connect is the round trip, not connect + handshake.
        let mut tls = tcp(60.0);
        tls.latency_ms = Some(180.0);
        assert!(tier1_breaches(&tls, &t).is_empty());

        // A per-target override.
        let strict = t.with(Some(&crate::config::ThresholdOverrides {
            latency_ms: Some(10.0),
            ..Default::default()
        }));
        assert_eq!(health_of(&tcp(20.0), &strict), Health::Degraded);

        let mut http = Measurement::begin(TestType::Http, "https://x/");
        http.success = true;
        http.metrics.total_ms = Some(2500.0);
        http.latency_ms = Some(2400.0);
        assert_eq!(tier1_breaches(&http, &t)[0].metric, "total_ms");

        let mut cert = tcp(1.0);
        cert.metrics.cert_days_left = Some(3);
        let b = tier2_breaches(&cert, &t);
        assert_eq!(
            (b[0].metric.as_str(), b[0].limit),
            ("cert_days_left", Limit::Min)
        );
        assert!(
            tier1_breaches(&cert, &t).is_empty(),
            "certificate expiry is a tier 2 figure"
        );

        let mut lossy = Measurement::begin(TestType::Icmp, "h");
        lossy.success = true;
        lossy.metrics.loss_pct = Some(100.0);
        assert_eq!(health_of(&lossy, &t), Health::Down);
    }

    #[test]
    fn escalation_needs_consecutive_breaches_and_deescalation_hysteresis() {
        let c = cfg();
        let t = Thresholds::default();
        let bad = tier1_breaches(&tcp(150.0), &t);
        let mut s = EscalationState::default();
        assert_eq!(s.after_tier1(&bad, &c), None);
        // A healthy run in between resets the count.
        assert_eq!(s.after_tier1(&[], &c), None);
        assert_eq!(s.after_tier1(&bad, &c), None);
        let up = s
            .after_tier1(&bad, &c)
            .expect("escalates on the 2nd breach in a row");
        assert_eq!((up.from, up.to, s.level), (1, 2, 2));
        assert!(up.message.contains("latency_ms 150"), "{}", up.message);
        // Still breaching: stays at 2 with no new transition.
        assert_eq!(s.after_tier1(&bad, &c), None);
        assert_eq!(s.level, 2);
        // Two healthy runs are not enough, a breach resets, three are.
        assert_eq!(s.after_tier1(&[], &c), None);
        assert_eq!(s.after_tier1(&[], &c), None);
        assert_eq!(s.after_tier1(&bad, &c), None);
        assert_eq!(s.after_tier1(&[], &c), None);
        assert_eq!(s.after_tier1(&[], &c), None);
        let down = s
            .after_tier1(&[], &c)
            .expect("de-escalates after 3 healthy runs");
        assert_eq!((down.from, down.to, s.level), (2, 1, 1));
    }

    #[test]
    fn tier3_runs_once_then_cools_down() {
        let c = cfg();
        let t = Thresholds::default();
        let mut cert = tcp(1.0);
        cert.metrics.cert_days_left = Some(2);
        let bad = tier2_breaches(&cert, &t);
        let mut s = EscalationState {
            level: 2,
            ..Default::default()
        };
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let min = |m: i64| t0 + chrono::Duration::minutes(m);
        assert_eq!(s.after_tier2(&bad, min(0), &c), Tier3::No);
        assert!(matches!(s.after_tier2(&bad, min(10), &c), Tier3::Run(tr) if tr.to == 3));
        assert_eq!(
            s.after_tier2(&bad, min(20), &c),
            Tier3::CoolingDown { until: min(70) }
        );
        assert_eq!(
            s.after_tier2(&bad, min(69), &c),
            Tier3::CoolingDown { until: min(70) }
        );
        assert!(matches!(s.after_tier2(&bad, min(70), &c), Tier3::Run(_)));
        // A clean tier 2 run resets the streak.
        assert_eq!(s.after_tier2(&[], min(200), &c), Tier3::No);
        assert_eq!(s.after_tier2(&bad, min(201), &c), Tier3::No);
    }
}
