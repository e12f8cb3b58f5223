//! The result model: one [`Measurement`] per test, with the common fields every
//! result carries and the per-type figures under their canonical names
//! (`shared/reference/measurements.md`). The same spelling is used in the
//! database, the CLI's `--json`, the UI and the sync payload.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

mod formats;
mod stats;
pub use formats::{opt_rfc3339_utc, rfc3339_utc, round_us};
pub use stats::SampleStats;

/// Which probe produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum TestType {
    Http,
    Tcp,
    Udp,
    Dns,
    Icmp,
    Traceroute,
    Mtu,
    Bandwidth,
    Ports,
}

impl TestType {
    pub const ALL: [TestType; 9] = [
        TestType::Http,
        TestType::Tcp,
        TestType::Udp,
        TestType::Dns,
        TestType::Icmp,
        TestType::Traceroute,
        TestType::Mtu,
        TestType::Bandwidth,
        TestType::Ports,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TestType::Http => "http",
            TestType::Tcp => "tcp",
            TestType::Udp => "udp",
            TestType::Dns => "dns",
            TestType::Icmp => "icmp",
            TestType::Traceroute => "traceroute",
            TestType::Mtu => "mtu",
            TestType::Bandwidth => "bandwidth",
            TestType::Ports => "ports",
        }
    }
}

impl fmt::Display for TestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TestType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TestType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown test type `{s}` (expected one of: {})",
                    TestType::ALL.map(|t| t.as_str()).join(", ")
                )
            })
    }
}

/// Why a test failed. A failed test is still a result and is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ErrorKind {
    /// The name did not resolve.
    Dns,
    /// The peer actively refused the connection (RST / ICMP port unreachable).
    Refused,
    /// No answer within the test's timeout.
    Timeout,
    /// The host or network is unreachable (no route, ICMP host unreachable).
    Unreachable,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The peer answered, but not in the protocol expected (bad HTTP, no SSH banner…).
    Protocol,
    /// The HTTP exchange worked but the server answered with an error status (4xx/5xx).
    Http,
    /// A local I/O error.
    Io,
    /// The target or option as written cannot be tested.
    Config,
    /// The OS does not allow this test to this user (e.g. no ICMP socket).
    Permission,
    /// HTTP/3 was asked for but no QUIC handshake completed: UDP blocked on
    /// the way, or the server does not offer HTTP/3.
    Http3Unavailable,
    /// The server is busy with another client's test (an iperf3 server runs
    /// one at a time): try again later. Not a sign the network is down.
    Busy,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Http => "http",
            ErrorKind::Io => "io",
            ErrorKind::Config => "config",
            ErrorKind::Permission => "permission",
            ErrorKind::Http3Unavailable => "http3_unavailable",
            ErrorKind::Busy => "busy",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("unknown error kind `{s}`"))
    }
}

/// One traceroute hop (used by the trace probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Hop {
    pub ttl: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub sent: u32,
    pub received: u32,
    #[serde(serialize_with = "round_us::val")]
    pub loss_pct: f64,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub min_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub mean_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub max_ms: Option<f64>,
}

/// One port of a port check: how it answered, and how long the answer took
/// (for `open` and `closed`; a filtered port gave none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct PortResult {
    pub port: u16,
    pub state: crate::kinds::PortState,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub connect_ms: Option<f64>,
}

/// At most `max` characters of `s`, marked `… (cut)` when cut: how text a
/// peer or a file gave is quoted in errors and state.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}… (cut)")
    } else {
        head
    }
}

/// One earlier hop of an HTTP redirect chain. The result's phase figures
/// describe the final response only; each earlier hop is kept here on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct RedirectHop {
    pub url: String,
    pub status_code: u16,
    #[serde(serialize_with = "round_us::val")]
    pub total_ms: f64,
}

