//! Typed configuration, stored as TOML in the platform config directory.
//!
//! Defaults live in one place ([`DEFAULT_TOML`], which parses to
//! [`Config::default`]); unknown keys are errors, not silently ignored; every
//! validation error names the key (and the line, when it came from a file).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The configuration file written by `waddleperf config init`. It parses to
/// exactly [`Config::default`] (a unit test holds the two together).
pub const DEFAULT_TOML: &str = r#"# WaddlePerf configuration.
# Every key is optional: what is left out takes the default shown here.
# `waddleperf config validate` checks this file; `waddleperf config show` prints
# the configuration in effect.

[schedule]
# Minutes between runs of the suite (the background runtime uses this).
interval_minutes = 60
# Run the suite once as soon as the monitor starts.
run_on_start = true
# Each device runs at its own fixed offset into the interval (derived from the
# device id) so that a fleet does not test at the same second. Set a number of
# seconds (less than the interval) to pin it instead.
# offset_seconds = 0
# Latency tests run at most this many at a time inside a run (bandwidth tests
# always run alone).
concurrency = 4

[store]
# Results older than this many days are deleted.
retention_days = 365

[probe]
# Default per-test timeout in milliseconds (a target may set its own).
timeout_ms = 10000
# HTTP redirects followed before giving up.
max_redirects = 10
# HTTP bodies are read to the end up to this many bytes, then cut off.
max_body_bytes = 10485760

[autoperf]
# AutoPerf: when tier 1 results cross a threshold in this many consecutive
# runs, tier 2 runs (and keeps running each time while escalated); when tier 2
# results also cross theirs that many runs in a row, tier 3 runs once, then not
# again until the cool-down has passed.
enabled = true
escalate_after = 2
# Consecutive healthy tier 1 runs before going back to tier 1 only.
deescalate_after = 3
tier3_cooldown_minutes = 360

[autoperf.thresholds]
# Tier 1 -> 2 (and a target's health: crossing one makes it "degraded", a failed
# test makes it "down").
# latency_ms: the headline latency of TCP connect, ICMP and UDP tests.
latency_ms = 100.0
loss_pct = 5.0
http_total_ms = 2000.0
dns_ms = 1000.0
# Tier 2 -> 3.
throughput_mbps = 10.0
jitter_ms = 50.0
hops = 20.0
cert_days_left = 7.0
# A target may override any of these: thresholds = { latency_ms = 250.0 }

[notifications]
# Desktop notifications when a target's health changes or AutoPerf escalates;
# never for every run.
enabled = true
# At most one notification per target (or per escalation) in this many minutes.
min_interval_minutes = 30

[log]
# Log files (the daemon and the desktop app): one per day, kept this many days.
retention_days = 14
# error, warn, info, debug or trace (WADDLEPERF_LOG overrides).
level = "info"

[sync]
# Upload every result to the WaddlePerf unified API once signed in
# (`waddleperf login`) and enrolled (`waddleperf enroll`). Results are kept
# locally first; the server is a copy that catches up.
enabled = true
# The server `waddleperf login` uses when --server is not given.
# server = "https://perf.example.com"
# Extra trusted roots (PEM) for a private server.
# ca_file = "/etc/ssl/private-ca.pem"
# Minutes between passes that retry and send the heartbeat.
interval_minutes = 15
# After a run, wait a random 0..this many seconds before uploading.
spread_seconds = 60
# Uploads in flight at once.
concurrency = 2
# Retries back off exponentially (with full jitter) up to this many minutes.
backoff_max_minutes = 60
# Sign-in tokens: "auto" (the OS keychain, or a 0600 file where there is none),
# "keychain" or "file".
secret_store = "auto"

# The suite: targets per test type. A file with no [suite] at all uses this
# default suite; a file with any [[suite.*]] entry replaces it whole.
# HTTP(S): mode = "auto" (ALPN negotiates HTTP/2 or 1.1), "http1" or "http2".
# `insecure = true` turns certificate checks off for that target only;
# `ca_file` adds a PEM bundle of extra trusted roots for that target.
[[suite.http]]
url = "https://www.google.com/"

[[suite.http]]
url = "https://www.cloudflare.com/"

# TCP: mode = "raw" (connect time), "tls" (connect + handshake, certificate)
# or "ssh" (connect + the server's SSH- banner).
[[suite.tcp]]
target = "1.1.1.1:443"

[[suite.tcp]]
target = "www.cloudflare.com:443"
mode = "tls"

# ICMP ping: count echoes interval_ms apart, size bytes of payload, each waiting
# timeout_ms (default 2000) for its reply; family = "ipv4" or "ipv6" pins one.
[[suite.icmp]]
host = "1.1.1.1"

# DNS: a query of `type` (A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV; default
# A) to `server` ("host[:port]"; default: the system's name server), over UDP
# with TCP when the answer is truncated (`tcp = true` asks over TCP).
[[suite.dns]]
name = "www.google.com"

# More test types (none by default):
# [[suite.udp]]         target = "host:port" of a UDP echo peer
#                       (`waddleperf serve --udp-echo PORT`); count, interval_ms, size
# [[suite.traceroute]]  host; max_hops (30), rounds (1; more is MTR), interval_ms,
#                       names = false skips reverse names
# [[suite.mtu]]         host; max (largest packet size tried, 9000)
# HTTP mode = "http3" measures over QUIC; "auto" follows an Alt-Svc offer of HTTP/3.

