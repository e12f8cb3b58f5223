//! The suites as the config file writes them ([[suite.http]], [[tier2.icmp]],
//! ...) and the one place each entry becomes a typed [`TestSpec`].

pub use super::ports::PortsTarget;
use super::{ProbeDefaults, ThresholdOverrides};
use crate::defaults as d;
use crate::kinds::{BandwidthKind, Direction, Family, HttpMode, TcpMode, TraceProtocol};
use crate::spec::{
    self, millis, out_of_range, BandwidthSpec, DnsServer, DnsSpec, HostPort, HttpSpec, IcmpSpec,
    MtuSpec, SpecError, TcpSpec, TestSpec, TraceSpec, UdpSpec,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

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
    /// Bandwidth servers: tested when AutoPerf escalates and on demand,
    /// never in the hourly tier 1 run (see `plan.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bandwidth: Vec<Spanned<BandwidthTarget>>,
    /// Port checks (a tier 2 check in the WaddlePerf documents).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Spanned<PortsTarget>>,
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
            + self.bandwidth.len()
            + self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A DNS query to test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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
    pub reply_wait_ms: Option<u64>,
    /// The old name of `reply_wait_ms`, still read (`config validate` notes it).
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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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
    pub reply_wait_ms: Option<u64>,
    /// The old name of `reply_wait_ms`, still read (`config validate` notes it).
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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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
    pub reply_wait_ms: Option<u64>,
    /// The old name of `reply_wait_ms`, still read (`config validate` notes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Look up reverse names of the hops (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<bool>,
    /// `icmp` (default), or `tcp` / `udp` to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TraceProtocol>,
    /// The TCP or UDP port (default 443 for TCP, 33434 for UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

/// A host whose path MTU to find.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct MtuTarget {
    pub host: String,
    /// The largest packet size tried (default 9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// How long each probe waits (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_wait_ms: Option<u64>,
    /// The old name of `reply_wait_ms`, still read (`config validate` notes it).
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
            reply_wait_ms: None,
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
            reply_wait_ms: None,
            timeout_ms: None,
            names: None,
            protocol: None,
            port: None,
            family: None,
            thresholds: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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

/// A bandwidth server to test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct BandwidthTarget {
    /// iperf3: `host[:port]` (port 5201 by default); the HTTP kinds: the
    /// server's base URL (`http://peer.lan:8080/`).
    pub server: String,
    #[serde(default)]
    pub kind: BandwidthKind,
    #[serde(default)]
    pub direction: Direction,
    /// Parallel TCP streams (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    /// Seconds measured (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    /// Seconds of TCP slow start left out first (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit: Option<u32>,
    /// UDP instead of TCP, at `bitrate`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub udp: bool,
    /// UDP: bits per second per stream, e.g. `"50M"` (default 1M).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

impl BandwidthTarget {
    pub fn new(server: impl Into<String>) -> Self {
        BandwidthTarget {
            server: server.into(),
            kind: BandwidthKind::Iperf3,
            direction: Direction::Upload,
            streams: None,
            seconds: None,
            omit: None,
            udp: false,
            bitrate: None,
            thresholds: None,
        }
    }

    pub fn spec(&self, p: &ProbeDefaults) -> Result<BandwidthSpec, SpecError> {
        let base = BandwidthSpec::for_server(self.kind, &self.server)
            .map_err(|m| SpecError::new("server", m))?;
        let s = BandwidthSpec {
            direction: self.direction,
            streams: self.streams.unwrap_or(d::BANDWIDTH_STREAMS),
            seconds: self.seconds.unwrap_or(d::BANDWIDTH_SECONDS),
            omit: self.omit.unwrap_or(d::BANDWIDTH_OMIT),
            udp_bitrate: match (self.udp, &self.bitrate) {
                (false, None) => None,
                (false, Some(_)) => {
                    return Err(SpecError::new(
                        "bitrate",
                        "a bitrate is for UDP tests: add `udp = true` or remove it",
                    ))
                }
                (true, None) => Some(d::UDP_BITRATE),
                (true, Some(b)) => Some(
                    BandwidthSpec::parse_bitrate(b).map_err(|m| SpecError::new("bitrate", m))?,
                ),
            },
            timeout: limit(None, p)?,
            busy_retries: d::BUSY_RETRIES,
            ..base
        };
        s.check()?;
        Ok(s)
    }
}

/// One suite entry: where it is in the file, its threshold overrides, and
/// its spec or what is wrong with it.
pub struct Entry<'a> {
    /// The table: `http`, `tcp`, `dns`, `udp`, `icmp`, `traceroute`, `mtu`.
    pub table: &'static str,
    pub index: usize,
    pub span: std::ops::Range<usize>,
    pub thresholds: Option<&'a ThresholdOverrides>,
    pub spec: Result<TestSpec, SpecError>,
}

