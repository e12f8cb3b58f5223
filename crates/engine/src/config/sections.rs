//! The configuration's sections besides the suites: schedule, AutoPerf and
//! its thresholds, notifications, sync, logs, store, probe defaults.

use crate::defaults as d;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Schedule {
    pub interval_minutes: u32,
    pub run_on_start: bool,
    /// Fixed offset into the interval; `None` derives one from the device id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_seconds: Option<u32>,
    pub concurrency: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct AutoPerf {
    pub enabled: bool,
    pub escalate_after: u32,
    pub deescalate_after: u32,
    pub tier3_cooldown_minutes: u32,
    /// Megabytes (10^6 bytes) AutoPerf's bandwidth tests may move in a day
    /// (local time); once used up, escalations skip them until midnight. 0:
    /// AutoPerf never runs them (a speed test or `test bandwidth` still does).
    pub bandwidth_budget_mb: u32,
    pub thresholds: Thresholds,
}

/// The AutoPerf thresholds (see `measurements.md`): tier 1 → 2 and health
/// from the first four, tier 2 → 3 from the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Thresholds {
    /// Above: headline latency of TCP connect, ICMP and UDP tests.
    pub latency_ms: f64,
    /// Above: loss of sampled tests.
    pub loss_pct: f64,
    /// Above: HTTP total time.
    pub http_total_ms: f64,
    /// Above: DNS query time.
    pub dns_ms: f64,
    /// Below: bandwidth test download or upload.
    pub throughput_mbps: f64,
    /// Above: jitter of sampled tests.
    pub jitter_ms: f64,
    /// Above: traceroute hop count.
    pub hops: f64,
    /// Below: days before a TLS certificate expires.
    pub cert_days_left: f64,
}

/// Per-target overrides of [`Thresholds`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct ThresholdOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_total_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_mbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<f64>,
}

impl Thresholds {
    /// These thresholds with a target's overrides applied.
    pub fn with(&self, o: Option<&ThresholdOverrides>) -> Thresholds {
        let Some(o) = o else {
            return self.clone();
        };
        Thresholds {
            latency_ms: o.latency_ms.unwrap_or(self.latency_ms),
            loss_pct: o.loss_pct.unwrap_or(self.loss_pct),
            http_total_ms: o.http_total_ms.unwrap_or(self.http_total_ms),
            dns_ms: o.dns_ms.unwrap_or(self.dns_ms),
            throughput_mbps: o.throughput_mbps.unwrap_or(self.throughput_mbps),
            jitter_ms: o.jitter_ms.unwrap_or(self.jitter_ms),
            hops: o.hops.unwrap_or(self.hops),
            cert_days_left: o.cert_days_left.unwrap_or(self.cert_days_left),
        }
    }

