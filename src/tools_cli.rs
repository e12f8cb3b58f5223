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

/// `waddleperf network [show|list|label]`.
pub fn network(
    paths: &waddleperf_engine::config::Paths,
    action: Option<crate::args::NetworkAction>,
    json: bool,
) -> Result<()> {
    use crate::args::NetworkAction;
    use waddleperf_engine::netctx;
    let mut store = crate::open::open_store(paths)?;
    let mut out = std::io::stdout().lock();
    match action.unwrap_or(NetworkAction::Show) {
        NetworkAction::Show => {
            let c = crate::open::tokio_rt()?.block_on(netctx::capture_full())?;
            store.upsert_network(&c, chrono::Utc::now())?;
            let label = store.network(&c.network_id)?.and_then(|n| n.label);
            if json {
                let mut v = serde_json::to_value(&c)?;
                v["label"] = serde_json::json!(label);
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
            } else {
                print_context(&mut crate::text::Escaping(&mut out), &c, label.as_deref())?;
            }
        }
        NetworkAction::List => {
            let all = store.networks()?;
            if json {
                serde_json::to_writer_pretty(&mut out, &all)?;
                writeln!(out)?;
            } else {
                let mut out = crate::text::Escaping(&mut out);
                if all.is_empty() {
                    writeln!(
                        out,
                        "no network recorded yet (`waddleperf network` reads the one now)"
                    )?;
                }
                for n in &all {
                    writeln!(
                        out,
                        "{}  {:<24}  {:<8}  last seen {}  {} results",
                        n.id,
                        n.label.as_deref().unwrap_or("-"),
                        n.context.link_type,
                        n.last_seen.format("%Y-%m-%d %H:%M UTC"),
                        n.results
                    )?;
                    writeln!(out, "                  {}", n.context.describe())?;
                }
            }
        }
        NetworkAction::Label { network, name } => {
            let id = store
                .resolve_network(&network)
                .map_err(|e| anyhow::Error::new(e).context(format!("network `{network}`")))?;
            if store.network(&id)?.is_none() {
                // `current` on a network not recorded yet: record it first.
                let c = netctx::capture()?;
                store.upsert_network(&c, chrono::Utc::now())?;
            }
            let label = store.set_network_label(&id, &name)?;
            if json {
                serde_json::to_writer(&mut out, &serde_json::json!({"id": id, "label": label}))?;
                writeln!(out)?;
            } else {
                let mut out = crate::text::Escaping(&mut out);
                match label {
                    Some(l) => writeln!(out, "network {id} is now called {l:?}")?,
                    None => writeln!(out, "network {id} has no name now")?,
                }
            }
        }
    }
    Ok(())
}

fn print_context(
    out: &mut dyn Write,
    c: &waddleperf_engine::netctx::NetworkContext,
    label: Option<&str>,
) -> std::io::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "network       {}{}",
        c.network_id,
        label.map(|l| format!(" ({l})")).unwrap_or_default()
    )?;
    writeln!(out, "interface     {} ({})", c.iface, c.link_type)?;
    writeln!(out, "local ip      {}", opt(&c.local_ip))?;
    writeln!(
        out,
        "gateway       {}{}",
        opt(&c.gateway_ip),
        c.gateway_mac
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "dns servers   {}",
        if c.dns_servers.is_empty() {
            "-".into()
        } else {
            c.dns_servers.join(", ")
        }
    )?;
    writeln!(out, "vpn           {}", if c.vpn { "yes" } else { "no" })?;
    writeln!(
        out,
        "metered       {}",
        match c.metered {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown (the OS does not say)",
        }
    )?;
    if c.ssid.is_some() || c.bssid.is_some() {
        writeln!(out, "ssid          {}", opt(&c.ssid))?;
        writeln!(out, "bssid         {}", opt(&c.bssid))?;
        if let Some(r) = c.wifi_rssi_dbm {
            writeln!(out, "signal        {r} dBm")?;
        }
        if let Some(ch) = c.wifi_channel {
            writeln!(out, "channel       {ch}")?;
        }
        if let Some(r) = c.wifi_tx_rate_mbps {
            writeln!(out, "tx rate       {r:.1} Mbit/s")?;
        }
    }
    Ok(())
}
