//! Checks of a configuration: every value in range, every target parsed
//! into its spec, each problem named by key and line.

use super::{Config, ConfigError, Suite, ThresholdOverrides};
use crate::spec::{out_of_range, TestSpec};
use std::path::Path;

/// The values `log.level` accepts.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

fn check_threshold(name: &str, v: f64) -> Result<(), String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{v} is not a number of 0 or more"));
    }
    if name == "loss_pct" && v > 100.0 {
        return Err(format!("{v} is more than 100 %"));
    }
    Ok(())
}

fn check_overrides(o: &ThresholdOverrides) -> Result<(), (&'static str, String)> {
    let all = [
        ("latency_ms", o.latency_ms),
        ("loss_pct", o.loss_pct),
        ("http_total_ms", o.http_total_ms),
        ("dns_ms", o.dns_ms),
        ("throughput_mbps", o.throughput_mbps),
        ("jitter_ms", o.jitter_ms),
        ("hops", o.hops),
        ("cert_days_left", o.cert_days_left),
    ];
    for (k, v) in all {
        if let Some(v) = v {
            check_threshold(k, v).map_err(|m| (k, m))?;
        }
    }
    Ok(())
}

impl Config {
    /// Checks every value after defaults are applied. `text` (the source) is
    /// used to turn spans into line numbers.
    pub fn validate(&self, origin: &str, text: Option<&str>) -> Result<(), ConfigError> {
        let err = |key: String, span: Option<std::ops::Range<usize>>, message: String| {
            let line = match (text, span) {
                (Some(t), Some(s)) if s.end > 0 => {
                    Some(key_line_in(t, &s, &key).unwrap_or_else(|| line_of(t, s.start)))
                }
                _ => None,
            };
            Err(ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                key,
                message,
            })
        };
        let line_for_key = |key: &str| text.and_then(|t| find_key_line(t, key));
        let plain = |key: &str, message: String| -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                path: origin.to_owned(),
                line: line_for_key(key),
                key: key.to_owned(),
                message,
            })
        };

        if let Some(m) = out_of_range(self.schedule.interval_minutes, 1..=10_080, " minutes") {
            return plain("schedule.interval_minutes", m);
        }
        if let Some(m) = out_of_range(self.store.retention_days, 1..=36_500, " days") {
            return plain("store.retention_days", m);
        }
        if let Some(m) = out_of_range(
            self.probe.timeout_ms,
            crate::defaults::TIMEOUT_RANGE_MS,
            " ms",
        ) {
            return plain("probe.timeout_ms", m);
        }
        if self.probe.max_redirects > 50 {
            return plain(
                "probe.max_redirects",
                format!("{} is more than 50", self.probe.max_redirects),
            );
        }
        if self.probe.max_body_bytes == 0 {
            return plain("probe.max_body_bytes", "must be at least 1".into());
        }

        self.validate_more(&plain)?;
        self.validate_suite(&self.suite, "suite", &err)?;
        if let Some(t2) = &self.tier2 {
            self.validate_suite(t2, "tier2", &err)?;
        }
        if let Some(t3) = &self.tier3 {
            self.validate_suite(t3, "tier3", &err)?;
        }
        Ok(())
    }

    fn validate_suite<E>(&self, suite: &Suite, name: &str, err: &E) -> Result<(), ConfigError>
    where
        E: Fn(String, Option<std::ops::Range<usize>>, String) -> Result<(), ConfigError>,
    {
        let mut seen = std::collections::HashSet::new();
        for e in suite.entries(&self.probe) {
            let key = |k: &str| format!("{name}.{}[{}].{k}", e.table, e.index);
            let span = Some(e.span.clone());
            let spec = match e.spec {
                Ok(s) => s,
                Err(x) => return err(key(x.field), span, x.message),
            };
            if let Some(o) = e.thresholds {
                if let Err((k, m)) = check_overrides(o) {
                    return err(key(&format!("thresholds.{k}")), span, m);
                }
            }
            let ca_file = match &spec {
                TestSpec::Http(s) => s.ca_file.as_deref(),
                TestSpec::Tcp(s) => s.ca_file.as_deref(),
                _ => None,
            };
            if let Some(f) = ca_file {
                if let Err(m) = check_readable(f) {
                    return err(key("ca_file"), span, m);
                }
            }
            let id = spec.id();
            if !seen.insert((spec.test_type(), id.clone())) {
                let what = match e.table {
                    "http" => "url",
                    "tcp" | "udp" => "target",
                    "dns" => "name",
                    _ => "host",
                };
                return err(key(what), span, format!("`{id}` is listed twice"));
            }
        }
        Ok(())
    }

    /// Schedule, AutoPerf, notification and log settings.
    fn validate_more<P>(&self, plain: &P) -> Result<(), ConfigError>
    where
        P: Fn(&str, String) -> Result<(), ConfigError>,
    {
        let interval_s = self.schedule.interval_minutes.saturating_mul(60);
        if let Some(o) = self.schedule.offset_seconds.filter(|o| *o >= interval_s) {
            return plain(
                "schedule.offset_seconds",
                format!("{o} is not less than the interval ({interval_s} seconds)"),
            );
        }
        if let Some(m) = out_of_range(self.schedule.concurrency, 1..=64, "") {
            return plain("schedule.concurrency", m);
        }
        let a = &self.autoperf;
        for (key, v) in [
            ("autoperf.escalate_after", a.escalate_after),
            ("autoperf.deescalate_after", a.deescalate_after),
        ] {
            if let Some(m) = out_of_range(v, 1..=100, " runs") {
                return plain(key, m);
            }
        }
        if a.tier3_cooldown_minutes > 43_200 {
            return plain(
                "autoperf.tier3_cooldown_minutes",
                format!(
                    "{} is more than 43200 minutes (30 days)",
                    a.tier3_cooldown_minutes
                ),
            );
        }
        if a.bandwidth_budget_mb > 10_000_000 {
            return plain(
                "autoperf.bandwidth_budget_mb",
                format!(
                    "{} MB is more than 10000000 (10 TB a day)",
                    a.bandwidth_budget_mb
                ),
            );
        }
        for (k, v) in a.thresholds.named() {
            if let Err(m) = check_threshold(k, v) {
                return plain(&format!("autoperf.thresholds.{k}"), m);
            }
        }
        if self.notifications.min_interval_minutes > 10_080 {
            return plain(
                "notifications.min_interval_minutes",
                format!(
                    "{} is more than 10080 minutes (a week)",
                    self.notifications.min_interval_minutes
                ),
            );
        }
        let sy = &self.sync;
        for (key, v, range, unit) in [
            (
                "sync.interval_minutes",
                sy.interval_minutes,
                1..=1440,
                " minutes",
            ),
            (
                "sync.spread_seconds",
                sy.spread_seconds,
                0..=3600,
                " seconds",
            ),
            ("sync.concurrency", sy.concurrency, 1..=8, ""),
            (
                "sync.backoff_max_minutes",
                sy.backoff_max_minutes,
                1..=1440,
                " minutes",
            ),
        ] {
            if let Some(m) = out_of_range(v, range, unit) {
                return plain(key, m);
            }
        }
        if let Some(server) = &sy.server {
            if let Err(m) = crate::spec::parse_http_url(server) {
                return plain("sync.server", m);
            }
        }
        let net = &self.network;
        if net.captive_portal_check {
            if let Err(m) = crate::spec::parse_http_url(&net.captive_portal_url) {
                return plain("network.captive_portal_url", m);
            }
        }
        if net.captive_portal_expect.chars().count() > 256
            || net.captive_portal_expect.contains(['\n', '\r'])
        {
            return plain(
                "network.captive_portal_expect",
                "one line of at most 256 characters".to_owned(),
            );
        }
        let up = &self.update;
        if !up.manifest_url.trim().is_empty() {
            if let Err(m) = crate::spec::parse_http_url(&up.manifest_url) {
                return plain("update.manifest_url", m);
            }
            if let Err(e) = crate::update::parse_public_key(&up.public_key) {
                return plain("update.public_key", e.to_string());
            }
        }
        if let Some(m) = out_of_range(up.check_hours, 1..=720, " hours") {
            return plain("update.check_hours", m);
        }
        if let Some(m) = out_of_range(self.log.retention_days, 1..=3650, " days") {
            return plain("log.retention_days", m);
        }
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            return plain(
                "log.level",
                format!(
                    "`{}` is not one of {}",
                    self.log.level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// `(key, note)` for every old key the file still uses.
    pub fn deprecations(&self) -> Vec<(String, String)> {
        let suites = [
            ("suite", Some(&self.suite)),
            ("tier2", self.tier2.as_ref()),
            ("tier3", self.tier3.as_ref()),
        ];
        let mut out = Vec::new();
        for (name, suite) in suites {
            for (k, note) in suite.map(Suite::deprecations).unwrap_or_default() {
                out.push((format!("{name}.{k}"), note));
            }
        }
        out
    }
}

fn check_readable(p: &Path) -> Result<(), String> {
    std::fs::File::open(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `key`'s first part inside the entry (`url` of
/// `suite.http[0].url`, `thresholds` of `suite.tcp[0].thresholds.x`) in the list
/// entry that starts at `span` (up to the next table header), so an error
/// points at the value, not at the entry's `[[…]]` header.
fn key_line_in(text: &str, span: &std::ops::Range<usize>, key: &str) -> Option<usize> {
    // `suite.tcp[0].thresholds.latency_ms` → `thresholds`.
    let last = key.split("].").nth(1)?.split('.').next()?;
    let body = text.get(span.start..)?;
    let mut offset = span.start;
    for (i, raw) in body.split_inclusive('\n').enumerate() {
        let line = raw.trim_start();
        if i > 0 && line.starts_with('[') {
            break;
        }
        if line.split_once('=').map(|(k, _)| k.trim()) == Some(last) {
            return Some(line_of(text, offset));
        }
        offset += raw.len();
    }
    None
}

/// Best-effort line of a dotted `table.key` in TOML text (for keys that are
/// plain values; list entries carry their own spans).
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.')?;
    let mut in_table = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_table = line.trim_matches(|c| c == '[' || c == ']').trim() == table;
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if (in_table && k == key) || k == dotted {
            return Some(n + 1);
        }
    }
    None
}
