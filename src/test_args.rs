//! `waddleperf test TYPE ...`: the arguments of each test type, parsed
//! once into the engine's typed spec ([`TestSpec`]); the engine turns the
//! spec into a probe ([`waddleperf_engine::probe::build`]) as it does for
//! the config file's targets.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use waddleperf_engine::config::Config;
use waddleperf_engine::defaults as d;
use waddleperf_engine::kinds::{
    BandwidthKind, Direction, Family, HttpMode, Method, TcpMode, TraceProtocol,
};
use waddleperf_engine::spec::{
    self, BandwidthSpec, DnsServer, DnsSpec, HostPort, HttpSpec, IcmpSpec, MtuSpec, PortsSpec,
    SpecError, TcpSpec, TestSpec, TraceSpec, UdpSpec,
};

/// `-4` / `-6`, and the ICMP method.
#[derive(Args, Clone, Default)]
pub struct FamilyArgs {
    /// Use IPv4 only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Send with this ICMP method only: `datagram` (unprivileged) or `raw`
    /// (root or CAP_NET_RAW) [default: datagram where allowed, else raw]
    #[arg(long, value_name = "METHOD")]
    pub method: Option<Method>,
}

impl FamilyArgs {
    fn family(&self) -> Option<Family> {
        if self.ipv4 {
            Some(Family::V4)
        } else if self.ipv6 {
            Some(Family::V6)
        } else {
            None
        }
    }
}

/// Options of `test icmp` and `test udp`.
#[derive(Args, Clone)]
pub struct SampleArgs {
    /// Probes to send
    #[arg(long, short = 'c', default_value_t = d::ICMP_COUNT, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Milliseconds between probes
    #[arg(long, short = 'i', default_value_t = d::ICMP_INTERVAL_MS, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval: u64,
    #[command(flatten)]
    pub family: FamilyArgs,
}

