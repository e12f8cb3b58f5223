//! DNS: one query of a chosen record type to a chosen server, timed from the
//! send of the query to its answer. Each test builds its own query on a new
//! socket (no client cache can hide the real time); an answer with the
//! truncation bit is asked again over TCP. Figures: `server`,
//! `record_type`, `rcode`, `answers` (each record's data in presentation
//! format, as `dig +short` prints it), `latency_ms` (the query time; with
//! a TCP fallback it includes the UDP try, `connect_ms` and the TCP
//! exchange), and for A/AAAA `dns_ms`: the same name through the system
//! resolver, the figure the user's applications see.
//!
//! Without a server, the system's first configured name server is queried
//! (`/etc/resolv.conf` on Unix).

use super::{ms, Probe, ProbeError};
use crate::model::{ErrorKind, Measurement, TestType};
use crate::spec::{self, query_name, DnsServer, DnsSpec};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub use crate::spec::{parse_record_type, RECORD_TYPES};

/// One DNS test: its spec and the tier it runs in.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    pub spec: DnsSpec,
    pub tier: u8,
}
super::spec_probe!(DnsProbe, DnsSpec);

impl DnsProbe {
    pub fn new(name: impl Into<String>) -> Self {
        DnsProbe {
            spec: DnsSpec::new(name),
            tier: 1,
        }
    }
}

/// The server's address (resolved through the system when it is a name).
async fn server_addr(s: &DnsServer) -> Result<SocketAddr, ProbeError> {
    if let Ok(ip) = s.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, s.port()));
    }
    let r = super::net::resolve(&s.host, s.port()).await?;
    r.addrs.first().copied().ok_or_else(|| {
        ProbeError::new(
            ErrorKind::Dns,
            format!("server `{}` has no address", s.host),
        )
    })
}

/// The first `nameserver` of `/etc/resolv.conf`.
pub fn system_nameserver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    nameserver_in(&text)
}

fn nameserver_in(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            // A link-local IPv6 server may carry a zone (`fe80::1%eth0`).
            .and_then(|a| a.split('%').next())
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// A UDP socket connected to `server` (only its answers are delivered).
async fn udp_socket(server: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let sock = UdpSocket::bind(super::net::local_any(server))
        .await
        .map_err(|e| ProbeError::io("opening a UDP socket", &e))?;
    sock.connect(server)
        .await
        .map_err(|e| ProbeError::io(&format!("DNS server {server}"), &e))?;
    Ok(sock)
}

/// Sends the query and waits for its answer: the answer and when it arrived.
async fn udp_exchange(
    sock: &UdpSocket,
    server: SocketAddr,
    wire: &[u8],
    id: u16,
) -> Result<(Message, Instant), ProbeError> {
    sock.send(wire)
        .await
        .map_err(|e| ProbeError::io(&format!("sending the query to {server}"), &e))?;
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| {
            let mut pe = ProbeError::io(&format!("DNS over UDP to {server}"), &e);
            if pe.kind == ErrorKind::Refused {
                pe.message = format!("no DNS server on UDP {server} (ICMP port unreachable)");
            }
            pe
        })?;
        let arrived = Instant::now();
        match Message::from_vec(&buf[..n]) {
            // Only the answer to this query (RFC 5452: id and question match).
            Ok(msg)
                if msg.metadata.id == id && msg.metadata.message_type == MessageType::Response =>
            {
                return Ok((msg, arrived))
            }
            Ok(_) => continue,
            Err(e) => {
                return Err(ProbeError::new(
                    ErrorKind::Protocol,
                    format!("{server} sent a malformed DNS answer: {e}"),
                ))
            }
        }
    }
}

