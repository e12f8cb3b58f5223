//! The CLI's probe-facing commands beyond HTTP and TCP: `test dns|udp|icmp|
//! traceroute|mtu` builders, `serve --udp-echo`, and `doctor`.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use waddleperf_engine::config::{check_dns_server, check_host, split_host_port};
use waddleperf_engine::probe::dns::{self, DnsProbe};
use waddleperf_engine::probe::icmp::{self, Method};
use waddleperf_engine::probe::mtu::MtuProbe;
use waddleperf_engine::probe::ping::IcmpProbe;
use waddleperf_engine::probe::trace::TraceProbe;
use waddleperf_engine::probe::udp::{self, UdpProbe};
use waddleperf_engine::probe::Family;
use waddleperf_engine::runtime::AnyProbe;

/// `-4` / `-6`.
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
    pub method: Option<waddleperf_engine::probe::icmp::Method>,
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
    #[arg(long, short = 'c', default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Milliseconds between probes
    #[arg(long, short = 'i', default_value_t = 200, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval: u64,
    #[command(flatten)]
    pub family: FamilyArgs,
}

fn reply_wait(timeout: Option<u64>, default_ms: u64) -> Result<Duration> {
    match timeout {
        Some(ms) if !(100..=600_000).contains(&ms) => {
            bail!("--timeout {ms}: must be from 100 to 600000 ms")
        }
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Ok(Duration::from_millis(default_ms)),
    }
}

pub fn dns_probe(
    name: String,
    server: Option<String>,
    record_type: String,
    tcp: bool,
    timeout: Duration,
) -> Result<AnyProbe> {
    let rtype = dns::parse_record_type(&record_type).map_err(anyhow::Error::msg)?;
    dns::query_name(&name, rtype).map_err(anyhow::Error::msg)?;
    if let Some(s) = &server {
        check_dns_server(s).map_err(|e| anyhow::anyhow!("--server {s}: {e}"))?;
    }
    let mut p = DnsProbe::new(name);
    p.server = server;
    p.record_type = rtype.to_string();
    p.tcp = tcp;
    p.timeout = timeout;
    Ok(AnyProbe::Dns(p))
}

pub fn udp_probe(
    target: String,
    s: SampleArgs,
    size: usize,
    timeout: Option<u64>,
) -> Result<AnyProbe> {
    split_host_port(&target).map_err(anyhow::Error::msg)?;
    if !(udp::HEADER..=65_000).contains(&size) {
        bail!("--size {size}: must be from {} to 65000 bytes", udp::HEADER);
    }
    let mut p = UdpProbe::new(target);
    p.count = s.count;
    p.interval = Duration::from_millis(s.interval);
    p.size = size;
    p.reply_timeout = reply_wait(
        timeout,
        waddleperf_engine::probe::ping::DEFAULT_REPLY_TIMEOUT_MS,
    )?;
    p.family = s.family.family();
    Ok(AnyProbe::Udp(p))
}

pub fn icmp_probe(
    host: String,
    s: SampleArgs,
    size: usize,
    timeout: Option<u64>,
) -> Result<AnyProbe> {
    check_host(&host).map_err(anyhow::Error::msg)?;
    if size > 65_000 {
        bail!("--size {size}: must be at most 65000 bytes");
    }
    let mut p = IcmpProbe::new(host);
    p.count = s.count;
    p.interval = Duration::from_millis(s.interval);
    p.size = size;
    p.reply_timeout = reply_wait(
        timeout,
        waddleperf_engine::probe::ping::DEFAULT_REPLY_TIMEOUT_MS,
    )?;
    p.family = s.family.family();
    p.method = s.family.method;
    Ok(AnyProbe::Icmp(p))
}

#[allow(clippy::too_many_arguments)]
pub fn trace_probe(
    host: String,
    max_hops: u8,
    rounds: u32,
    interval: u64,
    no_names: bool,
    family: FamilyArgs,
    timeout: Option<u64>,
) -> Result<AnyProbe> {
    check_host(&host).map_err(anyhow::Error::msg)?;
    let mut p = TraceProbe::new(host);
    p.max_hops = max_hops;
    p.rounds = rounds;
    p.interval = Duration::from_millis(interval);
    p.names = !no_names;
    p.probe_timeout = reply_wait(
        timeout,
        waddleperf_engine::probe::trace::DEFAULT_PROBE_TIMEOUT_MS,
    )?;
    p.family = family.family();
    p.method = family.method;
    Ok(AnyProbe::Trace(p))
}

pub fn mtu_probe(
    host: String,
    max: u32,
    family: FamilyArgs,
    timeout: Option<u64>,
) -> Result<AnyProbe> {
    check_host(&host).map_err(anyhow::Error::msg)?;
    let mut p = MtuProbe::new(host);
    p.max = max;
    p.probe_timeout = reply_wait(
        timeout,
        waddleperf_engine::probe::mtu::DEFAULT_PROBE_TIMEOUT_MS,
    )?;
    p.family = family.family();
    p.method = family.method;
    Ok(AnyProbe::Mtu(p))
}