    /// Each threshold by name, for validation and display.
    pub fn named(&self) -> [(&'static str, f64); 8] {
        [
            ("latency_ms", self.latency_ms),
            ("loss_pct", self.loss_pct),
            ("http_total_ms", self.http_total_ms),
            ("dns_ms", self.dns_ms),
            ("throughput_mbps", self.throughput_mbps),
            ("jitter_ms", self.jitter_ms),
            ("hops", self.hops),
            ("cert_days_left", self.cert_days_left),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Notifications {
    pub enabled: bool,
    pub min_interval_minutes: u32,
}

/// Upload of results to the WaddlePerf unified API (`docs/sync.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Upload when signed in and enrolled.
    pub enabled: bool,
    /// The server `waddleperf login` uses when none is given (fleet configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Extra trusted roots (PEM) for a private server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Minutes between passes when nothing else wakes the worker (retries,
    /// heartbeat).
    pub interval_minutes: u32,
    /// After a run, uploads wait a random 0..spread seconds so a fleet does
    /// not hit the server at the same second.
    pub spread_seconds: u32,
    /// Uploads in flight at once.
    pub concurrency: u32,
    /// The longest wait between retries (exponential backoff with full jitter
    /// grows up to this).
    pub backoff_max_minutes: u32,
    /// Where sign-in tokens go: "auto" (the OS keychain, else a 0600 file),
    /// "keychain" or "file".
    pub secret_store: SecretPreference,
    /// What each uploaded result says about the network it was measured on:
    /// "none", "id" (the network id, a hash) or "everything" (interface,
    /// addresses, gateway, DNS, Wi-Fi names).
    pub network_context: NetworkSharing,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            enabled: true,
            server: None,
            ca_file: None,
            interval_minutes: 15,
            spread_seconds: 60,
            concurrency: 2,
            backoff_max_minutes: 60,
            secret_store: SecretPreference::Auto,
            network_context: NetworkSharing::Id,
        }
    }
}

/// The network the machine is on: captive portals and metered links
/// (`docs/network.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NetworkConfig {
    /// Before each run, one plain HTTP request to `captive_portal_url`: an
    /// answer other than the expected one means a captive portal.
    pub captive_portal_check: bool,
    /// A URL that answers the same to everyone; nothing about this machine
    /// is sent with it (no cookies, no identifiers).
    pub captive_portal_url: String,
    /// What the URL answers when nothing is in the way: the first line of
    /// its body; empty: an empty `204 No Content`.
    pub captive_portal_expect: String,
    /// Run saturating tests (bandwidth, speed tests escalated by AutoPerf or
    /// scheduled) on a connection the OS marks metered.
    pub allow_metered: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            captive_portal_check: true,
            captive_portal_url: "http://detectportal.firefox.com/success.txt".into(),
            captive_portal_expect: "success".into(),
            allow_metered: false,
        }
    }
}

/// Updates: the agent's check against a release manifest (`update.rs`);
/// off while `manifest_url` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// The release manifest (JSON, Tauri's static updater format).
    pub manifest_url: String,
    /// The minisign public key the releases are signed with.
    pub public_key: String,
    /// Extra trusted roots (PEM) for a private update server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Hours between the agent's checks.
    pub check_hours: u32,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            manifest_url: String::new(),
            public_key: String::new(),
            ca_file: None,
            check_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub retention_days: u32,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct StoreConfig {
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct ProbeDefaults {
    pub timeout_ms: u64,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval_minutes: 60,
            run_on_start: true,
            offset_seconds: None,
            concurrency: 4,
        }
    }
}

impl Default for AutoPerf {
    fn default() -> Self {
        AutoPerf {
            enabled: true,
            escalate_after: 2,
            deescalate_after: 3,
            tier3_cooldown_minutes: 360,
            bandwidth_budget_mb: d::BANDWIDTH_BUDGET_MB,
            thresholds: Thresholds::default(),
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            latency_ms: 100.0,
            loss_pct: 5.0,
            http_total_ms: 2000.0,
            dns_ms: 1000.0,
            throughput_mbps: 10.0,
            jitter_ms: 50.0,
            hops: 20.0,
            cert_days_left: 7.0,
        }
    }
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            enabled: true,
            min_interval_minutes: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            retention_days: 14,
            level: "info".into(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_days: 365,
        }
    }
}

impl Default for ProbeDefaults {
    fn default() -> Self {
        ProbeDefaults {
            timeout_ms: d::TIMEOUT_MS,
            max_redirects: d::MAX_REDIRECTS,
            max_body_bytes: d::MAX_BODY_BYTES,
        }
    }
}

/// The `[sync] network_context` setting: what leaves the machine about the
/// network a result was measured on (`docs/sync.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum NetworkSharing {
    /// Nothing.
    None,
    /// The network id only: a hash that groups results by network without
    /// naming it.
    #[default]
    Id,
    /// The id and the context: interface and kind, local address, gateway
    /// and its MAC, DNS servers, VPN, metered, SSID, BSSID and Wi-Fi figures,
    /// the label.
    Everything,
}

/// The `[sync] secret_store` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretPreference {
    /// The keychain when one answers, else the 0600 file.
    #[default]
    Auto,
    Keychain,
    File,
}
