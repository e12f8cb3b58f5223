//! The planner: a configuration's tiers as probes ready to run, each with
//! the thresholds that apply to its target. Tier 1 is the suite; tiers 2 and
//! 3 are configured (`[tier2]`, `[tier3]`) or derived from tier 1's specs
//! here, without parsing anything again.

use crate::config::{Config, Suite, Thresholds};
use crate::kinds::{Direction, HttpMode, TcpMode};
use crate::probe::{self, AnyProbe};
use crate::spec::{BandwidthSpec, HostPort, HttpSpec, IcmpSpec, TcpSpec, TestSpec, TraceSpec};
use std::time::Duration;

/// A probe of a tier with the thresholds that apply to its target.
#[derive(Debug, Clone)]
pub struct Planned {
    pub probe: AnyProbe,
    pub thresholds: Thresholds,
}

/// A spec and its thresholds, before it becomes a probe of a tier.
#[derive(Debug, Clone)]
struct Item {
    spec: TestSpec,
    thresholds: Thresholds,
}

/// The probes of tiers 1, 2 and 3.
#[derive(Debug, Clone, Default)]
pub struct Plans {
    tiers: [Vec<Planned>; 3],
    speed: Vec<Planned>,
}

impl Plans {
    /// The plans of a configuration that has been validated (loading and
    /// `Runtime::set_config` validate): an entry that still does not parse is
    /// left out and logged.
    pub fn new(cfg: &Config) -> Plans {
        // Bandwidth tests saturate the link: never in the hourly tier 1 run,
        // as configured in tier 2, for 60 s both ways in tier 3.
        let (bandwidth, tier1): (Vec<Item>, Vec<Item>) = items(&cfg.suite, cfg)
            .into_iter()
            .partition(|i| matches!(i.spec, TestSpec::Bandwidth(_)));
        let tier2 = match &cfg.tier2 {
            Some(s) => items(s, cfg),
            None => [derived_tier2(&tier1), bandwidth.clone()].concat(),
        };
        let tier3 = match &cfg.tier3 {
            Some(s) => items(s, cfg),
            None => [derived_tier3(&tier1, &tier2), tier3_bandwidth(&bandwidth)].concat(),
        };
        let build = |items: Vec<Item>, tier: u8| {
            items
                .into_iter()
                .map(|i| Planned {
                    probe: probe::build(i.spec, tier),
                    thresholds: i.thresholds,
                })
                .collect()
        };
        let speed = speed_items(&bandwidth, &tier2);
        Plans {
            tiers: [build(tier1, 1), build(tier2, 2), build(tier3, 3)],
            speed: build(speed, 1),
        }
    }

    /// A speed test's probes: each bandwidth server (of the suite, else of
    /// tier 2), download then upload over TCP, as configured otherwise.
    pub fn speed(&self) -> &[Planned] {
        &self.speed
    }

    /// The probes of `tier` (1, 2 or 3; others read as 1).
    pub fn tier(&self, tier: u8) -> &[Planned] {
        match tier {
            2 => &self.tiers[1],
            3 => &self.tiers[2],
            _ => &self.tiers[0],
        }
    }
}

fn items(suite: &Suite, cfg: &Config) -> Vec<Item> {
    let base = &cfg.autoperf.thresholds;
    suite
        .entries(&cfg.probe)
        .into_iter()
        .filter_map(|e| match e.spec {
            Ok(spec) => Some(Item {
                spec,
                thresholds: base.with(e.thresholds),
            }),
            Err(x) => {
                tracing::error!(
                    "{}[{}].{}: {x}; the entry is left out",
                    e.table,
                    e.index,
                    x.field
                );
                None
            }
        })
        .collect()
}

