//! System diagnostics: one report a person can copy into a support ticket
//! (`waddleperf diagnose`, the window's Diagnostics page, and a snapshot in
//! the event log when AutoPerf escalates to tier 3). Each section is read on
//! its own; one that cannot be read on this OS or this time says why
//! instead, and the others are still there.

use crate::netctx::{self, Interface, NetworkContext, Route};
use crate::probe::icmp;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A section: its contents, or why it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part<T> {
    Ok(T),
    Unavailable(String),
}

impl<T> Part<T> {
    fn from<E: std::fmt::Display>(r: Result<T, E>) -> Part<T> {
        match r {
            Ok(v) => Part::Ok(v),
            Err(e) => Part::Unavailable(e.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct System {
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    pub hostname: String,
    pub cpus: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes (not on Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<[f64; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_available_mb: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dns {
    pub servers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
}

/// A proxy setting from the environment (credentials removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    pub variable: String,
    pub value: String,
}

/// This machine's clock against a server's `Date` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    pub server: String,
    /// The server's clock minus this machine's, in seconds (positive: this
    /// machine is behind).
    pub offset_s: f64,
    /// How far off the offset may be: half a second (the header's whole
    /// seconds) plus half the request's round trip.
    pub uncertainty_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcmpCheck {
    pub family: String,
    pub method: String,
    pub ok: bool,
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(with = "crate::model::rfc3339_utc")]
    pub generated_at: DateTime<Utc>,
    pub version: String,
    pub system: Part<System>,
    pub network: Part<Option<NetworkContext>>,
    pub interfaces: Part<Vec<Interface>>,
    pub routes: Part<Vec<Route>>,
    pub dns: Part<Dns>,
    pub proxy: Part<Vec<Proxy>>,
    pub clock: Part<Clock>,
    pub icmp: Part<Vec<IcmpCheck>>,
}

/// Every section (blocking reads on tokio's blocking pool; the clock check
/// is one bounded HTTP request to `clock_server`, when given).
pub async fn collect(clock_server: Option<&str>) -> Report {
    let local = tokio::task::spawn_blocking(|| {
        (
            Part::from(system()),
            Part::from(match netctx::capture() {
                Ok(c) => Ok(Some(c)),
                Err(netctx::NetCtxError::NoDefaultRoute) => Ok(None),
                Err(e) => Err(e),
            }),
            Part::from(netctx::interfaces()),
            Part::from(netctx::routes()),
            Part::Ok(icmp_checks()),
        )
    })
    .await;
    let (system, network, interfaces, routes, icmp) = match local {
        Ok(x) => x,
        Err(e) => {
            let why = format!("the reading task failed: {e}");
            (
                Part::Unavailable(why.clone()),
                Part::Unavailable(why.clone()),
                Part::Unavailable(why.clone()),
                Part::Unavailable(why.clone()),
                Part::Unavailable(why),
            )
        }
    };
    let dns = Part::Ok(dns(match &network {
        Part::Ok(Some(c)) => c.dns_servers.clone(),
        _ => Vec::new(),
    }));
    let clock = match clock_server {
        Some(url) => Part::from(clock(url).await),
        None => Part::Unavailable(
            "no server to compare with: give --server URL, or configure [sync] server or an \
             HTTP target"
                .into(),
        ),
    };
    Report {
        generated_at: Utc::now(),
        version: crate::version::long_version(),
        system,
        network,
        interfaces,
        routes,
        dns,
        proxy: Part::Ok(proxies()),
        clock,
        icmp,
    }
}

/// The server a configuration offers for the clock check: the sync server,
/// else the first HTTP target.
pub fn clock_server(cfg: &crate::config::Config) -> Option<String> {
    cfg.sync.server.clone().or_else(|| {
        cfg.suite
            .http
            .first()
            .map(|t| t.get_ref().url.trim().to_owned())
    })
}

fn read_small(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(256 * 1024)
        .read_to_string(&mut s)?;
    Ok(s)
}

fn system() -> Result<System, String> {
    let mut s = System {
        os: os_info::get().to_string(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..System::default()
    };
    #[cfg(target_os = "linux")]
    {
        s.kernel = read_small("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_owned());
        s.uptime_s = read_small("/proc/uptime").ok().and_then(|u| {
            u.split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
                .map(|v| v as u64)
        });
        s.load = read_small("/proc/loadavg")
            .ok()
            .and_then(|l| parse_load(&l));
        if let Ok(m) = read_small("/proc/meminfo") {
            let kb = |key: &str| {
                m.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            };
            s.memory_total_mb = kb("MemTotal:").map(|v| v / 1024);
            s.memory_available_mb = kb("MemAvailable:").map(|v| v / 1024);
        }
    }
    #[cfg(windows)]
    windows_system(&mut s);
    #[cfg(target_os = "macos")]
    {
        let sysctl = |key: &str| {
            std::process::Command::new("/usr/sbin/sysctl")
                .args(["-n", key])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        s.kernel = sysctl("kern.osrelease");
        s.load = sysctl("vm.loadavg").and_then(|l| parse_load(l.trim_matches(['{', '}', ' '])));
        s.memory_total_mb = sysctl("hw.memsize")
            .and_then(|m| m.parse::<u64>().ok())
            .map(|b| b / (1024 * 1024));
        // "{ sec = 1701700000, usec = 0 } Mon Dec  4 …"
        s.uptime_s = sysctl("kern.boottime").and_then(|b| {
            let sec = b
                .split("sec = ")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .parse::<i64>()
                .ok()?;
            u64::try_from(Utc::now().timestamp() - sec).ok()
        });
    }
    Ok(s)
}

#[cfg(windows)]
#[allow(unsafe_code)]
fn windows_system(s: &mut System) {
    use windows_sys::Win32::System::SystemInformation::{
        GetTickCount64, GlobalMemoryStatusEx, MEMORYSTATUSEX,
    };
    // SAFETY: no arguments.
    s.uptime_s = Some(unsafe { GetTickCount64() } / 1000);
    // SAFETY: a zeroed struct with its length set, as the API requires.
    let mut m: MEMORYSTATUSEX = unsafe { std::mem::zeroed() };
    m.dwLength = std::mem::size_of::<MEMORYSTATUSEX>() as u32;
    if unsafe { GlobalMemoryStatusEx(&mut m) } != 0 {
        s.memory_total_mb = Some(m.ullTotalPhys / (1024 * 1024));
        s.memory_available_mb = Some(m.ullAvailPhys / (1024 * 1024));
    }
}

/// The first three numbers of a load-average line.
#[cfg_attr(windows, allow(dead_code))]
fn parse_load(l: &str) -> Option<[f64; 3]> {
    let mut it = l.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// DNS servers (the network context's), and the search domains of
/// resolv.conf where there is one.
fn dns(servers: Vec<String>) -> Dns {
    let text = read_small("/etc/resolv.conf").unwrap_or_default();
    let servers = if servers.is_empty() {
        netctx::resolv_parse(&text)
    } else {
        servers
    };
    let search = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("search" | "domain"))
                .then(|| w.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .take(16)
        .collect();
    Dns { servers, search }
}

/// Proxy variables of the environment, with any user name and password
/// replaced by `***`.
fn proxies() -> Vec<Proxy> {
    let mut out = Vec::new();
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        if let Ok(v) = std::env::var(var) {
            out.push(Proxy {
                variable: var.to_owned(),
                value: redact(&v),
            });
        }
    }
    out
}

/// `http://user:secret@proxy:3128` → `http://***@proxy:3128`.
pub fn redact(v: &str) -> String {
    let v: String = v.chars().take(512).collect();
    let (scheme, rest) = match v.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r.to_owned()),
        None => (String::new(), v.clone()),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}"),
        None => v,
    }
}

fn icmp_checks() -> Vec<IcmpCheck> {
    let mut out = Vec::new();
    for (ipv6, family) in [(false, "IPv4"), (true, "IPv6")] {
        for (method, r) in icmp::available(ipv6) {
            out.push(IcmpCheck {
                family: family.into(),
                method: method.to_string(),
                ok: r.is_ok(),
                detail: match r {
                    Ok(()) => "works".into(),
                    Err(e) => e,
                },
            });
        }
    }
    out
}

/// The clock offset against `url`'s `Date` header (one HEAD request, 5 s at
/// most, the body never read).
async fn clock(url: &str) -> Result<Clock, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url}: expected an http:// or https:// URL"));
    }
    let tls = crate::probe::tls::client_config(false, None, &[b"h2", b"http/1.1"])
        .map_err(|e| e.message)?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let sent = Utc::now();
    let resp = client
        .head(parsed)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let rtt = t0.elapsed();
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .ok_or_else(|| format!("{url} sent no Date header"))?
        .to_str()
        .map_err(|_| format!("{url} sent an unreadable Date header"))?;
    let server = DateTime::parse_from_rfc2822(date)
        .map_err(|e| format!("{url} sent a Date header that is not an HTTP date ({e})"))?
        .with_timezone(&Utc);
    let mid = sent + chrono::Duration::from_std(rtt / 2).unwrap_or_default();
    // The header has whole seconds: the server's clock read somewhere in [date, date + 1 s).
    let offset = (server - mid).num_milliseconds() as f64 / 1000.0 + 0.5;
    Ok(Clock {
        server: url.to_owned(),
        offset_s: (offset * 1000.0).round() / 1000.0,
        uncertainty_s: ((0.5 + rtt.as_secs_f64() / 2.0) * 1000.0).round() / 1000.0,
    })
}

impl Report {
    /// The report as text, for a terminal or a support ticket.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "WaddlePerf diagnostics, {}",
            self.generated_at.to_rfc3339()
        );
        let _ = writeln!(o, "version {}", self.version);
        section(&mut o, "System", &self.system, |o, s| {
            let _ = writeln!(o, "  os          {}", s.os);
            if let Some(k) = &s.kernel {
                let _ = writeln!(o, "  kernel      {k}");
            }
            let _ = writeln!(o, "  hostname    {}", s.hostname);
            let _ = writeln!(o, "  cpus        {}", s.cpus);
            if let Some(u) = s.uptime_s {
                let _ = writeln!(
                    o,
                    "  uptime      {}d {}h {}m",
                    u / 86_400,
                    u % 86_400 / 3600,
                    u % 3600 / 60
                );
            }
            if let Some([a, b, c]) = s.load {
                let _ = writeln!(o, "  load        {a:.2} {b:.2} {c:.2}");
            }
            if let (Some(t), a) = (s.memory_total_mb, s.memory_available_mb) {
                let avail = a.map(|a| format!(", {a} MB available")).unwrap_or_default();
                let _ = writeln!(o, "  memory      {t} MB{avail}");
            }
        });
        section(&mut o, "Network", &self.network, |o, n| match n {
            None => {
                let _ = writeln!(o, "  no default route: not connected");
            }
            Some(c) => {
                let _ = writeln!(o, "  network id  {}", c.network_id);
                let _ = writeln!(o, "  default     {} ({})", c.iface, c.link_type);
                let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                let _ = writeln!(o, "  local ip    {}", opt(&c.local_ip));
                let _ = writeln!(
                    o,
                    "  gateway     {} {}",
                    opt(&c.gateway_ip),
                    opt(&c.gateway_mac)
                );
                let _ = writeln!(o, "  vpn         {}", if c.vpn { "yes" } else { "no" });
                if c.ssid.is_some() || c.bssid.is_some() {
                    let _ = writeln!(
                        o,
                        "  wifi        {} {} {} dBm, channel {}, {} Mbit/s",
                        opt(&c.ssid),
                        opt(&c.bssid),
                        c.wifi_rssi_dbm.map_or("-".into(), |v| v.to_string()),
                        c.wifi_channel.map_or("-".into(), |v| v.to_string()),
                        c.wifi_tx_rate_mbps
                            .map_or("-".into(), |v| format!("{v:.1}")),
                    );
                }
            }
        });
        section(&mut o, "Interfaces", &self.interfaces, |o, all| {
            for i in all {
                let _ = writeln!(
                    o,
                    "  {} {} {} mtu {} speed {} mac {}",
                    i.name,
                    if i.up { "up" } else { "down" },
                    i.link_type,
                    i.mtu.map_or("-".into(), |m| m.to_string()),
                    i.speed_mbps.map_or("-".into(), |m| format!("{m} Mbit/s")),
                    i.mac.as_deref().unwrap_or("-"),
                );
                if !i.addresses.is_empty() {
                    let _ = writeln!(o, "      {}", i.addresses.join(" "));
                }
                if let Some(c) = i.counters {
                    let _ = writeln!(
                        o,
                        "      rx {} B, {} errors, {} dropped; tx {} B, {} errors, {} dropped",
                        c.rx_bytes,
                        c.rx_errors,
                        c.rx_dropped,
                        c.tx_bytes,
                        c.tx_errors,
                        c.tx_dropped
                    );
                }
            }
        });
        section(&mut o, "Routes", &self.routes, |o, all| {
            for r in all {
                let via = r
                    .gateway
                    .as_ref()
                    .map(|g| format!(" via {g}"))
                    .unwrap_or_default();
                let metric = r.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
                let _ = writeln!(o, "  {}{via} dev {}{metric}", r.destination, r.iface);
            }
        });
        section(&mut o, "DNS", &self.dns, |o, d| {
            let _ = writeln!(
                o,
                "  servers     {}",
                if d.servers.is_empty() {
                    "-".into()
                } else {
                    d.servers.join(", ")
                }
            );
            if !d.search.is_empty() {
                let _ = writeln!(o, "  search      {}", d.search.join(" "));
            }
        });
        section(&mut o, "Proxy", &self.proxy, |o, p| {
            if p.is_empty() {
                let _ = writeln!(o, "  none in the environment");
            }
            for v in p {
                let _ = writeln!(o, "  {}={}", v.variable, v.value);
            }
        });
        section(&mut o, "Clock", &self.clock, |o, c| {
            let _ = writeln!(
                o,
                "  {:+.3} s against {} (± {:.3} s){}",
                c.offset_s,
                c.server,
                c.uncertainty_s,
                if c.offset_s.abs() > 2.0 + c.uncertainty_s {
                    " — this clock is off"
                } else {
                    ""
                }
            );
        });
        section(&mut o, "ICMP", &self.icmp, |o, all| {
            for c in all {
                let _ = writeln!(
                    o,
                    "  {} {}: {}",
                    c.family,
                    c.method,
                    if c.ok {
                        "works".to_owned()
                    } else {
                        c.detail.clone()
                    }
                );
            }
        });
        o
    }
}