#[derive(Args, Clone)]
pub struct CommonTestArgs {
    /// Time limit in milliseconds: how long the test may run beyond its
    /// planned pacing (for HTTP, TCP and DNS, the whole test)
    /// [default: probe.timeout_ms]
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// How long each probe waits for its answer, in milliseconds (ICMP, UDP,
    /// traceroute, MTU) [default: 2000 for ICMP and UDP, 1000 for the others]
    #[arg(long, value_name = "MS")]
    pub wait: Option<u64>,
    /// Do not store the result
    #[arg(long)]
    pub no_store: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum TestKind {
    /// HTTP(S) GET with per-phase timing
    Http {
        /// URL to fetch (http:// or https://)
        url: String,
        /// Do not verify the server's certificate (this test only)
        #[arg(long)]
        insecure: bool,
        /// Extra trusted roots (PEM) for this test
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        /// Force HTTP/1.1
        #[arg(long, conflicts_with = "http2")]
        http1: bool,
        /// Force HTTP/2
        #[arg(long, conflicts_with = "http3")]
        http2: bool,
        /// Force HTTP/3 over QUIC (https only); a handshake that gets no
        /// answer is the error kind `http3_unavailable`
        #[arg(long, conflicts_with = "http1")]
        http3: bool,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// TCP connect time; with --tls the handshake and certificate, with --ssh the banner
    Tcp {
        /// host:port ([v6]:port for IPv6)
        target: String,
        /// TLS handshake after connecting
        #[arg(long, conflicts_with = "ssh")]
        tls: bool,
        /// Wait for the server's SSH banner
        #[arg(long)]
        ssh: bool,
        /// TLS: name to send and verify [default: the host]
        #[arg(long, requires = "tls")]
        server_name: Option<String>,
        /// TLS: do not verify the certificate
        #[arg(long, requires = "tls")]
        insecure: bool,
        /// TLS: extra trusted roots (PEM)
        #[arg(long, requires = "tls", value_name = "PEM")]
        ca_file: Option<PathBuf>,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// DNS query time, rcode and answers from a server (default: the
    /// system's), and the system resolver's time for A/AAAA
    Dns {
        /// Name to look up (for PTR, an address is fine)
        name: String,
        /// Server to ask: HOST[:PORT] [default: the system's name server]
        #[arg(long, value_name = "HOST[:PORT]")]
        server: Option<String>,
        /// Record type: A, AAAA, CNAME, MX, NS, TXT, SOA, PTR or SRV
        #[arg(long = "type", short = 't', default_value = d::DNS_RECORD_TYPE, value_name = "TYPE")]
        record_type: String,
        /// Ask over TCP from the start (UDP falls back to TCP on truncation anyway)
        #[arg(long)]
        tcp: bool,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// UDP echo: RTT, loss and jitter to an echo peer (`waddleperf serve --udp-echo`)
    Udp {
        /// host:port of the echo peer
        target: String,
        #[command(flatten)]
        sampling: SampleArgs,
        /// Datagram payload bytes
        #[arg(long, short = 's', default_value_t = d::UDP_SIZE, value_name = "BYTES")]
        size: usize,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// ICMP ping: RTT summary, loss and jitter
    Icmp {
        /// Host name or address
        host: String,
        #[command(flatten)]
        sampling: SampleArgs,
        /// ICMP payload bytes (as ping -s)
        #[arg(long, short = 's', default_value_t = d::ICMP_SIZE, value_name = "BYTES")]
        size: usize,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// Traceroute, or MTR with --rounds: per hop address, name, loss, RTT
    Traceroute {
        /// Host name or address
        host: String,
        /// Highest TTL tried
        #[arg(long, short = 'm', default_value_t = d::TRACE_MAX_HOPS, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
        max_hops: u8,
        /// Rounds (more than 1 is MTR mode)
        #[arg(long, short = 'r', default_value_t = d::TRACE_ROUNDS, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        rounds: u32,
        /// Milliseconds between rounds
        #[arg(long, short = 'i', default_value_t = d::TRACE_INTERVAL_MS, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=60_000))]
        interval: u64,
        /// Do not look up the hops' reverse names
        #[arg(long, short = 'n')]
        no_names: bool,
        /// Send TCP SYNs to this port instead of ICMP echo (finds hops
        /// where ICMP echo is dropped; the target answers SYN-ACK or RST),
        /// e.g. 443
        #[arg(long, short = 'T', value_name = "PORT", conflicts_with = "udp")]
        tcp: Option<u16>,
        /// Send UDP datagrams to this port instead of ICMP echo (33434 is
        /// traceroute's classic choice)
        #[arg(long, short = 'U', value_name = "PORT")]
        udp: Option<u16>,
        #[command(flatten)]
        family: FamilyArgs,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// Port check: open, closed (RST) or filtered (no answer) for each
    /// listed TCP port, with its connect time
    Ports {
        /// Host name or address
        host: String,
        /// The ports: 22,80,443 (explicit ranges such as 8000-8003
        /// allowed; 64 at most: not a scanner)
        #[arg(long, short = 'p', value_name = "LIST", default_value = "22,80,443")]
        ports: String,
        /// Milliseconds each connect waits before its port counts as
        /// filtered
        #[arg(long, value_name = "MS", default_value_t = d::PORTS_CONNECT_WAIT_MS, value_parser = clap::value_parser!(u64).range(10..=60_000))]
        connect_wait: u64,
        /// Connects at once
        #[arg(long, default_value_t = d::PORTS_CONCURRENCY as u8, value_parser = clap::value_parser!(u8).range(1..=64))]
        concurrency: u8,
        #[command(flatten)]
        family: FamilyArgs,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// Path MTU: the largest packet that passes with Don't Fragment set
    Mtu {
        /// Host name or address
        host: String,
        /// Largest packet size tried
        #[arg(long, default_value_t = d::MTU_MAX, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(576..=65_535))]
        max: u32,
        #[command(flatten)]
        family: FamilyArgs,
        #[command(flatten)]
        common: CommonTestArgs,
    },
    /// Bandwidth: the link loaded for a set time over parallel TCP streams
    /// (slow start left out), against an iperf3 server (`iperf3 -s`); runs
    /// alone, nothing else measures meanwhile
    Bandwidth {
        /// The server: iperf3 HOST[:PORT] (port 5201 by default), or the
        /// base URL of the other kinds (http://peer.lan:8080/)
        server: String,
        /// The kind of server: iperf3, a WaddlePerf speed test (`waddleperf
        /// serve`), LibreSpeed, or responsiveness (RPM, /.well-known/nq)
        #[arg(long, value_enum, default_value_t = KindArg::Iperf3)]
        kind: KindArg,
        /// Seconds measured
        #[arg(long, short = 't', default_value_t = d::BANDWIDTH_SECONDS, value_name = "N")]
        seconds: u32,
        /// Parallel TCP streams
        #[arg(long, short = 'P', default_value_t = d::BANDWIDTH_STREAMS, value_name = "N")]
        streams: u32,
        /// Seconds of TCP slow start left out before the measured ones
        #[arg(long, short = 'O', default_value_t = d::BANDWIDTH_OMIT, value_name = "N")]
        omit: u32,
        /// Download: the server sends (iperf3 --reverse; the HTTP kinds
        /// test upload unless told otherwise too)
        #[arg(long, short = 'R', conflicts_with = "bidir")]
        reverse: bool,
        /// Both directions (iperf3: at once; the HTTP kinds and RPM:
        /// download, then upload)
        #[arg(long)]
        bidir: bool,
        /// UDP instead of TCP, paced at --bitrate: reports jitter, loss and
        /// out-of-order datagrams
        #[arg(long, short = 'u')]
        udp: bool,
        /// UDP bits per second per stream, with K, M or G (default 1M)
        #[arg(long, short = 'b', value_name = "RATE", requires = "udp")]
        bitrate: Option<String>,
        #[command(flatten)]
        common: CommonTestArgs,
    },
}

/// `--kind` of `test bandwidth`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Iperf3,
    Waddleperf,
    Librespeed,
    Rpm,
}

/// A spec error in the words of the command line: the field as its flag.
fn flag(e: SpecError) -> anyhow::Error {
    let name = match e.field {
        "url" | "target" | "host" | "name" => return anyhow::anyhow!(e.message),
        "type" => "--type",
        "server" => "--server",
        "size" => "--size",
        "reply_wait_ms" => "--wait",
        "streams" => "--streams",
        "seconds" => "--seconds",
        "omit" => "--omit",
        "bitrate" => "--bitrate",
        "udp" => "--udp",
        "port" => "--tcp/--udp",
        "ports" => "--ports",
        "concurrency" => "--concurrency",
        _ => "--timeout",
    };
    anyhow::anyhow!("{name}: {}", e.message)
}

/// `--timeout` and `--wait`, checked against the engine's range.
fn millis(what: &'static str, ms: Option<u64>, default: u64) -> Result<Duration> {
    spec::millis(what, ms.unwrap_or(default)).map_err(|e| anyhow::anyhow!("--{what} {}", e.message))
}

/// The test the arguments ask for, as a spec, and the options common to
/// every test.
pub fn spec(kind: TestKind, cfg: &Config) -> Result<(TestSpec, CommonTestArgs)> {
    let limit = |c: &CommonTestArgs| millis("timeout", c.timeout, cfg.probe.timeout_ms);
    let no_wait = |c: &CommonTestArgs, what: &str| -> Result<()> {
        if c.wait.is_some() {
            bail!("--wait applies to icmp, udp, traceroute and mtu tests, not {what}");
        }
        Ok(())
    };
    let host = |h: &str| spec::parse_host(h).map_err(anyhow::Error::msg);
    Ok(match kind {
        TestKind::Http {
            url,
            insecure,
            ca_file,
            http1,
            http2,
            http3,
            common,
        } => {
            no_wait(&common, "http")?;
            check_ca_file(ca_file.as_deref())?;
            let s = HttpSpec {
                mode: if http1 {
                    HttpMode::Http1
                } else if http2 {
                    HttpMode::Http2
                } else if http3 {
                    HttpMode::Http3
                } else {
                    HttpMode::Auto
                },
                insecure,
                ca_file,
                timeout: limit(&common)?,
                max_redirects: cfg.probe.max_redirects,
                max_body_bytes: cfg.probe.max_body_bytes,
                ..HttpSpec::parse(&url).map_err(flag)?
            };
            if s.check().is_err() {
                bail!("--http3 needs an https:// URL");
            }
            (TestSpec::Http(s), common)
        }
        TestKind::Tcp {
            target,
            tls,
            ssh,
            server_name,
            insecure,
            ca_file,
            common,
        } => {
            no_wait(&common, "tcp")?;
            let address = HostPort::parse(&target).map_err(anyhow::Error::msg)?;
            check_ca_file(ca_file.as_deref())?;
            let mode = if tls {
                TcpMode::Tls
            } else if ssh {
                TcpMode::Ssh
            } else {
                TcpMode::Raw
            };
            let s = TcpSpec {
                server_name,
                insecure,
                ca_file,
                timeout: limit(&common)?,
                ..TcpSpec::new(address, mode)
            };
            (TestSpec::Tcp(s), common)
        }
        TestKind::Dns {
            name,
            server,
            record_type,
            tcp,
            common,
        } => {
            no_wait(&common, "dns")?;
            let s = DnsSpec {
                record_type: spec::parse_record_type(&record_type).map_err(anyhow::Error::msg)?,
                server: match server {
                    Some(s) => Some(
                        DnsServer::parse(&s).map_err(|e| anyhow::anyhow!("--server {s}: {e}"))?,
                    ),
                    None => None,
                },
                tcp,
                timeout: limit(&common)?,
                ..DnsSpec::new(name.trim())
            };
            s.check().map_err(flag)?;
            (TestSpec::Dns(s), common)
        }
        TestKind::Udp {
            target,
            sampling,
            size,
            common,
        } => {
            let address = HostPort::parse(&target).map_err(anyhow::Error::msg)?;
            if !d::UDP_SIZES.contains(&size) {
                bail!(
                    "--size {size}: must be from {} to {} bytes",
                    d::UDP_SIZES.start(),
                    d::UDP_SIZES.end()
                );
            }
            let s = UdpSpec {
                count: sampling.count,
                interval: Duration::from_millis(sampling.interval),
                size,
                reply_wait: millis("wait", common.wait, d::UDP_REPLY_WAIT_MS)?,
                family: sampling.family.family(),
                timeout: limit(&common)?,
                ..UdpSpec::new(address)
            };
            (TestSpec::Udp(s), common)
        }
        TestKind::Icmp {
            host: h,
            sampling,
            size,
            common,
        } => {
            let h = host(&h)?;
            if !d::ICMP_SIZES.contains(&size) {
                bail!(
                    "--size {size}: must be at most {} bytes",
                    d::ICMP_SIZES.end()
                );
            }
            let s = IcmpSpec {
                count: sampling.count,
                interval: Duration::from_millis(sampling.interval),
                size,
                reply_wait: millis("wait", common.wait, d::ICMP_REPLY_WAIT_MS)?,
                family: sampling.family.family(),
                method: sampling.family.method,
                timeout: limit(&common)?,
                ..IcmpSpec::new(h)
            };
            (TestSpec::Icmp(s), common)
        }
        TestKind::Traceroute {
            host: h,
            max_hops,
            rounds,
            interval,
            no_names,
            tcp,
            udp,
            family,
            common,
        } => {
            let (protocol, port) = match (tcp, udp) {
                (Some(p), _) => (TraceProtocol::Tcp, Some(p)),
                (None, Some(p)) => (TraceProtocol::Udp, Some(p)),
                (None, None) => (TraceProtocol::Icmp, None),
            };
            let port = waddleperf_engine::config::trace_port(protocol, port).map_err(flag)?;
            if protocol != TraceProtocol::Icmp && family.method.is_some() {
                bail!("--method chooses how ICMP echoes are sent; it does not apply with --tcp or --udp");
            }
            let s = TraceSpec {
                protocol,
                port,
                max_hops,
                rounds,
                interval: Duration::from_millis(interval),
                reply_wait: millis("wait", common.wait, d::TRACE_REPLY_WAIT_MS)?,
                names: !no_names,
                family: family.family(),
                method: family.method,
                timeout: limit(&common)?,
                ..TraceSpec::new(host(&h)?)
            };
            (TestSpec::Trace(s), common)
        }
        TestKind::Ports {
            host: h,
            ports,
            connect_wait,
            concurrency,
            family,
            common,
        } => {
            no_wait(&common, "ports")?;
            if family.method.is_some() {
                bail!("--method applies to ICMP tests, not to a port check");
            }
            let list =
                PortsSpec::parse_ports(&ports).map_err(|m| anyhow::anyhow!("--ports: {m}"))?;
            let s = PortsSpec {
                connect_wait: Duration::from_millis(connect_wait),
                concurrency: usize::from(concurrency),
                family: family.family(),
                timeout: limit(&common)?,
                ..PortsSpec::new(host(&h)?, list)
            };
            s.check().map_err(flag)?;
            (TestSpec::Ports(s), common)
        }
        TestKind::Mtu {
            host: h,
            max,
            family,
            common,
        } => {
            let s = MtuSpec {
                max,
                reply_wait: millis("wait", common.wait, d::MTU_REPLY_WAIT_MS)?,
                family: family.family(),
                method: family.method,
                timeout: limit(&common)?,
                ..MtuSpec::new(host(&h)?)
            };
            (TestSpec::Mtu(s), common)
        }
        TestKind::Bandwidth {
            server,
            kind,
            seconds,
            streams,
            omit,
            reverse,
            bidir,
            udp,
            bitrate,
            common,
        } => {
            no_wait(&common, "bandwidth")?;
            let udp_bitrate = match (udp, bitrate) {
                (false, _) => None,
                (true, None) => Some(d::UDP_BITRATE),
                (true, Some(b)) => Some(
                    BandwidthSpec::parse_bitrate(&b)
                        .map_err(|m| anyhow::anyhow!("--bitrate: {m}"))?,
                ),
            };
            let kind = match kind {
                KindArg::Iperf3 => BandwidthKind::Iperf3,
                KindArg::Waddleperf => BandwidthKind::Waddleperf,
                KindArg::Librespeed => BandwidthKind::Librespeed,
                KindArg::Rpm => BandwidthKind::Rpm,
            };
            let base = BandwidthSpec::for_server(kind, &server).map_err(anyhow::Error::msg)?;
            let s = BandwidthSpec {
                direction: if bidir {
                    Direction::Bidir
                } else if reverse {
                    Direction::Download
                } else {
                    Direction::Upload
                },
                streams,
                seconds,
                omit,
                udp_bitrate,
                timeout: limit(&common)?,
                ..base
            };
            s.check().map_err(flag)?;
            (TestSpec::Bandwidth(s), common)
        }
    })
}

/// One rule for `--ca-file` in every test: a file that cannot be read or
/// holds no certificate is a mistake in the command, said before measuring
/// (exit 1), not a failed measurement.
fn check_ca_file(path: Option<&Path>) -> Result<()> {
    if let Some(p) = path {
        waddleperf_engine::probe::tls::client_config(false, Some(p), &[])
            .map_err(|e| anyhow::anyhow!("--ca-file: {}", e.message))?;
    }
    Ok(())
}
