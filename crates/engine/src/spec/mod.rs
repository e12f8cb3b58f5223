//! Test specs: a target parsed once, at the edge (the config file, CLI
//! arguments, settings from the UI), into typed values a probe runs as they
//! are: a parsed [`Url`], a [`RecordType`], a host and a port. Nothing here
//! reads a file or knows a file format; [`crate::probe::build`] turns a spec
//! into a probe, and [`TestSpec::id`] is the one way a target's identity (its
//! series in the history) is written.

use crate::defaults as d;
use crate::kinds::{BandwidthKind, Direction, Family, HttpMode, Method, TcpMode, TraceProtocol};
use crate::model::TestType;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

pub use hickory_proto::rr::RecordType;

mod parse;
mod ports;
pub use parse::*;
pub use ports::{ports_id, PortsSpec};

/// An HTTP(S) fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub url: Url,
    /// The URL as written (trimmed): the target's identity.
    pub written: String,
    pub mode: HttpMode,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// The whole test's limit.
    pub timeout: Duration,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
}

impl HttpSpec {
    pub fn new(url: Url) -> HttpSpec {
        HttpSpec {
            written: url.as_str().to_owned(),
            url,
            mode: HttpMode::Auto,
            insecure: false,
            ca_file: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
            max_redirects: d::MAX_REDIRECTS,
            max_body_bytes: d::MAX_BODY_BYTES,
        }
    }

    /// Parses `s` as the URL, keeping it as written for the identity.
    pub fn parse(s: &str) -> Result<HttpSpec, SpecError> {
        let url = parse_http_url(s).map_err(|m| SpecError::new("url", m))?;
        Ok(HttpSpec {
            written: s.trim().to_owned(),
            ..HttpSpec::new(url)
        })
    }

    /// Mode and URL agree (HTTP/3 runs over QUIC, so HTTPS only).
    pub fn check(&self) -> Result<(), SpecError> {
        if self.mode == HttpMode::Http3 && self.url.scheme() != "https" {
            return Err(SpecError::new("mode", "HTTP/3 needs an https:// URL"));
        }
        Ok(())
    }
}

/// A TCP connect, then a TLS handshake or an SSH banner by mode.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    pub address: HostPort,
    pub mode: TcpMode,
    /// TLS: the name sent as SNI and verified (default: the host).
    pub server_name: Option<String>,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl TcpSpec {
    pub fn new(address: HostPort, mode: TcpMode) -> TcpSpec {
        TcpSpec {
            address,
            mode,
            server_name: None,
            insecure: false,
            ca_file: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }

    /// TLS options apply only in TLS mode.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.mode != TcpMode::Tls
            && (self.server_name.is_some() || self.insecure || self.ca_file.is_some())
        {
            return Err(SpecError::new(
                "mode",
                "server_name, insecure and ca_file apply only with mode = \"tls\"",
            ));
        }
        Ok(())
    }
}

/// One DNS query.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    /// The name to query (for PTR, an address is turned into its reverse name).
    pub name: String,
    /// `None` asks the system's name server.
    pub server: Option<DnsServer>,
    pub record_type: RecordType,
    /// Ask over TCP from the start.
    pub tcp: bool,
    pub timeout: Duration,
}