/// Per-type figures, under the canonical names. Every field is optional: a
/// probe fills the ones that apply and the rest are omitted from JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct Metrics {
    // phases, each on its own (not cumulative)
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub dns_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub connect_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub tls_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub ttfb_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub total_ms: Option<f64>,
    // HTTP
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The body was longer than `probe.max_body_bytes` and was cut there
    /// (`bytes` is then the limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_truncated: Option<bool>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub throughput_mbps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_chain: Option<Vec<RedirectHop>>,
    // TLS
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<i64>,
    // SSH
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_banner: Option<String>,
    // samples
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u32>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub loss_pct: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub min_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub mean_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub median_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub p95_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub max_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub stddev_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub jitter_ms: Option<f64>,
    // DNS
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// ICMP, traceroute, MTU: the method that sent the echoes (`datagram`,
    /// `raw`, `windows_api`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_method: Option<String>,
    /// DNS A/AAAA: why the system resolver (timed as `dns_ms`) gave no
    /// address, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_resolver_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<String>>,
    // trace
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops: Option<Vec<Hop>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached: Option<bool>,
    /// Traceroute: what it sent (`icmp`, `tcp`, `udp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_protocol: Option<String>,
    /// TCP traceroute: how the target's port answered (`open`: SYN-ACK,
    /// `closed`: RST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_state: Option<String>,
    // ports
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortResult>>,
    // MTU
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_mtu: Option<u32>,
    // bandwidth
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub download_mbps: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub upload_mbps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub seconds: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub loaded_latency_ms: Option<f64>,
    /// The median RTT to the server while this machine sent (upload) or
    /// received (download).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub loaded_latency_up_ms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub loaded_latency_down_ms: Option<f64>,
    /// Loaded median less the idle one (`latency_ms`): the queue the test
    /// filled.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub latency_increase_ms: Option<f64>,
    /// `A+` … `F` from `latency_increase_ms` (the DSLReports/LibreQoS scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bufferbloat_grade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// UDP bandwidth: datagrams that arrived after a later one (known where
    /// this machine received them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_order: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_kind: Option<String>,
    /// Responsiveness: round trips per minute under working conditions
    /// (the IETF IPPM method), and how much to trust it (`low`, `medium`,
    /// `high`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub rpm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_confidence: Option<String>,
    /// Taken behind a captive portal (`netctx::portal`): the figures say
    /// what the portal let through, not the network; not an outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captive_portal: Option<bool>,
}

/// Figures a chart can ask the store for: `success` (the share of results
/// that succeeded), then every figure the store rolls up, in the roll-ups'
/// column order.
pub const CHART_METRICS: [&str; 13] = [
    "success",
    "latency_ms",
    "loss_pct",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "total_ms",
    "throughput_mbps",
    "jitter_ms",
    "download_mbps",
    "upload_mbps",
    "rpm",
];

/// How a running bandwidth test is going, about once a second: the rate
/// each way over the last second (after slow start) and the latest loaded
/// RTT.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Interim {
    /// Seconds measured so far, of `seconds`.
    pub elapsed_s: f64,
    pub seconds: u32,
    pub upload_mbps: Option<f64>,
    pub download_mbps: Option<f64>,
    pub loaded_latency_ms: Option<f64>,
}

/// One test's result. Serialises flat: common fields first, then the metrics
/// under their canonical names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Measurement {
    pub id: Uuid,
    pub test_type: TestType,
    /// The target as configured or typed (URL, `host:port`, name…).
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ip: Option<String>,
    #[serde(with = "rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub started_at: DateTime<Utc>,
    /// Wall time of the whole test, milliseconds.
    #[serde(serialize_with = "round_us::val")]
    pub duration_ms: f64,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The AutoPerf tier that ran the test (1 for the regular suite and ad hoc tests).
    pub tier: u8,
    /// The one headline latency (HTTP: TTFB; TCP: connect; TLS: connect +
    /// handshake; DNS: query; ICMP/UDP: mean RTT).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "round_us::opt"
    )]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub metrics: Metrics,
    /// The network it was measured on (`netctx::network_id`); `None` for
    /// results older than network context, or when the OS could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

impl Measurement {
    /// A new result with a fresh UUID v7, started now.
    pub fn begin(test_type: TestType, target: impl Into<String>) -> Self {
        Measurement {
            id: Uuid::now_v7(),
            test_type,
            target: target.into(),
            resolved_ip: None,
            // Stored with microsecond precision: keep exactly that much.
            started_at: Utc::now().trunc_subsecs(6),
            duration_ms: 0.0,
            success: false,
            error_kind: None,
            error: None,
            tier: 1,
            latency_ms: None,
            metrics: Metrics::default(),
            network_id: None,
        }
    }

    /// Marks the result failed with a kind and a human message.
    pub fn fail(&mut self, kind: ErrorKind, message: impl Into<String>) {
        self.success = false;
        self.error_kind = Some(kind);
        self.error = Some(message.into());
    }