/// A TLS check of every HTTPS host of tier 1 that tier 1 does not already
/// check; an extended ping (50 probes) and a short MTR (3 rounds) to every
/// ICMP host.
fn derived_tier2(tier1: &[Item]) -> Vec<Item> {
    let mut seen: Vec<HostPort> = tier1
        .iter()
        .filter_map(|i| match &i.spec {
            TestSpec::Tcp(t) if t.mode == TcpMode::Tls => Some(t.address.clone()),
            _ => None,
        })
        .collect();
    let mut tls = Vec::new();
    let mut icmp = Vec::new();
    let mut trace = Vec::new();
    for i in tier1 {
        match &i.spec {
            TestSpec::Http(h) => {
                let Some(address) = https_address(h) else {
                    continue;
                };
                if seen.contains(&address) {
                    continue;
                }
                seen.push(address.clone());
                tls.push(Item {
                    spec: TestSpec::Tcp(TcpSpec {
                        insecure: h.insecure,
                        ca_file: h.ca_file.clone(),
                        timeout: h.timeout,
                        ..TcpSpec::new(address, TcpMode::Tls)
                    }),
                    thresholds: i.thresholds.clone(),
                });
            }
            TestSpec::Icmp(p) => {
                icmp.push(Item {
                    spec: TestSpec::Icmp(IcmpSpec {
                        count: 50,
                        ..p.clone()
                    }),
                    thresholds: i.thresholds.clone(),
                });
                trace.push(Item {
                    spec: TestSpec::Trace(mtr(p, 3, None)),
                    thresholds: i.thresholds.clone(),
                });
            }
            _ => {}
        }
    }
    tls.into_iter().chain(icmp).chain(trace).collect()
}

/// Every tier 1 HTTP target over HTTP/1.1 and (for HTTPS) HTTP/2, then tier
/// 2, whose short MTRs become 100-round ones (250 ms apart).
fn derived_tier3(tier1: &[Item], tier2: &[Item]) -> Vec<Item> {
    let mut out = Vec::new();
    for i in tier1 {
        let TestSpec::Http(h) = &i.spec else {
            continue;
        };
        for mode in [HttpMode::Http1, HttpMode::Http2] {
            if mode == HttpMode::Http2 && h.url.scheme() != "https" {
                continue;
            }
            out.push(Item {
                spec: TestSpec::Http(HttpSpec { mode, ..h.clone() }),
                thresholds: i.thresholds.clone(),
            });
        }
    }
    out.extend(
        tier2
            .iter()
            .filter(|i| !matches!(i.spec, TestSpec::Trace(_) | TestSpec::Bandwidth(_)))
            .cloned(),
    );
    for i in tier1 {
        if let TestSpec::Icmp(p) = &i.spec {
            out.push(Item {
                spec: TestSpec::Trace(mtr(p, 100, Some(Duration::from_millis(250)))),
                thresholds: i.thresholds.clone(),
            });
        }
    }
    out
}

/// Download then upload per bandwidth server, TCP.
fn speed_items(suite: &[Item], tier2: &[Item]) -> Vec<Item> {
    let from_tier2: Vec<Item>;
    let source = if suite.is_empty() {
        from_tier2 = tier2
            .iter()
            .filter(|i| matches!(i.spec, TestSpec::Bandwidth(_)))
            .cloned()
            .collect();
        &from_tier2
    } else {
        suite
    };
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for i in source {
        let TestSpec::Bandwidth(b) = &i.spec else {
            continue;
        };
        if seen.contains(&(b.kind, b.server.clone())) {
            continue;
        }
        seen.push((b.kind, b.server.clone()));
        for direction in [Direction::Download, Direction::Upload] {
            out.push(Item {
                spec: TestSpec::Bandwidth(BandwidthSpec {
                    direction,
                    udp_bitrate: None,
                    ..b.clone()
                }),
                thresholds: i.thresholds.clone(),
            });
        }
    }
    out
}