impl DnsSpec {
    pub fn new(name: impl Into<String>) -> DnsSpec {
        DnsSpec {
            name: name.into(),
            server: None,
            record_type: RecordType::A,
            tcp: false,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }

    /// The name can be asked for with this record type.
    pub fn check(&self) -> Result<(), SpecError> {
        query_name(&self.name, self.record_type)
            .map(drop)
            .map_err(|m| SpecError::new("name", m))
    }
}

/// UDP echo to a peer (`waddleperf serve --udp-echo`).
#[derive(Debug, Clone, PartialEq)]
pub struct UdpSpec {
    pub address: HostPort,
    pub count: u32,
    pub interval: Duration,
    /// Datagram bytes, header included.
    pub size: usize,
    /// How long each datagram waits for its echo.
    pub reply_wait: Duration,
    pub family: Option<Family>,
    /// How long the test may run beyond its pacing.
    pub timeout: Duration,
}

impl UdpSpec {
    pub fn new(address: HostPort) -> UdpSpec {
        UdpSpec {
            address,
            count: d::UDP_COUNT,
            interval: Duration::from_millis(d::UDP_INTERVAL_MS),
            size: d::UDP_SIZE,
            reply_wait: Duration::from_millis(d::UDP_REPLY_WAIT_MS),
            family: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }
}

/// ICMP echo (ping).
#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    pub host: String,
    pub count: u32,
    pub interval: Duration,
    /// Payload bytes per echo.
    pub size: usize,
    /// How long each echo waits for its reply.
    pub reply_wait: Duration,
    pub family: Option<Family>,
    /// Send with this method only; `None`: datagram where allowed, else raw.
    pub method: Option<Method>,
    /// How long the test may run beyond its pacing.
    pub timeout: Duration,
}

impl IcmpSpec {
    pub fn new(host: impl Into<String>) -> IcmpSpec {
        IcmpSpec {
            host: host.into(),
            count: d::ICMP_COUNT,
            interval: Duration::from_millis(d::ICMP_INTERVAL_MS),
            size: d::ICMP_SIZE,
            reply_wait: Duration::from_millis(d::ICMP_REPLY_WAIT_MS),
            family: None,
            method: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }
}

/// A traceroute, or an MTR with `rounds` > 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    pub host: String,
    pub max_hops: u8,
    pub rounds: u32,
    pub interval: Duration,
    /// How long each probe waits for its answer.
    pub reply_wait: Duration,
    /// Look up the hops' reverse names.
    pub names: bool,
    pub family: Option<Family>,
    pub method: Option<Method>,
    /// ICMP echo, or TCP SYNs / UDP datagrams to `port`.
    pub protocol: TraceProtocol,
    /// The TCP or UDP port probed (unused for ICMP).
    pub port: u16,
    /// How long the test may run beyond its pacing.
    pub timeout: Duration,
}

impl TraceSpec {
    pub fn new(host: impl Into<String>) -> TraceSpec {
        TraceSpec {
            protocol: TraceProtocol::Icmp,
            port: d::TRACE_TCP_PORT,
            host: host.into(),
            max_hops: d::TRACE_MAX_HOPS,
            rounds: d::TRACE_ROUNDS,
            interval: Duration::from_millis(d::TRACE_INTERVAL_MS),
            reply_wait: Duration::from_millis(d::TRACE_REPLY_WAIT_MS),
            names: true,
            family: None,
            method: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }
}

/// Path MTU discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct MtuSpec {
    pub host: String,
    /// The largest packet size tried.
    pub max: u32,
    /// How long each probe waits.
    pub reply_wait: Duration,
    pub family: Option<Family>,
    pub method: Option<Method>,
    /// How long the test may run beyond its planned probes.
    pub timeout: Duration,
}

impl MtuSpec {
    pub fn new(host: impl Into<String>) -> MtuSpec {
        MtuSpec {
            host: host.into(),
            max: d::MTU_MAX,
            reply_wait: Duration::from_millis(d::MTU_REPLY_WAIT_MS),
            family: None,
            method: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }
}

/// A bandwidth test: the link loaded for `seconds` after `omit` seconds of
/// slow start, over `streams` TCP connections.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthSpec {
    /// The server (iperf3: `host[:port]`, port 5201 by default; the HTTP
    /// kinds: the host and port of `url`).
    pub server: HostPort,
    /// The HTTP kinds: the server's base URL, ending in `/` (the test's
    /// paths are relative to it). `None` for iperf3.
    pub url: Option<Url>,
    pub kind: BandwidthKind,
    pub direction: Direction,
    pub streams: u32,
    pub seconds: u32,
    pub omit: u32,
    /// UDP at this many bits per second per stream (as iperf3's
    /// `--bitrate`), instead of TCP.
    pub udp_bitrate: Option<u64>,
    /// How long the test may run beyond `omit + seconds`.
    pub timeout: Duration,
    /// When the server is busy with another test: how many more tries, and
    /// the wait before each.
    pub busy_retries: u32,
    pub busy_wait: Duration,
}

impl BandwidthSpec {
    pub fn new(server: HostPort) -> BandwidthSpec {
        BandwidthSpec {
            server,
            url: None,
            kind: BandwidthKind::Iperf3,
            direction: Direction::Upload,
            streams: d::BANDWIDTH_STREAMS,
            seconds: d::BANDWIDTH_SECONDS,
            omit: d::BANDWIDTH_OMIT,
            udp_bitrate: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
            busy_retries: 0,
            busy_wait: Duration::from_secs(d::BUSY_WAIT_S),
        }
    }