impl Suite {
    /// Every entry as a spec, in the order tests run: one line per test type.
    pub fn entries(&self, p: &ProbeDefaults) -> Vec<Entry<'_>> {
        let mut out = Vec::with_capacity(self.len());
        macro_rules! add {
            ($($table:ident => $variant:ident),*) => {$(
                for (index, t) in self.$table.iter().enumerate() {
                    out.push(Entry {
                        table: stringify!($table),
                        index,
                        span: t.span(),
                        thresholds: t.get_ref().thresholds.as_ref(),
                        spec: t.get_ref().spec(p).map(TestSpec::$variant),
                    });
                }
            )*};
        }
        add!(
            http => Http,
            tcp => Tcp,
            dns => Dns,
            udp => Udp,
            icmp => Icmp,
            traceroute => Trace,
            mtu => Mtu,
            bandwidth => Bandwidth,
            ports => Ports
        );
        out
    }

    /// `(key, note)` for each old key still read under its new name.
    pub fn deprecations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut note = |table: &str, i: usize, old: Option<u64>| {
            if old.is_some() {
                out.push((
                    format!("{table}[{i}].timeout_ms"),
                    "read as `reply_wait_ms` (how long each reply is awaited); rename it: \
                     `timeout_ms` now means the whole test's limit, set in [probe]"
                        .to_owned(),
                ));
            }
        };
        for (i, t) in self.udp.iter().enumerate() {
            note("udp", i, t.get_ref().timeout_ms);
        }
        for (i, t) in self.icmp.iter().enumerate() {
            note("icmp", i, t.get_ref().timeout_ms);
        }
        for (i, t) in self.traceroute.iter().enumerate() {
            note("traceroute", i, t.get_ref().timeout_ms);
        }
        for (i, t) in self.mtu.iter().enumerate() {
            note("mtu", i, t.get_ref().timeout_ms);
        }
        out
    }
}

/// The whole test's limit: the entry's own or `[probe] timeout_ms`.
pub(super) fn limit(own: Option<u64>, p: &ProbeDefaults) -> Result<Duration, SpecError> {
    millis("timeout_ms", own.unwrap_or(p.timeout_ms))
}

/// The reply wait: `reply_wait_ms`, or the old `timeout_ms`, or `default`.
fn reply_wait(new: Option<u64>, old: Option<u64>, default: u64) -> Result<Duration, SpecError> {
    match (new, old) {
        (Some(_), Some(_)) => Err(SpecError::new(
            "timeout_ms",
            "give `reply_wait_ms` only (`timeout_ms` is its old name)",
        )),
        (Some(ms), None) => millis("reply_wait_ms", ms),
        (None, Some(ms)) => millis("timeout_ms", ms),
        (None, None) => Ok(Duration::from_millis(default)),
    }
}

fn sampled(
    count: Option<u32>,
    interval_ms: Option<u64>,
    size: Option<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    defaults: (u32, u64, usize),
) -> Result<(u32, Duration, usize), SpecError> {
    let count = count.unwrap_or(defaults.0);
    if let Some(m) = out_of_range(count, d::COUNT_RANGE, " probes") {
        return Err(SpecError::new("count", m));
    }
    let interval = interval_ms.unwrap_or(defaults.1);
    if let Some(m) = out_of_range(interval, d::INTERVAL_RANGE_MS, " ms") {
        return Err(SpecError::new("interval_ms", m));
    }
    let size = size.unwrap_or(defaults.2);
    if let Some(m) = out_of_range(size, sizes, " bytes") {
        return Err(SpecError::new("size", m));
    }
    Ok((count, Duration::from_millis(interval), size))
}

pub(super) fn host(field: &'static str, s: &str) -> Result<String, SpecError> {
    spec::parse_host(s).map_err(|m| SpecError::new(field, m))
}

impl HttpTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<HttpSpec, SpecError> {
        let s = HttpSpec {
            mode: self.mode,
            insecure: self.insecure,
            ca_file: self.ca_file.clone(),
            timeout: limit(self.timeout_ms, p)?,
            max_redirects: p.max_redirects,
            max_body_bytes: p.max_body_bytes,
            ..HttpSpec::parse(&self.url)?
        };
        s.check()?;
        Ok(s)
    }
}

impl TcpTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<TcpSpec, SpecError> {
        let address = HostPort::parse(&self.target).map_err(|m| SpecError::new("target", m))?;
        let s = TcpSpec {
            server_name: self.server_name.clone(),
            insecure: self.insecure,
            ca_file: self.ca_file.clone(),
            timeout: limit(self.timeout_ms, p)?,
            ..TcpSpec::new(address, self.mode)
        };
        s.check()?;
        Ok(s)
    }
}

