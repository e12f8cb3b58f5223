//! The parsers and checks every spec is built with: hosts, ports, URLs,
//! record types, name servers, ranges and time limits, and the error that
//! names the field at fault.

use crate::defaults as d;
use hickory_proto::rr::{Name, RecordType};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// What is wrong with a value, and which field of the spec it is (the
/// config file names it as a key, the CLI as a flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

impl SpecError {
    pub fn new(field: &'static str, message: impl Into<String>) -> SpecError {
        SpecError {
            field,
            message: message.into(),
        }
    }
}

/// "`v` is out of range (lo to hi unit)" when `v` is outside `r`.
pub fn out_of_range<T>(v: T, r: std::ops::RangeInclusive<T>, unit: &str) -> Option<String>
where
    T: PartialOrd + fmt::Display,
{
    (!r.contains(&v)).then(|| format!("{v} is out of range ({} to {}{unit})", r.start(), r.end()))
}

/// A time limit or reply wait in milliseconds, checked against
/// [`d::TIMEOUT_RANGE_MS`].
pub fn millis(field: &'static str, ms: u64) -> Result<Duration, SpecError> {
    match out_of_range(ms, d::TIMEOUT_RANGE_MS, " ms") {
        Some(m) => Err(SpecError::new(field, m)),
        None => Ok(Duration::from_millis(ms)),
    }
}

/// A host and port (`host:port`, `[v6]:port` for IPv6 literals).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` / `[v6]:port`, saying what is wrong.
    pub fn parse(s: &str) -> Result<HostPort, String> {
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
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<HostPort, String> {
        HostPort::parse(s)
    }
}

impl From<SocketAddr> for HostPort {
    fn from(a: SocketAddr) -> HostPort {
        HostPort {
            host: a.ip().to_string(),
            port: a.port(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Checks a host name or IP address as a test target; the host, trimmed.
pub fn parse_host(s: &str) -> Result<String, String> {
    let h = s.trim();
    if h.is_empty() {
        return Err("the host is empty".into());
    }
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(h.to_owned());
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
    Ok(h.to_owned())
}

/// Parses and checks an HTTP(S) URL the probe can test.
pub fn parse_http_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
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

/// The record types a test may ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV"];

/// A record type from its name, in any case, or a message listing the choices.
pub fn parse_record_type(s: &str) -> Result<RecordType, String> {
    let up = s.trim().to_ascii_uppercase();
    if !RECORD_TYPES.contains(&up.as_str()) {
        return Err(format!(
            "unknown record type `{s}` (expected one of: {})",
            RECORD_TYPES.join(", ")
        ));
    }
    RecordType::from_str(&up).map_err(|e| format!("record type `{s}`: {e}"))
}

/// The name to ask for: for PTR an address becomes its reverse name.
pub fn query_name(name: &str, rtype: RecordType) -> Result<Name, String> {
    let n = name.trim();
    if rtype == RecordType::PTR {
        if let Ok(ip) = n.parse::<IpAddr>() {
            return Ok(Name::from(ip));
        }
    }
    if n.is_empty() {
        return Err("the name to query is empty".into());
    }
    let mut q = Name::from_utf8(n).map_err(|e| format!("`{n}` is not a valid DNS name: {e}"))?;
    q.set_fqdn(true);
    Ok(q)
}

/// A name server as written: `host`, `host:port`, an address, `[v6]:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsServer {
    /// A host name or address (IPv6 without brackets).
    pub host: String,
    /// The port when one was written (else [`d::DNS_PORT`]).
    pub port: Option<u16>,
}

impl DnsServer {
    pub fn parse(s: &str) -> Result<DnsServer, String> {
        let t = s.trim();
        let bare = t.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(DnsServer {
                host: ip.to_string(),
                port: None,
            });
        }
        if let Ok(a) = t.parse::<SocketAddr>() {
            return Ok(DnsServer {
                host: a.ip().to_string(),
                port: Some(a.port()),
            });
        }
        match t.rsplit_once(':') {
            Some(_) => HostPort::parse(t).map(|hp| DnsServer {
                host: hp.host,
                port: Some(hp.port),
            }),
            None => parse_host(t).map(|host| DnsServer { host, port: None }),
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(d::DNS_PORT)
    }
}

impl fmt::Display for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            None => f.write_str(&self.host),
            Some(p) => HostPort {
                host: self.host.clone(),
                port: p,
            }
            .fmt(f),
        }
    }
}