    /// A spec for a server of `kind` as written: iperf3 `host[:port]`, or
    /// the base URL of an HTTP kind (`http://` or `https://`).
    pub fn for_server(kind: BandwidthKind, s: &str) -> Result<BandwidthSpec, String> {
        if kind == BandwidthKind::Iperf3 {
            return Ok(BandwidthSpec::new(BandwidthSpec::parse_server(s)?));
        }
        let url = BandwidthSpec::parse_base_url(s)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server = HostPort {
            host: parse_host(host)?,
            port: url.port_or_known_default().unwrap_or(80),
        };
        Ok(BandwidthSpec {
            kind,
            url: Some(url),
            ..BandwidthSpec::new(server)
        })
    }

    /// The base URL of an HTTP speed-test server: `http` or `https`, a
    /// host, no query; its path made to end in `/`.
    pub fn parse_base_url(s: &str) -> Result<Url, String> {
        let t = s.trim();
        let mut url = Url::parse(t).map_err(|e| {
            format!(
                "`{}` is not a URL ({e}): give the server's base URL, e.g. http://peer.lan:8080/",
                crate::model::excerpt(t, 60)
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "`{}`: a speed-test server is reached over http:// or https://",
                crate::model::excerpt(t, 60)
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{}` names no host", crate::model::excerpt(t, 60)));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{}`: the base URL takes no query or fragment",
                crate::model::excerpt(t, 60)
            ));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(url)
    }

    /// An iperf3 server as `host` or `host:port` (`[v6]:port`).
    pub fn parse_server(s: &str) -> Result<HostPort, String> {
        let t = s.trim();
        let bare = t.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() || !t.contains(':') {
            return parse_host(bare).map(|host| HostPort {
                host,
                port: d::IPERF3_PORT,
            });
        }
        HostPort::parse(t)
    }

    /// Streams, seconds and omit within their ranges.
    pub fn check(&self) -> Result<(), SpecError> {
        if let Some(m) = out_of_range(self.streams, d::BANDWIDTH_STREAM_RANGE, " streams") {
            return Err(SpecError::new("streams", m));
        }
        if let Some(m) = out_of_range(self.seconds, d::BANDWIDTH_SECONDS_RANGE, " seconds") {
            return Err(SpecError::new("seconds", m));
        }
        if let Some(m) = out_of_range(self.omit, d::BANDWIDTH_OMIT_RANGE, " seconds") {
            return Err(SpecError::new("omit", m));
        }
        if self.kind == BandwidthKind::Iperf3 && self.url.is_some() {
            return Err(SpecError::new(
                "server",
                "an iperf3 server is `host[:port]`, not a URL",
            ));
        }
        if self.kind != BandwidthKind::Iperf3 && self.url.is_none() {
            return Err(SpecError::new(
                "server",
                format!(
                    "a {} server is given by its base URL (http://host:port/)",
                    self.kind.as_str()
                ),
            ));
        }
        if self.udp_bitrate.is_some() && self.kind != BandwidthKind::Iperf3 {
            return Err(SpecError::new(
                "udp",
                "UDP bandwidth tests are for iperf3 servers only",
            ));
        }
        if let Some(b) = self.udp_bitrate {
            if !d::UDP_BITRATE_RANGE.contains(&b) {
                return Err(SpecError::new(
                    "bitrate",
                    format!(
                        "{} per stream is outside {}..={}",
                        format_bitrate(b),
                        format_bitrate(*d::UDP_BITRATE_RANGE.start()),
                        format_bitrate(*d::UDP_BITRATE_RANGE.end())
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A bitrate in bits per second: a number with an optional `K`, `M` or
    /// `G` (powers of 1000, as iperf3 reads them), e.g. `50M`.
    pub fn parse_bitrate(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let (num, scale) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1e3),
            Some((i, 'm' | 'M')) => (&t[..i], 1e6),
            Some((i, 'g' | 'G')) => (&t[..i], 1e9),
            _ => (t, 1.0),
        };
        match num.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e12 => Ok((v * scale).round() as u64),
            _ => Err(format!(
                "`{}` is not a bitrate (a number of bits per second, with K, M or G: e.g. 50M)",
                crate::model::excerpt(t, 40)
            )),
        }
    }
}

/// A test of any type, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub enum TestSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Dns(DnsSpec),
    Udp(UdpSpec),
    Icmp(IcmpSpec),
    Trace(TraceSpec),
    Mtu(MtuSpec),
    Bandwidth(BandwidthSpec),
    Ports(PortsSpec),
}

impl TestSpec {
    pub fn test_type(&self) -> TestType {
        match self {
            TestSpec::Http(_) => TestType::Http,
            TestSpec::Tcp(_) => TestType::Tcp,
            TestSpec::Dns(_) => TestType::Dns,
            TestSpec::Udp(_) => TestType::Udp,
            TestSpec::Icmp(_) => TestType::Icmp,
            TestSpec::Trace(_) => TestType::Traceroute,
            TestSpec::Mtu(_) => TestType::Mtu,
            TestSpec::Bandwidth(_) => TestType::Bandwidth,
            TestSpec::Ports(_) => TestType::Ports,
        }
    }

    /// The target's identity: with the test type, its series in the history.
    pub fn id(&self) -> String {
        match self {
            TestSpec::Http(s) => http_id(&s.written, s.mode),
            TestSpec::Tcp(s) => tcp_id(&s.address, s.mode),
            TestSpec::Dns(s) => dns_id(&s.name, s.record_type, s.server.as_ref(), s.tcp),
            TestSpec::Udp(s) => s.address.to_string(),
            TestSpec::Icmp(s) => s.host.trim().to_owned(),
            TestSpec::Trace(s) => trace_id(s),
            TestSpec::Mtu(s) => s.host.trim().to_owned(),
            TestSpec::Bandwidth(s) => bandwidth_id(s),
            TestSpec::Ports(s) => ports_id(s),
        }
    }
}

/// An HTTP target's identity: the URL as written, then the mode unless it is
/// `auto` (`https://example.com/ http2`), so a forced protocol is a series
/// of its own.
pub fn http_id(written: &str, mode: HttpMode) -> String {
    match mode {
        HttpMode::Auto => written.trim().to_owned(),
        m => format!("{} {}", written.trim(), m.as_str()),
    }
}

/// A bitrate for people: `50 Mbit/s`.
pub fn format_bitrate(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{} Gbit/s", b / 1e9)
    } else if b >= 1e6 {
        format!("{} Mbit/s", b / 1e6)
    } else if b >= 1e3 {
        format!("{} kbit/s", b / 1e3)
    } else {
        format!("{b} bit/s")
    }
}

/// `iperf3://host:port`, then the direction unless it is `upload`, then
/// `udp` for a UDP test: each its own series.
pub fn bandwidth_id(s: &BandwidthSpec) -> String {
    let mut id = match &s.url {
        Some(u) => format!("{}+{u}", s.kind.as_str()),
        None => format!("{}://{}", s.kind.as_str(), s.server),
    };
    if s.direction != Direction::Upload {
        id.push(' ');
        id.push_str(s.direction.as_str());
    }
    if s.udp_bitrate.is_some() {
        id.push_str(" udp");
    }
    id
}

/// An ICMP traceroute is its host; TCP and UDP ones name their protocol
/// and port (`tcp://example.com:443`), each its own series.
pub fn trace_id(s: &TraceSpec) -> String {
    let host = s.host.trim();
    match s.protocol {
        TraceProtocol::Icmp => host.to_owned(),
        p => format!(
            "{}://{}",
            p.as_str(),
            HostPort {
                host: host.to_owned(),
                port: s.port
            }
        ),
    }
}

/// `host:port`, `tls://host:port` or `ssh://host:port`.
pub fn tcp_id(address: &HostPort, mode: TcpMode) -> String {
    match mode {
        TcpMode::Raw => address.to_string(),
        TcpMode::Tls => format!("tls://{address}"),
        TcpMode::Ssh => format!("ssh://{address}"),
    }
}

/// The name, then the type and server when they are not the defaults, as
/// `dig` writes them: `example.com MX @192.0.2.53`, `+tcp` last.
pub fn dns_id(name: &str, rtype: RecordType, server: Option<&DnsServer>, tcp: bool) -> String {
    let mut t = name.trim().to_owned();
    if rtype != RecordType::A {
        t.push(' ');
        t.push_str(&rtype.to_string());
    }
    if let Some(s) = server {
        t.push_str(" @");
        t.push_str(&s.to_string());
    }
    if tcp {
        t.push_str(" +tcp");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let hp = HostPort::parse(" example.com:443 ").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("example.com", 443));
        let v6 = HostPort::parse("[2001:db8::1]:53").unwrap();
        assert_eq!(v6.host, "2001:db8::1");
        assert_eq!(v6.to_string(), "[2001:db8::1]:53");
        for bad in [
            "example.com",
            "2001:db8::1:53",
            "h:+80",
            "h:0",
            ":80",
            "[::1]80",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad}");
        }
        let err = |s: &str| HostPort::parse(s).unwrap_err();
        assert_eq!(HostPort::parse("[::1]:22").unwrap().host, "::1");
        assert!(err(":80").contains("empty"));
        assert!(err("a:0").contains("port 0"));
        assert!(err("a:x").contains("`x`"));
        assert!(err("127.0.0.1:+80").contains("`+80`"));
        assert!(HostPort::parse("a:").is_err());
        assert!(HostPort::parse("a:65536").is_err());
    }