async fn tcp_exchange(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    m: &mut Measurement,
) -> Result<(Message, Instant), ProbeError> {
    let t = Instant::now();
    let mut s = TcpStream::connect(server)
        .await
        .map_err(|e| ProbeError::io(&format!("DNS over TCP to {server}"), &e))?;
    m.metrics.connect_ms = Some(ms(t.elapsed()));
    let len = u16::try_from(wire.len())
        .map_err(|_| ProbeError::new(ErrorKind::Config, "query too large"))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    s.write_all(&framed)
        .await
        .map_err(|e| ProbeError::io(&format!("sending the query to {server}"), &e))?;
    let mut lenb = [0u8; 2];
    s.read_exact(&mut lenb)
        .await
        .map_err(|e| ProbeError::io(&format!("DNS over TCP from {server}"), &e))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lenb))];
    s.read_exact(&mut buf)
        .await
        .map_err(|e| ProbeError::io(&format!("DNS over TCP from {server}"), &e))?;
    let arrived = Instant::now();
    let msg = Message::from_vec(&buf).map_err(|e| {
        ProbeError::new(
            ErrorKind::Protocol,
            format!("{server} sent a malformed DNS answer over TCP: {e}"),
        )
    })?;
    if msg.metadata.id != id {
        return Err(ProbeError::new(
            ErrorKind::Protocol,
            format!("{server} answered over TCP with another query's id"),
        ));
    }
    Ok((msg, arrived))
}

/// The data of each answer record in presentation format (`dig +short`).
fn answers(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .map(|r| match &r.data {
            // Each character string quoted, as in zone files and dig.
            RData::TXT(t) => t
                .txt_data
                .iter()
                .map(|s| quote(&String::from_utf8_lossy(s)))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        })
        .collect()
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The RFC 1035 / 6895 mnemonic of a response code.
pub fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

/// The time the system resolver takes for `name`, as applications see it,
/// or why it gave no address.
async fn system_lookup_ms(name: &str) -> Result<f64, String> {
    let start = Instant::now();
    let found = tokio::net::lookup_host((name.trim(), 0))
        .await
        .map_err(|e| e.to_string())?;
    let ms = ms(start.elapsed());
    if found.count() > 0 {
        Ok(ms)
    } else {
        Err("the system resolver returned no address".into())
    }
}

/// The reverse name of `ip` from `server`, within `wait` (traceroute hops).
pub async fn reverse_name(ip: IpAddr, server: SocketAddr, wait: Duration) -> Option<String> {
    let mut q = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from(ip), RecordType::PTR));
    let wire = q.to_vec().ok()?;
    let exchange = async {
        let sock = udp_socket(server).await?;
        udp_exchange(&sock, server, &wire, q.metadata.id).await
    };
    let (answer, _) = tokio::time::timeout(wait, exchange).await.ok()?.ok()?;
    answer
        .answers
        .iter()
        .find(|r| r.record_type() == RecordType::PTR)
        .map(|r| r.data.to_string().trim_end_matches('.').to_owned())
}

impl Probe for DnsProbe {
    fn test_type(&self) -> TestType {
        TestType::Dns
    }