fn section<T>(o: &mut String, title: &str, p: &Part<T>, f: impl FnOnce(&mut String, &T)) {
    let _ = writeln!(o, "\n{title}");
    match p {
        Part::Ok(v) => f(o, v),
        Part::Unavailable(why) => {
            let _ = writeln!(o, "  unavailable: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_in_a_proxy_setting() {
        assert_eq!(
            redact("http://alice:s3cret@proxy.lan:3128"),
            "http://***@proxy.lan:3128"
        );
        assert_eq!(redact("proxy.lan:3128"), "proxy.lan:3128");
        assert_eq!(redact("bob:pw@proxy"), "***@proxy");
        assert_eq!(redact(".example.com,localhost"), ".example.com,localhost");
    }

    #[test]
    fn load_averages_parse_and_garbage_does_not() {
        assert_eq!(
            parse_load("0.52 0.58 0.59 1/389 12345"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_load("1.2 x"), None);
        assert_eq!(parse_load(""), None);
    }

    #[test]
    fn a_missing_section_says_why_and_the_rest_remain() {
        let r = Report {
            generated_at: Utc::now(),
            version: "v".into(),
            system: Part::Ok(System {
                os: "TestOS".into(),
                hostname: "h".into(),
                cpus: 2,
                ..System::default()
            }),
            network: Part::Ok(None),
            interfaces: Part::Unavailable("not read on this OS".into()),
            routes: Part::Ok(vec![]),
            dns: Part::Ok(Dns::default()),
            proxy: Part::Ok(vec![]),
            clock: Part::Unavailable("no server".into()),
            icmp: Part::Ok(vec![]),
        };
        let t = r.to_text();
        for s in [
            "System",
            "Network",
            "Interfaces",
            "Routes",
            "DNS",
            "Proxy",
            "Clock",
            "ICMP",
        ] {
            assert!(t.contains(&format!("\n{s}\n")), "{s} missing: {t}");
        }
        assert!(
            t.contains("Interfaces\n  unavailable: not read on this OS"),
            "{t}"
        );
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["interfaces"]["unavailable"], "not read on this OS");
        assert_eq!(json["system"]["ok"]["os"], "TestOS");
    }
}
