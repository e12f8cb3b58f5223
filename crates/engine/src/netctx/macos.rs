#![allow(unsafe_code)]
//! macOS: the primary interface and router from the system configuration
//! store (`State:/Network/Global/IPv4`), the DNS servers from
//! `State:/Network/Global/DNS`, the interface kind from the system's list of
//! network interfaces, and the gateway's MAC from the ARP table (`arp -n`).
//! The SSID is not read: since macOS 14 it needs Location Services
//! permission granted to the app, so Wi-Fi networks are told apart by their
//! gateway's MAC address instead.

use super::{format_mac, LinkType, NetCtxError, NetworkContext};
use core_foundation::array::CFArray;
use core_foundation::base::{CFType, TCFType};
use core_foundation::dictionary::CFDictionary;
use core_foundation::propertylist::CFPropertyList;
use core_foundation::string::CFString;
use std::ffi::c_void;
use system_configuration::dynamic_store::SCDynamicStoreBuilder;
use system_configuration::network_configuration::{get_interfaces, SCNetworkInterfaceType};

fn dict(p: Option<CFPropertyList>) -> Option<CFDictionary<*const c_void, *const c_void>> {
    p?.downcast_into::<CFDictionary>()
}

fn value(d: &CFDictionary<*const c_void, *const c_void>, key: &'static str) -> Option<CFType> {
    let k = CFString::from_static_string(key);
    d.find(k.as_concrete_TypeRef() as *const c_void)
        // SAFETY: the dictionary holds CF objects; the reference is retained by wrap_under_get_rule.
        .map(|v| unsafe { CFType::wrap_under_get_rule(*v as _) })
}

fn string(d: &CFDictionary<*const c_void, *const c_void>, key: &'static str) -> Option<String> {
    value(d, key)?.downcast::<CFString>().map(|s| s.to_string())
}

fn strings(d: &CFDictionary<*const c_void, *const c_void>, key: &'static str) -> Vec<String> {
    let Some(arr) = value(d, key).and_then(|v| v.downcast::<CFArray>()) else {
        return Vec::new();
    };
    arr.iter()
        .take(16)
        // SAFETY: the array holds CF objects.
        .filter_map(|p| unsafe { CFType::wrap_under_get_rule(*p as _) }.downcast::<CFString>())
        .map(|s| s.to_string())
        .collect()
}

fn kind_of(bsd: &str) -> LinkType {
    if ["utun", "ipsec", "ppp", "tun", "tap", "wg"]
        .iter()
        .any(|p| bsd.starts_with(p))
    {
        return LinkType::Vpn;
    }
    for i in get_interfaces().iter() {
        if i.bsd_name().map(|n| n.to_string()).as_deref() != Some(bsd) {
            continue;
        }
        return match i.interface_type() {
            Some(SCNetworkInterfaceType::IEEE80211) => LinkType::Wifi,
            Some(SCNetworkInterfaceType::WWAN) => LinkType::Cellular,
            Some(
                SCNetworkInterfaceType::PPP
                | SCNetworkInterfaceType::L2TP
                | SCNetworkInterfaceType::IPSec
                | SCNetworkInterfaceType::PPTP,
            ) => LinkType::Vpn,
            Some(SCNetworkInterfaceType::Ethernet) => LinkType::Ethernet,
            _ => LinkType::Other,
        };
    }
    LinkType::Other
}

/// The MAC `arp -n <ip>` reports ("? (10.0.0.1) at 0:11:22:33:44:55 on en0 …").
fn gateway_mac(ip: &str) -> Option<String> {
    if ip.parse::<std::net::IpAddr>().is_err() {
        return None;
    }
    let out = std::process::Command::new("/usr/sbin/arp")
        .args(["-n", ip])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text.split_whitespace().skip_while(|w| *w != "at").nth(1)?;
    let bytes: Vec<u8> = word
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    (bytes.len() == 6).then(|| format_mac(&bytes)).flatten()
}

pub fn capture() -> Result<NetworkContext, NetCtxError> {
    let store = SCDynamicStoreBuilder::new("waddleperf").build();
    let ipv4 = dict(store.get("State:/Network/Global/IPv4"));
    let ipv6 = dict(store.get("State:/Network/Global/IPv6"));
    let global = ipv4.or(ipv6).ok_or(NetCtxError::NoDefaultRoute)?;
    let iface = string(&global, "PrimaryInterface").ok_or(NetCtxError::NoDefaultRoute)?;
    let router = string(&global, "Router");
    let service = string(&global, "PrimaryService");
    let local_ip = service.and_then(|s| {
        let d = dict(store.get(format!("State:/Network/Service/{s}/IPv4").as_str()))?;
        strings(&d, "Addresses").into_iter().next()
    });
    let dns = dict(store.get("State:/Network/Global/DNS"))
        .map(|d| strings(&d, "ServerAddresses"))
        .unwrap_or_default();
    let link_type = kind_of(&iface);
    let gateway_mac = match (&router, link_type) {
        (Some(r), LinkType::Ethernet | LinkType::Wifi | LinkType::Other) => gateway_mac(r),
        _ => None,
    };
    Ok(NetworkContext::new(NetworkContext {
        iface,
        link_type,
        local_ip,
        gateway_ip: router,
        gateway_mac,
        dns_servers: dns,
        vpn: link_type == LinkType::Vpn,
        ..NetworkContext::default()
    }))
}

/// Every interface with its addresses and MAC (`getifaddrs`); MTU, speed
/// and counters are not read here.
pub fn interfaces() -> Result<Vec<super::Interface>, NetCtxError> {
    use nix::net::if_::InterfaceFlags;
    let all = nix::ifaddrs::getifaddrs().map_err(|e| NetCtxError::Os {
        what: "interfaces",
        source: std::io::Error::from(e),
    })?;
    let mut out: Vec<super::Interface> = Vec::new();
    for a in all.take(1024) {
        let at = match out.iter().position(|i| i.name == a.interface_name) {
            Some(at) => at,
            None => {
                out.push(super::Interface {
                    name: a.interface_name.clone(),
                    up: a.flags.contains(InterfaceFlags::IFF_UP)
                        && a.flags.contains(InterfaceFlags::IFF_RUNNING),
                    link_type: if a.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
                        LinkType::Other
                    } else {
                        kind_of(&a.interface_name)
                    },
                    ..super::Interface::default()
                });
                out.len() - 1
            }
        };
        let i = &mut out[at];
        let Some(addr) = &a.address else { continue };
        if let Some(l) = addr.as_link_addr() {
            if let Some(m) = l.addr() {
                i.mac = format_mac(&m);
            }
        } else if let Some(v4) = addr.as_sockaddr_in() {
            let prefix = a
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map_or(32, |m| u32::from(m.ip()).count_ones());
            i.addresses.push(format!("{}/{prefix}", v4.ip()));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let prefix = a
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map_or(128, |m| u128::from(m.ip()).count_ones());
            i.addresses.push(format!("{}/{prefix}", v6.ip()));
        }
    }
    Ok(out)
}
