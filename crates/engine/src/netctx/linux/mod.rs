//! Linux: the default route, its link, address and gateway from rtnetlink;
//! Wi-Fi from nl80211; DNS from resolv.conf; metered from NetworkManager.

use super::{format_mac, LinkType, NetCtxError, NetworkContext};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkLayerType, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use std::net::IpAddr;

pub(super) mod nl;
pub mod nl80211;
pub(super) mod watch;

use nl::{request, Kind};

/// The default route in use: the one with the lowest metric, IPv4 first
/// (the family most traffic still takes), else IPv6.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultRoute {
    pub oif: u32,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

/// The default route of `routes` (main table, unicast, prefix length 0).
pub fn default_route(routes: &[RouteMessage]) -> Option<DefaultRoute> {
    let mut best: Option<(bool, DefaultRoute)> = None;
    for r in routes {
        let h = &r.header;
        if h.destination_prefix_length != 0 || h.kind != RouteType::Unicast {
            continue;
        }
        let mut table = u32::from(h.table);
        let (mut oif, mut gateway, mut metric) = (None, None, 0u32);
        for a in &r.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
                RouteAttribute::MultiPath(hops) => {
                    if let Some(hop) = hops.first() {
                        oif = oif.or(Some(hop.interface_index));
                        for a in &hop.attributes {
                            match a {
                                RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                                    gateway = gateway.or(Some(IpAddr::V4(*g)))
                                }
                                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                                    gateway = gateway.or(Some(IpAddr::V6(*g)))
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // RT_TABLE_MAIN
        if table != 254 {
            continue;
        }
        let Some(oif) = oif else { continue };
        let v4 = h.address_family == AddressFamily::Inet;
        let cand = DefaultRoute {
            oif,
            gateway,
            metric,
        };
        let better = match &best {
            None => true,
            Some((bv4, b)) => (v4 && !bv4) || (v4 == *bv4 && cand.metric < b.metric),
        };
        if better {
            best = Some((v4, cand));
        }
    }
    best.map(|(_, r)| r)
}

/// What the link says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkFacts {
    pub name: String,
    pub kind: Option<String>,
    pub arphrd: u16,
    pub mac: Option<String>,
    pub pointopoint: bool,
}

pub fn link_facts(l: &LinkMessage) -> LinkFacts {
    let mut f = LinkFacts {
        arphrd: u16::from(l.header.link_layer_type),
        pointopoint: l
            .header
            .flags
            .contains(netlink_packet_route::link::LinkFlags::Pointopoint),
        ..LinkFacts::default()
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => f.name = n.clone(),
            LinkAttribute::Address(m) => f.mac = format_mac(m),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        f.kind = Some(match k {
                            InfoKind::Tun => "tun".into(),
                            InfoKind::Wireguard => "wireguard".into(),
                            other => format!("{other:?}").to_ascii_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// The kind of a link from rtnetlink's facts, sysfs's `uevent` device type
/// and whether nl80211 knows it.
pub fn classify(f: &LinkFacts, devtype: Option<&str>, is_wifi: bool) -> LinkType {
    let tunnel_kind = matches!(
        f.kind.as_deref(),
        Some("tun" | "wireguard" | "ppp" | "ipip" | "gre" | "vti" | "xfrm" | "ip6tnl" | "sit")
    );
    let arphrd_none = f.arphrd == u16::from(LinkLayerType::None);
    let ppp = f.arphrd == u16::from(LinkLayerType::Ppp);
    if is_wifi || devtype == Some("wlan") {
        LinkType::Wifi
    } else if devtype == Some("wwan") || f.arphrd == u16::from(LinkLayerType::Rawip) {
        LinkType::Cellular
    } else if tunnel_kind || ppp || (arphrd_none && f.pointopoint) || devtype == Some("wireguard") {
        LinkType::Vpn
    } else if f.arphrd == u16::from(LinkLayerType::Ether) {
        LinkType::Ethernet
    } else {
        LinkType::Other
    }
}

/// A file of `/sys/class/net/<name>/` (at most 16 KiB); `None` for a name
/// that is not one interface's.
fn sysfs(name: &str, file: &str) -> Option<String> {
    use std::io::Read;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let f = std::fs::File::open(format!("/sys/class/net/{name}/{file}")).ok()?;
    let mut s = String::new();
    f.take(16 * 1024).read_to_string(&mut s).ok()?;
    Some(s)
}

/// `DEVTYPE=` from the interface's `uevent` (wlan, wwan, bridge…).
fn sysfs_devtype(name: &str) -> Option<String> {
    sysfs(name, "uevent")?
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE="))
        .map(|v| v.trim().to_owned())
}

fn route_msg(family: AddressFamily) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    RouteNetlinkMessage::GetRoute(m)
}

/// The local address of `index`: the first global-scope IPv4 address, else
/// the first IPv6 one that is not link-local.
fn local_ip(addrs: &[AddressMessage], index: u32) -> Option<IpAddr> {
    let mut v6 = None;
    for a in addrs.iter().filter(|a| a.header.index == index) {
        let mut local = None;
        let mut address = None;
        for at in &a.attributes {
            match at {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        match local.or(address) {
            Some(IpAddr::V4(ip)) => return Some(IpAddr::V4(ip)),
            Some(IpAddr::V6(ip)) if v6.is_none() && (ip.segments()[0] & 0xffc0) != 0xfe80 => {
                v6 = Some(IpAddr::V6(ip))
            }
            _ => {}
        }
    }
    v6
}

/// The MAC address the neighbour table holds for `ip` on `index`.
fn neighbour_mac(neigh: &[NeighbourMessage], index: u32, ip: IpAddr) -> Option<String> {
    neigh
        .iter()
        .filter(|n| n.header.ifindex == index)
        .find_map(|n| {
            let dst = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => Some(IpAddr::V4(*v)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => Some(IpAddr::V6(*v)),
                _ => None,
            })?;
            if dst != ip {
                return None;
            }
            n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(m) => format_mac(m),
                _ => None,
            })
        })
}

/// Every object of a dump that `pick` keeps.
fn dump<T>(
    sock: &Socket,
    req: RouteNetlinkMessage,
    what: &'static str,
    pick: impl Fn(RouteNetlinkMessage) -> Option<T>,
) -> Result<Vec<T>, NetCtxError> {
    Ok(request(sock, req, Kind::Dump, what)?
        .into_iter()
        .filter_map(pick)
        .collect())
}

fn neighbours(sock: &Socket) -> Result<Vec<NeighbourMessage>, NetCtxError> {
    dump(
        sock,
        RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        "neighbour table",
        |m| match m {
            RouteNetlinkMessage::NewNeighbour(x) => Some(x),
            _ => None,
        },
    )
}

/// The gateway's MAC: from the neighbour table; when the gateway has no
/// entry yet (no traffic since it expired), one datagram to its discard
/// port makes the kernel resolve it, and the table is read again.
fn gateway_mac(sock: &Socket, index: u32, gw: IpAddr) -> Result<Option<String>, NetCtxError> {
    if let Some(m) = neighbour_mac(&neighbours(sock)?, index, gw) {
        return Ok(Some(m));
    }
    let bind: std::net::SocketAddr = match gw {
        IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    if let Ok(s) = std::net::UdpSocket::bind(bind) {
        let _ = s.send_to(&[], (gw, 9));
    }
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        if let Some(m) = neighbour_mac(&neighbours(sock)?, index, gw) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

fn link_dump(sock: &Socket) -> Result<Vec<LinkMessage>, NetCtxError> {
    dump(
        sock,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "links",
        |m| match m {
            RouteNetlinkMessage::NewLink(x) => Some(x),
            _ => None,
        },
    )
}

fn addr_dump(sock: &Socket) -> Result<Vec<AddressMessage>, NetCtxError> {
    dump(
        sock,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        "addresses",
        |m| match m {
            RouteNetlinkMessage::NewAddress(x) => Some(x),
            _ => None,
        },
    )
}

fn route_dump(sock: &Socket) -> Result<Vec<RouteMessage>, NetCtxError> {
    let mut routes = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        for m in request(sock, route_msg(family), Kind::Dump, "routes")? {
            if let RouteNetlinkMessage::NewRoute(r) = m {
                routes.push(r);
            }
        }
    }
    Ok(routes)
}

/// The interface's `speed` in Mbit/s (absent or -1 for virtual links).
fn sysfs_speed(name: &str) -> Option<u64> {
    sysfs(name, "speed")?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(|v| v as u64)
}

pub fn interfaces() -> Result<Vec<super::Interface>, NetCtxError> {
    use netlink_packet_route::link::State;
    let sock = nl::open(NETLINK_ROUTE, "routing socket")?;
    let links = link_dump(&sock)?;
    let addrs = addr_dump(&sock)?;
    let mut out = Vec::new();
    for l in &links {
        let facts = link_facts(l);
        let mut i = super::Interface {
            link_type: if l.header.link_layer_type == LinkLayerType::Loopback {
                LinkType::Other
            } else {
                classify(&facts, sysfs_devtype(&facts.name).as_deref(), false)
            },
            mac: facts.mac.clone(),
            speed_mbps: sysfs_speed(&facts.name),
            name: facts.name,
            ..super::Interface::default()
        };
        let mut admin_up = l
            .header
            .flags
            .contains(netlink_packet_route::link::LinkFlags::Up);
        for a in &l.attributes {
            match a {
                LinkAttribute::Mtu(m) => i.mtu = Some(*m),
                LinkAttribute::OperState(
                    State::Down | State::LowerLayerDown | State::NotPresent,
                ) => admin_up = false,
                LinkAttribute::Stats64(s) => {
                    i.counters = Some(super::Counters {
                        rx_bytes: s.rx_bytes,
                        tx_bytes: s.tx_bytes,
                        rx_errors: s.rx_errors,
                        tx_errors: s.tx_errors,
                        rx_dropped: s.rx_dropped,
                        tx_dropped: s.tx_dropped,
                    })
                }
                _ => {}
            }
        }
        i.up = admin_up;
        for a in addrs.iter().filter(|a| a.header.index == l.header.index) {
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = ip {
                i.addresses.push(format!("{ip}/{}", a.header.prefix_len));
            }
        }
        out.push(i);
    }
    Ok(out)
}

pub fn routes() -> Result<Vec<super::Route>, NetCtxError> {
    let sock = nl::open(NETLINK_ROUTE, "routing socket")?;
    let names: std::collections::HashMap<u32, String> = link_dump(&sock)?
        .iter()
        .map(|l| (l.header.index, link_facts(l).name))
        .collect();
    let mut out = Vec::new();
    for r in route_dump(&sock)? {
        let h = &r.header;
        let mut table = u32::from(h.table);
        let (mut dst, mut gw, mut oif, mut metric) = (None, None, None, None);
        for a in &r.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(IpAddr::V4(*d)),
                RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = Some(IpAddr::V6(*d)),
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(IpAddr::V6(*g)),
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Priority(p) => metric = Some(*p),
                _ => {}
            }
        }
        // The main table's unicast routes: what traffic takes.
        if table != 254 || h.kind != RouteType::Unicast {
            continue;
        }
        let destination = match dst {
            None if h.destination_prefix_length == 0 => "default".to_owned(),
            None => continue,
            Some(d) => format!("{d}/{}", h.destination_prefix_length),
        };
        out.push(super::Route {
            destination,
            gateway: gw.map(|g| g.to_string()),
            iface: oif.and_then(|i| names.get(&i).cloned()).unwrap_or_default(),
            metric,
        });
    }
    Ok(out)
}

pub fn capture() -> Result<NetworkContext, NetCtxError> {
    let sock = nl::open(NETLINK_ROUTE, "routing socket")?;
    let route = default_route(&route_dump(&sock)?).ok_or(NetCtxError::NoDefaultRoute)?;
    let link = link_dump(&sock)?
        .iter()
        .find(|l| l.header.index == route.oif)
        .map(link_facts)
        .ok_or(NetCtxError::Garbled {
            what: "links",
            detail: format!("the default route's interface #{} is not listed", route.oif),
        })?;
    let addrs = addr_dump(&sock)?;

    let wifi = nl80211::query(route.oif).unwrap_or_else(|e| {
        tracing::debug!("no Wi-Fi facts for {}: {e}", link.name);
        None
    });
    let link_type = classify(&link, sysfs_devtype(&link.name).as_deref(), wifi.is_some());
    let has_arp = link.arphrd == u16::from(LinkLayerType::Ether) && !link.pointopoint;
    let gateway_mac = match route.gateway {
        Some(gw) if has_arp => gateway_mac(&sock, route.oif, gw)?,
        _ => None,
    };
    let mut c = NetworkContext {
        iface: link.name.clone(),
        link_type,
        local_ip: local_ip(&addrs, route.oif).map(|ip| ip.to_string()),
        gateway_ip: route.gateway.map(|g| g.to_string()),
        gateway_mac,
        dns_servers: super::nameservers(),
        vpn: link_type == LinkType::Vpn,
        metered: None,
        ..NetworkContext::default()
    };
    if let Some(w) = wifi {
        c.set_wifi(w);
    }
    Ok(NetworkContext::new(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkFlags, LinkHeader};
    use std::net::Ipv4Addr;

    fn route(family: AddressFamily, oif: u32, gw: Option<Ipv4Addr>, metric: u32) -> RouteMessage {
        let mut r = RouteMessage::default();
        r.header.address_family = family;
        r.header.table = 254;
        r.header.kind = RouteType::Unicast;
        r.attributes.push(RouteAttribute::Oif(oif));
        r.attributes.push(RouteAttribute::Priority(metric));
        if let Some(g) = gw {
            r.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(g)));
        }
        r
    }

    #[test]
    fn the_default_route_is_the_lowest_metric_ipv4_one() {
        let mut other = route(AddressFamily::Inet, 9, None, 0);
        other.header.destination_prefix_length = 24;
        let routes = vec![
            other,
            route(AddressFamily::Inet6, 5, None, 1),
            route(
                AddressFamily::Inet,
                3,
                Some(Ipv4Addr::new(10, 0, 0, 1)),
                600,
            ),
            route(
                AddressFamily::Inet,
                4,
                Some(Ipv4Addr::new(10, 9, 0, 1)),
                100,
            ),
        ];
        let d = default_route(&routes).expect("a default route");
        assert_eq!(d.oif, 4);
        assert_eq!(d.gateway, Some(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1))));
        assert_eq!(default_route(&routes[..2]).map(|r| r.oif), Some(5));
        assert_eq!(default_route(&routes[..1]), None);
    }

    fn facts(arphrd: LinkLayerType, kind: Option<&str>, p2p: bool) -> LinkFacts {
        let h = LinkHeader {
            link_layer_type: arphrd,
            flags: if p2p {
                LinkFlags::Pointopoint
            } else {
                LinkFlags::empty()
            },
            ..LinkHeader::default()
        };
        let mut l = LinkMessage::default();
        l.header = h;
        let mut f = link_facts(&l);
        f.kind = kind.map(str::to_owned);
        f
    }

    #[test]
    fn links_are_classified() {
        let eth = facts(LinkLayerType::Ether, None, false);
        assert_eq!(classify(&eth, None, false), LinkType::Ethernet);
        assert_eq!(classify(&eth, Some("wlan"), false), LinkType::Wifi);
        assert_eq!(classify(&eth, None, true), LinkType::Wifi);
        assert_eq!(classify(&eth, Some("wwan"), false), LinkType::Cellular);
        let raw = facts(LinkLayerType::Rawip, None, false);
        assert_eq!(classify(&raw, None, false), LinkType::Cellular);
        let tun = facts(LinkLayerType::None, Some("tun"), true);
        assert_eq!(classify(&tun, None, false), LinkType::Vpn);
        let wg = facts(LinkLayerType::None, Some("wireguard"), true);
        assert_eq!(classify(&wg, None, false), LinkType::Vpn);
        let ppp = facts(LinkLayerType::Ppp, None, true);
        assert_eq!(classify(&ppp, None, false), LinkType::Vpn);
        let lo = facts(LinkLayerType::Loopback, None, false);
        assert_eq!(classify(&lo, None, false), LinkType::Other);
    }
}