/// `waddleperf serve --udp-echo PORT`: the UDP echo responder until SIGINT
/// or SIGTERM.
pub fn serve(udp_echo: Option<u16>, bind: IpAddr) -> Result<()> {
    let Some(port) = udp_echo else {
        bail!("nothing to serve: give --udp-echo PORT");
    };
    let addr = SocketAddr::new(bind, port);
    let sock =
        std::net::UdpSocket::bind(addr).with_context(|| format!("cannot listen on UDP {addr}"))?;
    let local = sock.local_addr()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("udp-echo".into())
        .spawn(move || {
            let _ = done_tx.send(udp::serve_echo(&sock));
        })?;
    println!("UDP echo listening on {local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, "UDP echo responder started");
    crate::tokio_rt()?.block_on(async {
        tokio::select! {
            r = done_rx => {
                let r = r.map_err(|_| anyhow::anyhow!("the UDP echo thread ended"))?;
                r.with_context(|| format!("UDP echo on {local}"))?;
            }
            s = stop_signal() => {
                let s = s?;
                tracing::info!("{s}: UDP echo responder stopped");
            }
        }
        Ok(())
    })
}

async fn stop_signal() -> Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok("SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}

/// What `doctor` found: one line per check.
#[derive(serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// `waddleperf doctor`: which ICMP methods work here (ping, traceroute and
/// path MTU depend on them), how to enable the unprivileged one, and the
/// system's DNS server.
pub fn doctor(json: bool) -> Result<bool> {
    let mut checks = Vec::new();
    for (ipv6, fam) in [(false, "IPv4"), (true, "IPv6")] {
        let found = icmp::available(ipv6);
        for (method, r) in &found {
            checks.push(Check {
                name: format!("ICMP ({fam}) {method}"),
                ok: r.is_ok(),
                detail: match r {
                    Ok(()) => "works".into(),
                    Err(e) => e.clone(),
                },
            });
        }
        let chosen = found.iter().find(|(_, r)| r.is_ok()).map(|(m, _)| *m);
        checks.push(Check {
            name: format!("ping, traceroute and path MTU ({fam})"),
            ok: chosen.is_some(),
            detail: match chosen {
                Some(Method::Datagram) => {
                    "use the unprivileged datagram socket (no root needed)".into()
                }
                Some(m) => format!("use the {m}"),
                None => format!("unavailable: {}", icmp_hint()),
            },
        });
    }
    #[cfg(target_os = "linux")]
    {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|w| w.parse::<u64>().ok())
            .collect::<Vec<_>>();
        let gid = nix::unistd::getegid().as_raw() as u64;
        let (ok, detail) = match range.as_slice() {
            [lo, hi] if lo <= hi && (*lo..=*hi).contains(&gid) => (
                true,
                format!("{lo} {hi}: includes this user's group {gid}, so ping needs no privilege"),
            ),
            [lo, hi] => (
                false,
                format!(
                    "{lo} {hi}: excludes this user's group {gid}; to allow unprivileged ping run \
                     `sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` and persist it with \
                     `echo 'net.ipv4.ping_group_range = 0 2147483647' | sudo tee /etc/sysctl.d/60-waddleperf-ping.conf`"
                ),
            ),
            _ => (false, "cannot read /proc/sys/net/ipv4/ping_group_range".into()),
        };
        checks.push(Check {
            name: "net.ipv4.ping_group_range".into(),
            ok,
            detail,
        });
    }
    let ns = dns::system_nameserver();
    checks.push(Check {
        name: "system DNS server".into(),
        ok: ns.is_some(),
        detail: match ns {
            Some(a) => format!("{a} (DNS tests without --server ask it)"),
            None => "none found in /etc/resolv.conf: DNS tests need --server / `server`".into(),
        },
    });
    let usable = checks
        .iter()
        .filter(|c| c.name.starts_with("ping, traceroute"))
        .any(|c| c.ok);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &checks)?;
        writeln!(out)?;
    } else {
        for c in &checks {
            writeln!(
                out,
                "{:<4} {:<48} {}",
                if c.ok { "ok" } else { "--" },
                c.name,
                c.detail
            )?;
        }
    }
    Ok(usable)
}

fn icmp_hint() -> String {
    #[cfg(target_os = "linux")]
    {
        "allow unprivileged ICMP with `sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`, \
         or `sudo setcap cap_net_raw+ep \"$(command -v waddleperf)\"`, or run as root"
            .into()
    }
    #[cfg(not(target_os = "linux"))]
    {
        "run as root (raw ICMP socket)".into()
    }
}