    /// A one-line human summary of the figures that matter for this type.
    pub fn summary(&self) -> String {
        if let (Some(kind), Some(msg)) = (self.error_kind, self.error.as_deref()) {
            return format!("{kind}: {msg}");
        }
        let m = &self.metrics;
        let mut parts = Vec::new();
        let ms = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.1} ms"));
        match self.test_type {
            TestType::Http => {
                if let Some(code) = m.status_code {
                    parts.push(format!(
                        "{} HTTP/{}",
                        code,
                        m.http_version.as_deref().unwrap_or("?")
                    ));
                }
                parts.extend(ms("dns", m.dns_ms));
                parts.extend(ms("connect", m.connect_ms));
                parts.extend(ms("tls", m.tls_ms));
                parts.extend(ms("ttfb", m.ttfb_ms));
                parts.extend(ms("total", m.total_ms));
                if let Some(b) = m.bytes {
                    parts.push(format!("{b} B"));
                }
                if let Some(r) = m.redirects.filter(|r| *r > 0) {
                    parts.push(format!("{r} redirect(s)"));
                }
            }
            _ => {
                parts.extend(ms("connect", m.connect_ms));
                parts.extend(ms("tls", m.tls_ms));
                if let Some(v) = &m.tls_version {
                    parts.push(v.clone());
                }
                if let Some(d) = m.cert_days_left {
                    parts.push(format!("cert {d} d left"));
                }
                if let Some(b) = &m.ssh_banner {
                    parts.push(b.clone());
                }
                if let Some(l) = m.loss_pct {
                    parts.push(format!("loss {l:.1} %"));
                }
            }
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_to_the_microsecond() {
        let mut m = Measurement::begin(TestType::Tcp, "a:1");
        m.duration_ms = 0.013 + 2.013;
        m.latency_ms = Some(1.1 + 2.2);
        m.metrics.connect_ms = Some(2.0260000000000002);
        m.metrics.loss_pct = Some(100.0 / 3.0);
        let json = serde_json::to_string(&m).unwrap_or_default();
        assert!(json.contains("\"duration_ms\":2.026,"), "{json}");
        assert!(json.contains("\"latency_ms\":3.3,"), "{json}");
        assert!(json.contains("\"connect_ms\":2.026"), "{json}");
        assert!(json.contains("\"loss_pct\":33.333"), "{json}");
        // In memory the values stay exact.
        assert!((m.latency_ms.unwrap_or_default() - (1.1 + 2.2)).abs() < 1e-15);
    }

    #[test]
    fn serialises_flat_with_canonical_names_and_round_trips() {
        let mut m = Measurement::begin(TestType::Http, "https://example.com/");
        m.success = true;
        m.latency_ms = Some(12.5);
        m.metrics.ttfb_ms = Some(12.5);
        m.metrics.http_version = Some("2".into());
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["test_type"], "http");
        assert_eq!(v["metrics"]["ttfb_ms"], 12.5);
        assert_eq!(v["metrics"]["http_version"], "2");
        assert!(
            v["metrics"].get("dns_ms").is_none(),
            "absent figures are omitted"
        );
        assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
        let back: Measurement = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn uuid_is_v7_and_time_ordered() {
        let a = Measurement::begin(TestType::Tcp, "a:1");
        let b = Measurement::begin(TestType::Tcp, "a:1");
        assert_eq!(a.id.get_version_num(), 7);
        assert!(a.id < b.id);
    }

    #[test]
    fn sample_stats_known_values() {
        let s = SampleStats::of(&[10.0, 12.0, 11.0, 15.0]).unwrap();
        assert_eq!(s.min, 10.0);
        assert_eq!(s.max, 15.0);
        assert_eq!(s.mean, 12.0);
        assert_eq!(s.median, 11.5);
        // |12-10| + |11-12| + |15-11| = 7 over 3 differences
        assert!((s.jitter - 7.0 / 3.0).abs() < 1e-12);
        assert!((s.stddev - (3.5f64).sqrt()).abs() < 1e-12);
        // rank 0.95 * 3 = 2.85 between 12 and 15
        assert!((s.p95 - 14.55).abs() < 1e-9);
        assert!(SampleStats::of(&[]).is_none());
    }

    #[test]
    fn error_kind_parses_its_own_spelling() {
        for k in [
            ErrorKind::Dns,
            ErrorKind::Timeout,
            ErrorKind::Tls,
            ErrorKind::Config,
        ] {
            assert_eq!(k.as_str().parse::<ErrorKind>().unwrap(), k);
        }
        assert!("nonsense".parse::<ErrorKind>().is_err());
    }
}
