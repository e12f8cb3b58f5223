//! The CLI's machine check: `doctor`.

use anyhow::Result;
use std::io::Write;
use waddleperf_engine::probe::dns;
use waddleperf_engine::probe::icmp::{self, Method};

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