/// Each bandwidth test for 60 s in both directions.
fn tier3_bandwidth(bandwidth: &[Item]) -> Vec<Item> {
    bandwidth
        .iter()
        .filter_map(|i| match &i.spec {
            TestSpec::Bandwidth(b) => Some(Item {
                spec: TestSpec::Bandwidth(BandwidthSpec {
                    seconds: crate::defaults::TIER3_BANDWIDTH_SECONDS,
                    direction: Direction::Bidir,
                    ..b.clone()
                }),
                thresholds: i.thresholds.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The host and port of an HTTPS URL (an IPv6 address without brackets).
fn https_address(h: &HttpSpec) -> Option<HostPort> {
    if h.url.scheme() != "https" {
        return None;
    }
    let host = match h.url.host()? {
        url::Host::Domain(d) => d.to_owned(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    Some(HostPort {
        host,
        port: h.url.port_or_known_default().unwrap_or(443),
    })
}

/// An MTR to an ICMP target's host.
fn mtr(p: &IcmpSpec, rounds: u32, interval: Option<Duration>) -> TraceSpec {
    let mut t = TraceSpec::new(p.host.clone());
    t.rounds = rounds;
    t.family = p.family;
    t.timeout = p.timeout;
    if let Some(i) = interval {
        t.interval = i;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(text: &str) -> Plans {
        Plans::new(&Config::parse(text, "x").unwrap())
    }

    #[test]
    fn derived_tiers_add_extended_ping_and_mtr() {
        let p = plans("[[suite.icmp]]\nhost = \"192.0.2.1\"\n");
        let t2: Vec<_> = p.tier(2).iter().map(|x| &x.probe).collect();
        assert!(matches!(t2[0], AnyProbe::Icmp(i) if i.count == 50));
        assert!(matches!(t2[1], AnyProbe::Trace(t) if t.rounds == 3));
        let t3: Vec<_> = p.tier(3).iter().map(|x| &x.probe).collect();
        assert!(matches!(t3[0], AnyProbe::Icmp(i) if i.count == 50));
        assert!(matches!(t3[1], AnyProbe::Trace(t) if t.rounds == 100));
    }

    #[test]
    fn tier3_http_variants_are_series_of_their_own() {
        let p = plans("[[suite.http]]\nurl = \"https://[2001:db8::1]/x\"\n");
        let t2: Vec<_> = p.tier(2).iter().map(|x| x.probe.target()).collect();
        assert_eq!(t2, ["tls://[2001:db8::1]:443"]);
        let t3: Vec<_> = p.tier(3).iter().map(|x| x.probe.target()).collect();
        assert_eq!(
            t3,
            [
                "https://[2001:db8::1]/x http1",
                "https://[2001:db8::1]/x http2",
                "tls://[2001:db8::1]:443"
            ]
        );
        assert!(p.tier(3).iter().all(|x| x.probe.tier() == 3));
    }

    #[test]
    fn a_tls_target_already_in_tier1_is_not_checked_twice() {
        let p = plans(
            "[[suite.http]]\nurl = \"https://example.com/\"\n\
             [[suite.tcp]]\ntarget = \"example.com:443\"\nmode = \"tls\"\n",
        );
        assert!(p.tier(2).is_empty());
    }
}

#[cfg(test)]
mod bandwidth_tests {
    use super::*;

    #[test]
    fn bandwidth_never_runs_hourly_and_tier3_runs_it_a_minute_both_ways() {
        let p = Plans::new(
            &Config::parse(
                "[[suite.tcp]]\ntarget = \"a:1\"\n[[suite.bandwidth]]\nserver = \"192.0.2.9\"\nseconds = 5\n",
                "x",
            )
            .unwrap(),
        );
        assert!(p.tier(1).iter().all(|x| !x.probe.exclusive()));
        let t2: Vec<_> = p.tier(2).iter().map(|x| x.probe.target()).collect();
        assert_eq!(t2, ["iperf3://192.0.2.9:5201"]);
        let t3: Vec<_> = p.tier(3).iter().map(|x| &x.probe).collect();
        assert_eq!(t3.len(), 1);
        match t3[0] {
            AnyProbe::Bandwidth(b) => {
                assert_eq!((b.seconds, b.direction), (60, Direction::Bidir));
                assert_eq!(x_target(t3[0]), "iperf3://192.0.2.9:5201 bidir");
            }
            other => panic!("{other:?}"),
        }
    }

    fn x_target(p: &AnyProbe) -> String {
        p.target()
    }
}