    #[test]
    fn dns_servers_keep_their_written_form() {
        for (s, shown, port) in [
            ("192.0.2.53", "192.0.2.53", 53),
            ("192.0.2.53:5353", "192.0.2.53:5353", 5353),
            ("[2001:db8::53]:5353", "[2001:db8::53]:5353", 5353),
            ("2001:db8::53", "2001:db8::53", 53),
            ("ns.example", "ns.example", 53),
        ] {
            let d = DnsServer::parse(s).unwrap();
            assert_eq!((d.to_string().as_str(), d.port()), (shown, port), "{s}");
        }
        assert!(DnsServer::parse("ns.example:x").is_err());
    }

    #[test]
    fn ids_are_written_one_way() {
        let mut h = HttpSpec::parse("https://example.com").unwrap();
        assert_eq!(TestSpec::Http(h.clone()).id(), "https://example.com");
        h.mode = HttpMode::Http2;
        assert_eq!(TestSpec::Http(h).id(), "https://example.com http2");
        let t = TcpSpec::new(HostPort::parse("[::1]:443").unwrap(), TcpMode::Tls);
        assert_eq!(TestSpec::Tcp(t).id(), "tls://[::1]:443");
        let mut q = DnsSpec::new("example.com");
        q.record_type = RecordType::MX;
        q.server = Some(DnsServer::parse("192.0.2.53").unwrap());
        assert_eq!(TestSpec::Dns(q).id(), "example.com MX @192.0.2.53");
    }

    #[test]
    fn http3_needs_https() {
        let mut h = HttpSpec::parse("http://example.com/").unwrap();
        h.mode = HttpMode::Http3;
        assert_eq!(h.check().unwrap_err().field, "mode");
    }
}