impl DnsTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<DnsSpec, SpecError> {
        if self.name.trim().is_empty() {
            return Err(SpecError::new("name", "the name to look up is empty"));
        }
        let ty = self.record_type.as_deref().unwrap_or(d::DNS_RECORD_TYPE);
        let s = DnsSpec {
            name: self.name.trim().to_owned(),
            record_type: spec::parse_record_type(ty).map_err(|m| SpecError::new("type", m))?,
            server: match &self.server {
                Some(s) => Some(DnsServer::parse(s).map_err(|m| SpecError::new("server", m))?),
                None => None,
            },
            tcp: self.tcp,
            timeout: limit(self.timeout_ms, p)?,
        };
        s.check()?;
        Ok(s)
    }
}

impl UdpTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<UdpSpec, SpecError> {
        let address = HostPort::parse(&self.target).map_err(|m| SpecError::new("target", m))?;
        let (count, interval, size) = sampled(
            self.count,
            self.interval_ms,
            self.size,
            d::UDP_SIZES,
            (d::UDP_COUNT, d::UDP_INTERVAL_MS, d::UDP_SIZE),
        )?;
        Ok(UdpSpec {
            address,
            count,
            interval,
            size,
            reply_wait: reply_wait(self.reply_wait_ms, self.timeout_ms, d::UDP_REPLY_WAIT_MS)?,
            family: self.family,
            timeout: limit(None, p)?,
        })
    }
}

impl IcmpTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<IcmpSpec, SpecError> {
        let host = host("host", &self.host)?;
        let (count, interval, size) = sampled(
            self.count,
            self.interval_ms,
            self.size,
            d::ICMP_SIZES,
            (d::ICMP_COUNT, d::ICMP_INTERVAL_MS, d::ICMP_SIZE),
        )?;
        Ok(IcmpSpec {
            count,
            interval,
            size,
            reply_wait: reply_wait(self.reply_wait_ms, self.timeout_ms, d::ICMP_REPLY_WAIT_MS)?,
            family: self.family,
            timeout: limit(None, p)?,
            ..IcmpSpec::new(host)
        })
    }
}

impl TraceTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<TraceSpec, SpecError> {
        let host = host("host", &self.host)?;
        let max_hops = self.max_hops.unwrap_or(d::TRACE_MAX_HOPS);
        if let Some(m) = out_of_range(max_hops, d::TRACE_HOPS, " hops") {
            return Err(SpecError::new("max_hops", m));
        }
        let (rounds, interval, _) = sampled(
            self.rounds,
            self.interval_ms,
            None,
            0..=0,
            (d::TRACE_ROUNDS, d::TRACE_INTERVAL_MS, 0),
        )
        .map_err(|e| match e.field {
            "count" => SpecError::new("rounds", e.message),
            _ => e,
        })?;
        Ok(TraceSpec {
            max_hops,
            rounds,
            interval,
            reply_wait: reply_wait(self.reply_wait_ms, self.timeout_ms, d::TRACE_REPLY_WAIT_MS)?,
            names: self.names.unwrap_or(true),
            family: self.family,
            protocol: self.protocol.unwrap_or_default(),
            port: trace_port(self.protocol.unwrap_or_default(), self.port)?,
            timeout: limit(None, p)?,
            ..TraceSpec::new(host)
        })
    }
}

/// A TCP or UDP traceroute's port: as given (not 0), else the protocol's
/// default.
pub fn trace_port(p: TraceProtocol, port: Option<u16>) -> Result<u16, SpecError> {
    match (p, port) {
        (_, Some(0)) => Err(SpecError::new("port", "port 0 cannot be probed")),
        (TraceProtocol::Icmp, Some(_)) => Err(SpecError::new(
            "port",
            "a port applies only with protocol = \"tcp\" or \"udp\"",
        )),
        (_, Some(n)) => Ok(n),
        (TraceProtocol::Udp, None) => Ok(d::TRACE_UDP_PORT),
        _ => Ok(d::TRACE_TCP_PORT),
    }
}

impl MtuTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<MtuSpec, SpecError> {
        let host = host("host", &self.host)?;
        let max = self.max.unwrap_or(d::MTU_MAX);
        if let Some(m) = out_of_range(max, d::MTU_SIZES, " bytes") {
            return Err(SpecError::new("max", m));
        }
        Ok(MtuSpec {
            max,
            reply_wait: reply_wait(self.reply_wait_ms, self.timeout_ms, d::MTU_REPLY_WAIT_MS)?,
            family: self.family,
            timeout: limit(None, p)?,
            ..MtuSpec::new(host)
        })
    }
}
