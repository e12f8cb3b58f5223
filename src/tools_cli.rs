//! The CLI's peer and machine commands: `serve --udp-echo` and `doctor`.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use waddleperf_engine::probe::dns;
use waddleperf_engine::probe::icmp::{self, Method};
use waddleperf_engine::probe::udp;

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
    crate::open::tokio_rt()?.block_on(async {
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