    /// The name, then the type and server when they are not the defaults,
    /// as `dig` writes them: `example.com MX @192.0.2.53`.
    fn target(&self) -> String {
        spec::dns_id(&self.name, self.record_type, self.server.as_ref(), self.tcp)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn tier(&self) -> u8 {
        self.tier
    }

    async fn attempt(&self, m: &mut Measurement) -> Result<(), ProbeError> {
        let rtype = self.record_type;
        m.metrics.record_type = Some(rtype.to_string());
        let qname =
            query_name(&self.name, rtype).map_err(|e| ProbeError::new(ErrorKind::Config, e))?;
        let server = match &self.server {
            Some(s) => server_addr(s).await?,
            None => system_nameserver().ok_or_else(|| {
                ProbeError::new(
                    ErrorKind::Config,
                    "no name server configured on this system: give one with --server / `server`",
                )
            })?,
        };
        m.metrics.server = Some(server.to_string());
        m.resolved_ip = Some(server.ip().to_string());

        let mut query = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(qname, rtype));
        let mut edns = Edns::new();
        // RFC 9715's safe UDP size: larger answers come back truncated and
        // are asked again over TCP.
        edns.set_max_payload(1232);
        query.set_edns(edns);
        let wire = query.to_vec().map_err(|e| {
            ProbeError::new(ErrorKind::Config, format!("cannot encode the query: {e}"))
        })?;

        // The socket is local set-up: made before the clock starts. The
        // clock stops when the answer arrives, before it is parsed.
        let sock = if self.tcp {
            None
        } else {
            Some(udp_socket(server).await?)
        };
        let start = Instant::now();
        let (answer, arrived) = match &sock {
            None => tcp_exchange(server, &wire, query.metadata.id, m).await?,
            Some(sock) => {
                let a = udp_exchange(sock, server, &wire, query.metadata.id).await?;
                if a.0.metadata.truncation {
                    tcp_exchange(server, &wire, query.metadata.id, m).await?
                } else {
                    a
                }
            }
        };
        m.latency_ms = Some(ms(arrived - start));
        m.metrics.total_ms = m.latency_ms;
        let rcode = rcode_name(u16::from(answer.metadata.response_code));
        m.metrics.rcode = Some(rcode.clone());
        m.metrics.answers = Some(answers(&answer));
        if matches!(rtype, RecordType::A | RecordType::AAAA) {
            match system_lookup_ms(&self.name).await {
                Ok(t) => m.metrics.dns_ms = Some(t),
                Err(why) => m.metrics.system_resolver_error = Some(why),
            }
        }
        if rcode != "NOERROR" {
            return Err(ProbeError::new(
                ErrorKind::Dns,
                format!(
                    "{server} answered {rcode}{}",
                    match rcode.as_str() {
                        "NXDOMAIN" => format!(": `{}` does not exist", self.name),
                        "SERVFAIL" => ": the server could not resolve the name".into(),
                        "REFUSED" => ": the server refuses to answer this client".into(),
                        _ => String::new(),
                    }
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_and_names() {
        assert_eq!(parse_record_type("mx").unwrap(), RecordType::MX);
        assert!(parse_record_type("AXFR")
            .unwrap_err()
            .contains("expected one of"));
        assert_eq!(
            query_name("192.0.2.1", RecordType::PTR)
                .unwrap()
                .to_string(),
            "1.2.0.192.in-addr.arpa."
        );
        assert_eq!(
            query_name("example.com", RecordType::A)
                .unwrap()
                .to_string(),
            "example.com."
        );
        assert!(query_name("  ", RecordType::A).is_err());
        assert!(query_name("a..b", RecordType::A).is_err());
    }

    #[test]
    fn resolv_conf_and_rcodes() {
        let conf = "# generated\nsearch lan\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n";
        assert_eq!(nameserver_in(conf), Some("[fe80::1]:53".parse().unwrap()));
        assert_eq!(nameserver_in("options ndots:1\n"), None);
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(23), "RCODE23");
    }

    #[test]
    fn targets_read_like_dig() {
        let mut p = DnsProbe::new("example.com");
        assert_eq!(p.target(), "example.com");
        p.record_type = RecordType::MX;
        p.server = Some(DnsServer::parse("192.0.2.53").unwrap());
        assert_eq!(p.target(), "example.com MX @192.0.2.53");
    }

    #[tokio::test]
    async fn garbage_from_the_server_is_a_protocol_error() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            if let Ok((_, from)) = sock.recv_from(&mut b).await {
                let _ = sock.send_to(b"\x01\x02garbage", from).await;
            }
        });
        let mut p = DnsProbe::new("example.com");
        p.server = Some(DnsServer::parse(&addr.to_string()).unwrap());
        p.timeout = Duration::from_secs(2);
        let r = p.run().await;
        assert_eq!(r.error_kind, Some(ErrorKind::Protocol), "{r:?}");
        assert!(r.error.unwrap().contains("malformed"));
    }
}