# Tier 2 and tier 3 suites have the same shape ([[tier2.http]], [[tier2.icmp]],
# [[tier3.traceroute]], ...). Left out, they are derived from the suite:
# tier 2 checks the TLS of every HTTPS host and TLS target, pings every ICMP
# host 50 times and traces the route to it (3 rounds); tier 3 runs every HTTP
# target over both HTTP/1.1 and HTTP/2, a 100-round MTR to every ICMP host,
# plus tier 2.
"#;

/// Where a configuration problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key the configuration does not have.
    #[error("{}", fmt_syntax(.path, .line, .message))]
    Syntax {
        path: String,
        line: Option<usize>,
        message: String,
    },
    #[error("config file {path} is larger than {limit} KiB: not a WaddlePerf configuration")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}", fmt_invalid(.path, .line, .key, .message))]
    Invalid {
        path: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// The most of a configuration file that is read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// An error message fit to show: values it quotes (between backticks) are
/// cut to 80 characters, the whole to 1,000, so a 10 MB value gives a short
/// error that still names the key and the line.
fn bounded(message: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > 80 {
            out.extend(part.chars().take(80));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    crate::model::excerpt(&out, 1000)
}

fn fmt_syntax(path: &str, line: &Option<usize>, message: &str) -> String {
    let message = bounded(message);
    match line {
        Some(l) => format!("{path}:{l}: {message}"),
        None => format!("{path}: {message}"),
    }
}

fn fmt_invalid(path: &str, line: &Option<usize>, key: &str, message: &str) -> String {
    let message = bounded(message);
    match line {
        Some(l) => format!("{path}:{l}: `{key}`: {message}"),
        None => format!("{path}: `{key}`: {message}"),
    }
}

impl ConfigError {
    /// The key a validation error is about (for UIs that highlight a field).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// What is wrong, without the file's name (for a UI that shows it next
    /// to the field), bounded like the whole message.
    pub fn field_message(&self) -> String {
        match self {
            ConfigError::Invalid { message, .. } => bounded(message),
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub schedule: Schedule,
    pub store: StoreConfig,
    pub probe: ProbeDefaults,
    pub autoperf: AutoPerf,
    pub notifications: Notifications,
    pub log: LogConfig,
    pub sync: SyncConfig,
    pub suite: Suite,
    /// Tier 2 suite; `None` derives it from the tier 1 suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier2: Option<Suite>,
    /// Tier 3 suite; `None` derives it from the tier 1 suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier3: Option<Suite>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
pub struct AutoPerf {
    pub enabled: bool,
    pub escalate_after: u32,
    pub deescalate_after: u32,
    pub tier3_cooldown_minutes: u32,
    pub thresholds: Thresholds,
}

/// The AutoPerf thresholds (see `measurements.md`): tier 1 → 2 and health
/// from the first four, tier 2 → 3 from the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
    pub secret_store: crate::sync::secrets::SecretPreference,
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
            secret_store: crate::sync::secrets::SecretPreference::Auto,
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
pub struct StoreConfig {
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeDefaults {
    pub timeout_ms: u64,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Suite {
    pub http: Vec<Spanned<HttpTarget>>,
    pub tcp: Vec<Spanned<TcpTarget>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Spanned<DnsTarget>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<Spanned<UdpTarget>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub icmp: Vec<Spanned<IcmpTarget>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traceroute: Vec<Spanned<TraceTarget>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mtu: Vec<Spanned<MtuTarget>>,
}

impl Suite {
    /// Number of targets of every type.
    pub fn len(&self) -> usize {
        self.http.len()
            + self.tcp.len()
            + self.dns.len()
            + self.udp.len()
            + self.icmp.len()
            + self.traceroute.len()
            + self.mtu.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub use crate::probe::Family;

/// A DNS query to test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsTarget {
    /// The name to look up (for PTR, an address may be given).
    pub name: String,
    /// `host[:port]` of the server; default: the system's name server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// A, AAAA, CNAME, MX, NS, TXT, SOA, PTR or SRV (default A).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// Ask over TCP from the start.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tcp: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// A UDP echo peer to test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpTarget {
    /// `host:port` of the echo peer.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Datagram payload bytes (12 to 65000; default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// How long each datagram waits for its echo (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// A host to ping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpTarget {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// ICMP payload bytes (0 to 65000; default 56).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// How long each echo waits for its reply (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// A route to trace (MTR with `rounds` > 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceTarget {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hops: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// How long each probe waits (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Look up reverse names of the hops (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// A host whose path MTU to find.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtuTarget {
    pub host: String,
    /// The largest packet size tried (default 9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// How long each probe waits (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

impl IcmpTarget {
    pub fn new(host: impl Into<String>) -> Self {
        IcmpTarget {
            host: host.into(),
            count: None,
            interval_ms: None,
            size: None,
            timeout_ms: None,
            family: None,
            thresholds: None,
        }
    }
}

impl DnsTarget {
    pub fn new(name: impl Into<String>) -> Self {
        DnsTarget {
            name: name.into(),
            server: None,
            record_type: None,
            tcp: false,
            timeout_ms: None,
            thresholds: None,
        }
    }
}

impl TraceTarget {
    pub fn new(host: impl Into<String>) -> Self {
        TraceTarget {
            host: host.into(),
            max_hops: None,
            rounds: None,
            interval_ms: None,
            timeout_ms: None,
            names: None,
            family: None,
            thresholds: None,
        }
    }
}

/// Checks a host name or IP address as a test target.
pub fn check_host(s: &str) -> Result<(), String> {
    let h = s.trim();
    if h.is_empty() {
        return Err("the host is empty".into());
    }
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if h.contains(':') {
        return Err(format!(
            "`{h}`: a host name or address without a port (IPv6 addresses as 2001:db8::1)"
        ));
    }
    if h.len() > 253
        || !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' || !c.is_ascii())
    {
        return Err(format!("`{h}` is not a host name or address"));
    }
    Ok(())
}

/// How the HTTP probe picks a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMode {
    /// HTTPS: offer `h2` and `http/1.1` over ALPN and use what the server picks.
    /// Plain HTTP: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (over TLS via ALPN; over plain HTTP with prior knowledge).
    Http2,
    /// HTTP/3 over QUIC (HTTPS only).
    Http3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTarget {
    pub url: String,
    #[serde(default)]
    pub mode: HttpMode,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// What the TCP probe does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpMode {
    #[default]
    Raw,
    Tls,
    Ssh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpTarget {
    /// `host:port` (`[v6]:port` for IPv6 literals).
    pub target: String,
    #[serde(default)]
    pub mode: TcpMode,
    /// TLS only: the name to send as SNI and verify (default: the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

fn is_false(b: &bool) -> bool {
    !*b
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
            timeout_ms: 10_000,
            max_redirects: 10,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        fn span<T>(v: T) -> Spanned<T> {
            Spanned::new(0..0, v)
        }
        Config {
            schedule: Schedule::default(),
            store: StoreConfig::default(),
            probe: ProbeDefaults::default(),
            autoperf: AutoPerf::default(),
            notifications: Notifications::default(),
            log: LogConfig::default(),
            sync: SyncConfig::default(),
            tier2: None,
            tier3: None,
            suite: Suite {
                http: vec![
                    span(HttpTarget::new("https://www.google.com/")),
                    span(HttpTarget::new("https://www.cloudflare.com/")),
                ],
                tcp: vec![
                    span(TcpTarget::new("1.1.1.1:443", TcpMode::Raw)),
                    span(TcpTarget::new("www.cloudflare.com:443", TcpMode::Tls)),
                ],
                dns: vec![span(DnsTarget::new("www.google.com"))],
                icmp: vec![span(IcmpTarget::new("1.1.1.1"))],
                ..Suite::default()
            },
        }
    }
}

impl HttpTarget {
    pub fn new(url: impl Into<String>) -> Self {
        HttpTarget {
            url: url.into(),
            mode: HttpMode::Auto,
            insecure: false,
            ca_file: None,
            timeout_ms: None,
            thresholds: None,
        }
    }
}

impl TcpTarget {
    pub fn new(target: impl Into<String>, mode: TcpMode) -> Self {
        TcpTarget {
            target: target.into(),
            mode,
            server_name: None,
            insecure: false,
            ca_file: None,
            timeout_ms: None,
            thresholds: None,
        }
    }
}

/// Splits `host:port` / `[v6]:port` into host and port, with an error that
/// says what is wrong.
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: missing `]` after the IPv6 address"))?;
        let p = after
            .strip_prefix(':')
            .ok_or_else(|| format!("`{s}`: expected `[address]:port`"))?;
        (h, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}`: expected host:port (e.g. example.com:443)"))?;
        if h.contains(':') {
            return Err(format!(
                "`{s}`: write IPv6 addresses in brackets, e.g. [2001:db8::1]:443"
            ));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(format!("`{s}`: the host is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("`{s}`: `{host}` is not a host name or address"));
    }
    // Digits only: `+80` and ` 80` are not ports.
    let port: u16 = port
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse().ok())
        .flatten()
        .ok_or_else(|| format!("`{s}`: port `{port}` is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(format!("`{s}`: port 0 cannot be tested"));
    }
    Ok((host.to_owned(), port))
}

/// Parses and checks an HTTP(S) URL the probe can test.
pub fn check_http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
    match u.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "`{s}`: scheme `{other}` is not supported (use http or https)"
            ))
        }
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{s}` has no host"));
    }
    Ok(u)
}

const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;

/// Checks a DNS server as written: `host`, `host:port`, an address, or `[v6]:port`.
pub fn check_dns_server(s: &str) -> Result<(), String> {
    let t = s.trim();
    let bare = t.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() || t.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    match t.rsplit_once(':') {
        Some(_) => split_host_port(t).map(drop),
        None => check_host(t),
    }
}

/// "`v` is out of range (lo to hi unit)" when `v` is outside `r`.
fn out_of_range<T>(v: T, r: std::ops::RangeInclusive<T>, unit: &str) -> Option<String>
where
    T: PartialOrd + fmt::Display,
{
    (!r.contains(&v)).then(|| format!("{v} is out of range ({} to {}{unit})", r.start(), r.end()))
}

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
    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // One format for every error: `file:line: what`, as validation says.
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let mut message = e.message().trim_end().to_owned();
            // Name the key of that line unless the message does already.
            let key = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().trim_matches('"'))
                .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
            if let Some(k) = key {
                message = format!("`{k}`: {message}");
            }
            ConfigError::Syntax {
                path: origin.to_owned(),
                line,
                message,
            }
        })?;
        cfg.validate(origin, Some(text))?;
        Ok(cfg)
    }

    /// Loads `path`; a file that does not exist yields the defaults. At most
    /// [`MAX_CONFIG_BYTES`] are read (`--config /dev/zero` ends at once).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(read(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                limit: MAX_CONFIG_BYTES / 1024,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Config::parse(&text, &path.display().to_string())
    }

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
        if let Some(m) = out_of_range(self.probe.timeout_ms, TIMEOUT_RANGE, " ms") {
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
        for (i, t) in suite.http.iter().enumerate() {
            let span = Some(t.span());
            let key = |k: &str| format!("{name}.http[{i}].{k}");
            match check_http_url(&t.get_ref().url) {
                Err(m) => return err(key("url"), span, m),
                Ok(u) if t.get_ref().mode == HttpMode::Http3 && u.scheme() != "https" => {
                    return err(key("mode"), span, "HTTP/3 needs an https:// URL".into())
                }
                Ok(_) => {}
            }
            if let Some(m) = t
                .get_ref()
                .timeout_ms
                .and_then(|ms| out_of_range(ms, TIMEOUT_RANGE, " ms"))
            {
                return err(key("timeout_ms"), span, m);
            }
            if let Some(o) = &t.get_ref().thresholds {
                if let Err((k, m)) = check_overrides(o) {
                    return err(key(&format!("thresholds.{k}")), span, m);
                }
            }
            if let Some(f) = &t.get_ref().ca_file {
                if let Err(m) = check_readable(f) {
                    return err(key("ca_file"), span, m);
                }
            }
            if !seen.insert((
                "http",
                t.get_ref().url.trim().to_owned(),
                t.get_ref().mode as u8,
            )) {
                return err(
                    key("url"),
                    span,
                    format!("`{}` is listed twice", t.get_ref().url),
                );
            }
        }
        for (i, t) in suite.tcp.iter().enumerate() {
            let span = Some(t.span());
            let key = |k: &str| format!("{name}.tcp[{i}].{k}");
            let tt = t.get_ref();
            if let Err(m) = split_host_port(&tt.target) {
                return err(key("target"), span, m);
            }
            if tt.mode != TcpMode::Tls
                && (tt.server_name.is_some() || tt.insecure || tt.ca_file.is_some())
            {
                return err(
                    key("mode"),
                    span,
                    "server_name, insecure and ca_file apply only with mode = \"tls\"".into(),
                );
            }
            if let Some(m) = tt
                .timeout_ms
                .and_then(|ms| out_of_range(ms, TIMEOUT_RANGE, " ms"))
            {
                return err(key("timeout_ms"), span, m);
            }
            if let Some(o) = &tt.thresholds {
                if let Err((k, m)) = check_overrides(o) {
                    return err(key(&format!("thresholds.{k}")), span, m);
                }
            }
            if let Some(f) = &tt.ca_file {
                if let Err(m) = check_readable(f) {
                    return err(key("ca_file"), span, m);
                }
            }
            if !seen.insert(("tcp", tt.target.trim().to_owned(), tt.mode as u8)) {
                return err(
                    key("target"),
                    span,
                    format!("`{}` is listed twice", tt.target),
                );
            }
        }
        self.validate_more_types(suite, name, err, &mut seen)
    }

    /// DNS, UDP, ICMP, traceroute and MTU targets.
    fn validate_more_types<E>(
        &self,
        suite: &Suite,
        name: &str,
        err: &E,
        seen: &mut std::collections::HashSet<(&'static str, String, u8)>,
    ) -> Result<(), ConfigError>
    where
        E: Fn(String, Option<std::ops::Range<usize>>, String) -> Result<(), ConfigError>,
    {
        // Checks shared by every type: (key suffix, message) of the first problem.
        fn common(
            timeout_ms: Option<u64>,
            thresholds: Option<&ThresholdOverrides>,
        ) -> Result<(), (String, String)> {
            if let Some(m) = timeout_ms.and_then(|ms| out_of_range(ms, TIMEOUT_RANGE, " ms")) {
                return Err(("timeout_ms".into(), m));
            }
            if let Some(o) = thresholds {
                check_overrides(o).map_err(|(k, m)| (format!("thresholds.{k}"), m))?;
            }
            Ok(())
        }
        fn sampling(
            count: Option<u32>,
            interval_ms: Option<u64>,
            size: Option<usize>,
            sizes: std::ops::RangeInclusive<usize>,
        ) -> Result<(), (String, String)> {
            if let Some(m) = count.and_then(|c| out_of_range(c, 1..=10_000, " probes")) {
                return Err(("count".into(), m));
            }
            if let Some(m) = interval_ms.and_then(|i| out_of_range(i, 10..=60_000, " ms")) {
                return Err(("interval_ms".into(), m));
            }
            if let Some(m) = size.and_then(|b| out_of_range(b, sizes, " bytes")) {
                return Err(("size".into(), m));
            }
            Ok(())
        }
        let mut check = |ty: &'static str,
                         i: usize,
                         span: std::ops::Range<usize>,
                         id_key: &str,
                         id: String,
                         r: Result<(), (String, String)>|
         -> Result<(), ConfigError> {
            let key = |k: &str| format!("{name}.{ty}[{i}].{k}");
            if let Err((k, m)) = r {
                return err(key(&k), Some(span), m);
            }
            if !seen.insert((ty, id.clone(), 0)) {
                return err(key(id_key), Some(span), format!("`{id}` is listed twice"));
            }
            Ok(())
        };
        for (i, t) in suite.dns.iter().enumerate() {
            let d = t.get_ref();
            let r = (|| {
                if d.name.trim().is_empty() {
                    return Err(("name".into(), "the name to look up is empty".into()));
                }
                let ty = d.record_type.as_deref().unwrap_or("A");
                let rtype =
                    crate::probe::dns::parse_record_type(ty).map_err(|m| ("type".into(), m))?;
                crate::probe::dns::query_name(&d.name, rtype).map_err(|m| ("name".into(), m))?;
                if let Some(server) = &d.server {
                    check_dns_server(server).map_err(|m| ("server".into(), m))?;
                }
                common(d.timeout_ms, d.thresholds.as_ref())
            })();
            let id = format!(
                "{} {} @{}",
                d.name.trim(),
                d.record_type.as_deref().unwrap_or("A").to_ascii_uppercase(),
                d.server.as_deref().unwrap_or("system")
            );
            check("dns", i, t.span(), "name", id, r)?;
        }
        for (i, t) in suite.udp.iter().enumerate() {
            let u = t.get_ref();
            let r = split_host_port(&u.target)
                .map(drop)
                .map_err(|m| ("target".to_owned(), m))
                .and_then(|_| sampling(u.count, u.interval_ms, u.size, 12..=65_000))
                .and_then(|_| common(u.timeout_ms, u.thresholds.as_ref()));
            check("udp", i, t.span(), "target", u.target.trim().to_owned(), r)?;
        }
        for (i, t) in suite.icmp.iter().enumerate() {
            let p = t.get_ref();
            let r = check_host(&p.host)
                .map_err(|m| ("host".to_owned(), m))
                .and_then(|_| sampling(p.count, p.interval_ms, p.size, 0..=65_000))
                .and_then(|_| common(p.timeout_ms, p.thresholds.as_ref()));
            check("icmp", i, t.span(), "host", p.host.trim().to_owned(), r)?;
        }
        for (i, t) in suite.traceroute.iter().enumerate() {
            let p = t.get_ref();
            let r = check_host(&p.host)
                .map_err(|m| ("host".to_owned(), m))
                .and_then(
                    |_| match p.max_hops.and_then(|h| out_of_range(h, 1..=64, " hops")) {
                        Some(m) => Err(("max_hops".into(), m)),
                        None => Ok(()),
                    },
                )
                .and_then(|_| {
                    sampling(p.rounds, p.interval_ms, None, 0..=0)
                        .map_err(|(k, m)| (if k == "count" { "rounds".into() } else { k }, m))
                })
                .and_then(|_| common(p.timeout_ms, p.thresholds.as_ref()));
            check(
                "traceroute",
                i,
                t.span(),
                "host",
                p.host.trim().to_owned(),
                r,
            )?;
        }
        for (i, t) in suite.mtu.iter().enumerate() {
            let p = t.get_ref();
            let r = check_host(&p.host)
                .map_err(|m| ("host".to_owned(), m))
                .and_then(
                    |_| match p.max.and_then(|x| out_of_range(x, 576..=65_535, " bytes")) {
                        Some(m) => Err(("max".into(), m)),
                        None => Ok(()),
                    },
                )
                .and_then(|_| common(p.timeout_ms, p.thresholds.as_ref()));
            check("mtu", i, t.span(), "host", p.host.trim().to_owned(), r)?;
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
            if let Err(e) = crate::sync::api::Api::new(server, None) {
                return plain("sync.server", e.to_string());
            }
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

    /// The timeout for a target that may override the default.
    pub fn timeout(&self, own: Option<u64>) -> Duration {
        Duration::from_millis(own.unwrap_or(self.probe.timeout_ms))
    }

    /// Number of targets in the suite.
    pub fn target_count(&self) -> usize {
        self.suite.len()
    }

    /// The suite of an AutoPerf tier (1, 2 or 3): configured, or derived
    /// from the tier 1 suite when `[tier2]` / `[tier3]` are left out.
    pub fn tier_suite(&self, tier: u8) -> Suite {
        match tier {
            2 => self.tier2.clone().unwrap_or_else(|| self.derived_tier2()),
            3 => self.tier3.clone().unwrap_or_else(|| self.derived_tier3()),
            _ => self.suite.clone(),
        }
    }

    /// A TLS check of every HTTPS host of tier 1 that tier 1 does not
    /// already check.
    fn derived_tier2(&self) -> Suite {
        let mut seen: std::collections::HashSet<String> = self
            .suite
            .tcp
            .iter()
            .filter(|t| t.get_ref().mode == TcpMode::Tls)
            .map(|t| t.get_ref().target.trim().to_owned())
            .collect();
        let mut tcp = Vec::new();
        for t in &self.suite.http {
            let h = t.get_ref();
            let Ok(u) = check_http_url(&h.url) else {
                continue;
            };
            if u.scheme() != "https" {
                continue;
            }
            let Some(host) = u.host_str() else {
                continue;
            };
            let port = u.port_or_known_default().unwrap_or(443);
            // `host_str` keeps the brackets of an IPv6 address.
            let target = format!("{host}:{port}");
            if seen.insert(target.clone()) {
                tcp.push(Spanned::new(
                    0..0,
                    TcpTarget {
                        insecure: h.insecure,
                        ca_file: h.ca_file.clone(),
                        timeout_ms: h.timeout_ms,
                        thresholds: h.thresholds.clone(),
                        ..TcpTarget::new(target, TcpMode::Tls)
                    },
                ));
            }
        }
        // Extended ping (50 probes) and a short MTR to every ICMP host.
        let mut icmp = Vec::new();
        let mut traceroute = Vec::new();
        for t in &self.suite.icmp {
            let p = t.get_ref();
            icmp.push(Spanned::new(
                0..0,
                IcmpTarget {
                    count: Some(50),
                    ..p.clone()
                },
            ));
            traceroute.push(Spanned::new(
                0..0,
                TraceTarget {
                    rounds: Some(3),
                    family: p.family,
                    thresholds: p.thresholds.clone(),
                    ..TraceTarget::new(p.host.clone())
                },
            ));
        }
        Suite {
            tcp,
            icmp,
            traceroute,
            ..Suite::default()
        }
    }

    /// Every tier 1 HTTP target over HTTP/1.1 and (for HTTPS) HTTP/2, plus
    /// the tier 2 suite.
    fn derived_tier3(&self) -> Suite {
        let mut http = Vec::new();
        for t in &self.suite.http {
            let h = t.get_ref();
            let https = h
                .url
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("https:");
            for mode in [HttpMode::Http1, HttpMode::Http2] {
                if mode == HttpMode::Http2 && !https {
                    continue;
                }
                http.push(Spanned::new(0..0, HttpTarget { mode, ..h.clone() }));
            }
        }
        let mut tier2 = self.tier_suite(2);
        tier2.http.append(&mut http);
        // A 100-round MTR replaces tier 2's short one.
        tier2.traceroute = self
            .suite
            .icmp
            .iter()
            .map(|t| {
                let p = t.get_ref();
                Spanned::new(
                    0..0,
                    TraceTarget {
                        rounds: Some(100),
                        interval_ms: Some(250),
                        family: p.family,
                        thresholds: p.thresholds.clone(),
                        ..TraceTarget::new(p.host.clone())
                    },
                )
            })
            .collect();
        tier2
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn check_readable(p: &Path) -> Result<(), String> {
    std::fs::File::open(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
}

fn line_of(text: &str, offset: usize) -> usize {
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

/// The platform directories the app uses.
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub db_file: PathBuf,
    /// Where the daemon and the desktop app write their daily log files.
    pub log_dir: PathBuf,
}

impl Paths {
    /// Platform defaults (XDG on Linux, Application Support on macOS,
    /// %APPDATA% on Windows), with explicit overrides taking precedence.
    pub fn resolve(config: Option<PathBuf>, db: Option<PathBuf>, logs: Option<PathBuf>) -> Paths {
        let dirs = directories::ProjectDirs::from("io", "PenguinTech", "WaddlePerf");
        let (cfg_dir, data_dir) = match &dirs {
            Some(d) => (d.config_dir().to_owned(), d.data_dir().to_owned()),
            None => {
                let base = PathBuf::from(".waddleperf");
                (base.clone(), base)
            }
        };
        let log_dir = logs.unwrap_or_else(|| platform_log_dir(dirs.as_ref(), &data_dir));
        let db_file = db.unwrap_or_else(|| data_dir.join("waddleperf.db"));
        let data_dir = db_file.parent().map(Path::to_owned).unwrap_or(data_dir);
        Paths {
            config_file: config.unwrap_or_else(|| cfg_dir.join("config.toml")),
            data_dir,
            db_file,
            log_dir,
        }
    }
}

/// The platform's place for an application's logs: `~/Library/Logs/WaddlePerf`
/// on macOS, `$XDG_STATE_HOME/waddleperf/logs` on Linux, the local app data
/// directory on Windows.
fn platform_log_dir(dirs: Option<&directories::ProjectDirs>, data_dir: &Path) -> PathBuf {
    if cfg!(target_os = "macos") {
        if let Some(home) = directories::BaseDirs::new() {
            return home.home_dir().join("Library/Logs/WaddlePerf");
        }
    }
    match dirs {
        Some(d) => d
            .state_dir()
            .unwrap_or_else(|| d.data_local_dir())
            .join("logs"),
        None => data_dir.join("logs"),
    }
}

impl fmt::Display for Paths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config   {}", self.config_file.display())?;
        writeln!(f, "database {}", self.db_file.display())?;
        write!(f, "logs     {}", self.log_dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> ConfigError {
        Config::parse(text, "cfg.toml").expect_err("config should be rejected")
    }

    #[test]
    fn every_probe_type_is_a_suite_entry_and_bad_values_name_their_key() {
        let c = Config::parse(
            r#"
[[suite.dns]]
name = "example.com"
type = "mx"
server = "192.0.2.53:5353"
[[suite.udp]]
target = "192.0.2.7:7"
count = 20
[[suite.icmp]]
host = "2001:db8::1"
family = "ipv6"
[[suite.traceroute]]
host = "example.com"
rounds = 10
[[suite.mtu]]
host = "192.0.2.1"
max = 1500
[[suite.http]]
url = "https://example.com/"
mode = "http3"
"#,
            "x",
        )
        .unwrap();
        assert_eq!(c.target_count(), 6);
        let plan = crate::runtime::plan(&c.suite, &c);
        let types: Vec<_> = plan.iter().map(|p| p.probe.test_type().as_str()).collect();
        assert_eq!(types, ["http", "dns", "udp", "icmp", "traceroute", "mtu"]);
        assert_eq!(plan[1].probe.target(), "example.com MX @192.0.2.53:5353");

        for (text, key) in [
            (
                "[[suite.dns]]\nname = \"x.com\"\ntype = \"AXFR\"\n",
                "suite.dns[0].type",
            ),
            (
                "[[suite.dns]]\nname = \"x.com\"\nserver = \"a b\"\n",
                "suite.dns[0].server",
            ),
            (
                "[[suite.udp]]\ntarget = \"nohost\"\n",
                "suite.udp[0].target",
            ),
            (
                "[[suite.udp]]\ntarget = \"h:7\"\nsize = 4\n",
                "suite.udp[0].size",
            ),
            (
                "[[suite.icmp]]\nhost = \"h\"\ncount = 0\n",
                "suite.icmp[0].count",
            ),
            ("[[suite.icmp]]\nhost = \"h:80\"\n", "suite.icmp[0].host"),
            (
                "[[suite.icmp]]\nhost = \"h\"\n[[suite.icmp]]\nhost = \"h\"\n",
                "suite.icmp[1].host",
            ),
            (
                "[[suite.traceroute]]\nhost = \"h\"\nmax_hops = 0\n",
                "suite.traceroute[0].max_hops",
            ),
            (
                "[[suite.traceroute]]\nhost = \"h\"\nrounds = 0\n",
                "suite.traceroute[0].rounds",
            ),
            (
                "[[suite.mtu]]\nhost = \"h\"\nmax = 100\n",
                "suite.mtu[0].max",
            ),
            (
                "[[suite.http]]\nurl = \"http://h/\"\nmode = \"http3\"\n",
                "suite.http[0].mode",
            ),
        ] {
            let e = invalid(text);
            assert_eq!(e.key(), Some(key), "{text}: {e}");
            assert!(
                e.to_string().starts_with("cfg.toml:"),
                "names the file and line: {e}"
            );
        }
    }

    #[test]
    fn derived_tiers_add_extended_ping_and_mtr() {
        let c = Config::parse("[[suite.icmp]]\nhost = \"192.0.2.1\"\n", "x").unwrap();
        let t2 = c.tier_suite(2);
        assert_eq!(t2.icmp[0].get_ref().count, Some(50));
        assert_eq!(t2.traceroute[0].get_ref().rounds, Some(3));
        let t3 = c.tier_suite(3);
        assert_eq!(t3.traceroute[0].get_ref().rounds, Some(100));
        assert_eq!(t3.icmp[0].get_ref().count, Some(50));
    }

    #[test]
    fn default_file_is_the_default_config() {
        let parsed = Config::parse(DEFAULT_TOML, "default").unwrap();
        let def = Config::default();
        // Spans differ (the parsed file has real ones); compare the values.
        assert_eq!(parsed.schedule, def.schedule);
        assert_eq!(parsed.store, def.store);
        assert_eq!(parsed.probe, def.probe);
        assert_eq!(parsed.autoperf, def.autoperf);
        assert_eq!(parsed.notifications, def.notifications);
        assert_eq!(parsed.log, def.log);
        assert_eq!(
            (parsed.tier2.is_none(), parsed.tier3.is_none()),
            (true, true)
        );
        let urls = |c: &Config| {
            c.suite
                .http
                .iter()
                .map(|t| t.get_ref().clone())
                .collect::<Vec<_>>()
        };
        let tcps = |c: &Config| {
            c.suite
                .tcp
                .iter()
                .map(|t| t.get_ref().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(urls(&parsed), urls(&def));
        assert_eq!(tcps(&parsed), tcps(&def));
        def.validate("default", None).unwrap();
    }

    #[test]
    fn empty_file_gives_defaults_and_suite_can_be_replaced() {
        let c = Config::parse("", "x").unwrap();
        assert_eq!(c.schedule, Schedule::default());
        assert_eq!(
            c.target_count(),
            6,
            "a file without [suite] keeps the default suite"
        );
        let c = Config::parse("[[suite.tcp]]\ntarget = \"a:1\"\n", "x").unwrap();
        assert_eq!(
            c.target_count(),
            1,
            "a [suite] replaces the default suite whole"
        );
        let c = Config::parse(
            "[[suite.tcp]]\ntarget = \"[::1]:22\"\nmode = \"ssh\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(c.suite.tcp[0].get_ref().mode, TcpMode::Ssh);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let e = invalid("[schedule]\ninterval_minutes = 5\nfrequency = 3\n").to_string();
        assert!(
            e.starts_with("cfg.toml:3: unknown field `frequency`, expected one of"),
            "{e}"
        );
        let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nverify = false\n").to_string();
        assert!(e.contains("verify"), "{e}");
        let e = invalid("[sweet]\n").to_string();
        assert!(e.contains("sweet"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = invalid("[schedule]\ninterval_minutes = \"hourly\"\n").to_string();
        assert!(
            e.starts_with("cfg.toml:2: `interval_minutes`: invalid type"),
            "{e}"
        );
        let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nmode = \"http9\"\n").to_string();
        assert!(
            e.contains("http9") && e.starts_with("cfg.toml:3: `mode`"),
            "{e}"
        );
        let e = invalid("[[suite.tcp]]\nmode = \"raw\"\n").to_string();
        assert!(e.contains("target"), "missing required key named: {e}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases: &[(&str, &str, usize)] = &[
            (
                "[schedule]\ninterval_minutes = 0\n",
                "schedule.interval_minutes",
                2,
            ),
            ("[store]\n\nretention_days = 0\n", "store.retention_days", 3),
            ("[probe]\ntimeout_ms = 5\n", "probe.timeout_ms", 2),
            ("[probe]\nmax_redirects = 99\n", "probe.max_redirects", 2),
            ("[probe]\nmax_body_bytes = 0\n", "probe.max_body_bytes", 2),
            (
                "\n[[suite.http]]\nurl = \"ftp://x/\"\n",
                "suite.http[0].url",
                3,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\n[[suite.http]]\nurl = \"not a url\"\n",
                "suite.http[1].url",
                4,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\ntimeout_ms = 1\n",
                "suite.http[0].timeout_ms",
                3,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\nca_file = \"/nonexistent/ca.pem\"\n",
                "suite.http[0].ca_file",
                3,
            ),
            (
                "[[suite.tcp]]\ntarget = \"example.com\"\n",
                "suite.tcp[0].target",
                2,
            ),
            (
                "[[suite.tcp]]\ntarget = \"example.com:99999\"\n",
                "suite.tcp[0].target",
                2,
            ),
            (
                "[[suite.tcp]]\ntarget = \"::1:22\"\n",
                "suite.tcp[0].target",
                2,
            ),
            (
                "[[suite.tcp]]\ntarget = \"a:1\"\nserver_name = \"b\"\n",
                "suite.tcp[0].mode",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"a:1\"\n[[suite.tcp]]\ntarget = \"a:1\"\n",
                "suite.tcp[1].target",
                4,
            ),
            (
                "[schedule]\ninterval_minutes = 10\noffset_seconds = 600\n",
                "schedule.offset_seconds",
                3,
            ),
            ("[schedule]\nconcurrency = 0\n", "schedule.concurrency", 2),
            (
                "[autoperf]\nescalate_after = 0\n",
                "autoperf.escalate_after",
                2,
            ),
            (
                "[autoperf]\ntier3_cooldown_minutes = 99999\n",
                "autoperf.tier3_cooldown_minutes",
                2,
            ),
            (
                "[autoperf.thresholds]\nloss_pct = 101.0\n",
                "autoperf.thresholds.loss_pct",
                2,
            ),
            (
                "[autoperf.thresholds]\n\nlatency_ms = -1.0\n",
                "autoperf.thresholds.latency_ms",
                3,
            ),
            ("[log]\nlevel = \"loud\"\n", "log.level", 2),
            ("[log]\nretention_days = 0\n", "log.retention_days", 2),
            (
                "[notifications]\nmin_interval_minutes = 20000\n",
                "notifications.min_interval_minutes",
                2,
            ),
            (
                "[[suite.tcp]]\ntarget = \"a:1\"\nthresholds = { latency_ms = -5.0 }\n",
                "suite.tcp[0].thresholds.latency_ms",
                3,
            ),
            (
                "[[tier2.http]]\nurl = \"gopher://x/\"\n",
                "tier2.http[0].url",
                2,
            ),
        ];
        for (text, key, line) in cases {
            let e = invalid(text);
            assert_eq!(e.key(), Some(*key), "for {text:?}: {e}");
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("cfg.toml:{line}: `{key}`")),
                "for {text:?}: {shown}"
            );
        }
    }

    #[test]
    fn tier_suites_are_configured_or_derived() {
        let c = Config::parse(
            "[[suite.http]]\nurl = \"https://a.example/x\"\nthresholds = { http_total_ms = 500.0 }\n\
             [[suite.http]]\nurl = \"http://b.example/\"\n\
             [[suite.tcp]]\ntarget = \"c.example:443\"\nmode = \"tls\"\n\
             [[suite.http]]\nurl = \"https://c.example/\"\n",
            "x",
        )
        .unwrap();
        let t2 = c.tier_suite(2);
        let tls: Vec<_> = t2.tcp.iter().map(|t| t.get_ref().clone()).collect();
        assert_eq!(tls.len(), 1, "c.example:443 is already checked in tier 1");
        assert_eq!(tls[0].target, "a.example:443");
        assert_eq!(tls[0].mode, TcpMode::Tls);
        assert_eq!(
            tls[0].thresholds.as_ref().and_then(|t| t.http_total_ms),
            Some(500.0),
            "the target's thresholds follow it"
        );
        let t3 = c.tier_suite(3);
        let modes: Vec<(String, HttpMode)> = t3
            .http
            .iter()
            .map(|t| (t.get_ref().url.clone(), t.get_ref().mode))
            .collect();
        assert_eq!(
            modes,
            [
                ("https://a.example/x".to_owned(), HttpMode::Http1),
                ("https://a.example/x".to_owned(), HttpMode::Http2),
                ("http://b.example/".to_owned(), HttpMode::Http1),
                ("https://c.example/".to_owned(), HttpMode::Http1),
                ("https://c.example/".to_owned(), HttpMode::Http2),
            ]
        );
        assert_eq!(t3.tcp.len(), 1, "tier 3 includes tier 2");
        let c = Config::parse("[[tier2.tcp]]\ntarget = \"z:22\"\nmode = \"ssh\"\n", "x").unwrap();
        assert_eq!(c.tier_suite(2).tcp[0].get_ref().target, "z:22");
        assert_eq!(
            c.tier_suite(1).tcp.len(),
            2,
            "tier 1 stays the default suite"
        );
    }

    #[test]
    fn missing_file_means_defaults_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(&dir.path().join("none.toml")).unwrap();
        assert_eq!(c, Config::default());
        let e = Config::load(dir.path()).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:443").unwrap(), ("a.b".into(), 443));
        assert_eq!(split_host_port("[::1]:22").unwrap(), ("::1".into(), 22));
        assert!(split_host_port(":80").unwrap_err().contains("empty"));
        assert!(split_host_port("a:0").unwrap_err().contains("port 0"));
        assert!(split_host_port("a:x").unwrap_err().contains("`x`"));
        assert!(split_host_port("127.0.0.1:+80")
            .unwrap_err()
            .contains("`+80`"));
        assert!(split_host_port("a:").is_err());
        assert!(split_host_port("a:65536").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config::default();
        let back = Config::parse(&c.to_toml(), "rendered").unwrap();
        assert_eq!(back.schedule, c.schedule);
        assert_eq!(back.suite.http.len(), 2);
    }
}
