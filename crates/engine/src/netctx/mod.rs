//! Network context: which network a result was measured on.
//!
//! The interface the default route uses, its kind, the local address, the
//! gateway, the DNS servers, whether the route goes through a VPN, and for
//! Wi-Fi the SSID, BSSID, signal, channel and link rate (figure names in
//! `shared/reference/measurements.md`, "Network context"). Read from the OS
//! behind one function per platform: netlink and nl80211 on Linux, the IP
//! helper and WLAN APIs on Windows, the system configuration store on macOS.
//!
//! A network has a stable id, a hash of (gateway MAC or BSSID, SSID, gateway
//! IP): the same home router gives the same id every day, whatever address
//! the machine got; the raw identifiers need not leave the machine for
//! history to be filtered by network.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
mod metered;
pub mod portal;
mod resolv;
mod watch;
#[cfg(windows)]
mod windows;

pub use metered::metered;
pub use resolv::{nameservers, parse as resolv_parse};
pub use watch::Watcher;

/// What kind of link the default route leaves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum LinkType {
    Ethernet,
    Wifi,
    Cellular,
    Vpn,
    #[default]
    Other,
}

impl LinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Ethernet => "ethernet",
            LinkType::Wifi => "wifi",
            LinkType::Cellular => "cellular",
            LinkType::Vpn => "vpn",
            LinkType::Other => "other",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Wi-Fi association of the default route's interface.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct WifiLink {
    /// The network name; `None` when the SSID is hidden or not readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssid: Option<String>,
    /// The access point's MAC address, `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bssid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_rssi_dbm: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_channel: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_tx_rate_mbps: Option<f64>,
}

/// The network the machine is on now, as the OS reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct NetworkContext {
    /// The stable network id ([`network_id`]).
    pub network_id: String,
    /// The interface the default route uses.
    pub iface: String,
    pub link_type: LinkType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<String>,
    /// The gateway's MAC address (from the neighbour table), where the link
    /// has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// The default route goes through a tunnel (tun, WireGuard, utun, PPP).
    #[serde(default)]
    pub vpn: bool,
    /// The OS marks the connection metered (`None`: the OS does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bssid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_rssi_dbm: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_channel: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_tx_rate_mbps: Option<f64>,
}

impl NetworkContext {
    /// A context from what the platform read; fills in the id.
    pub fn new(mut c: NetworkContext) -> NetworkContext {
        c.network_id = network_id(
            c.bssid.as_deref().or(c.gateway_mac.as_deref()),
            c.ssid.as_deref(),
            c.gateway_ip.as_deref(),
            &c.iface,
        );
        c
    }

    pub fn set_wifi(&mut self, w: WifiLink) {
        self.ssid = w.ssid;
        self.bssid = w.bssid;
        self.wifi_rssi_dbm = w.wifi_rssi_dbm;
        self.wifi_channel = w.wifi_channel;
        self.wifi_tx_rate_mbps = w.wifi_tx_rate_mbps;
    }

    /// A short human description: "wifi \"Office\" via wlan0, gateway 10.0.0.1".
    pub fn describe(&self) -> String {
        let mut s = self.link_type.to_string();
        if let Some(ssid) = &self.ssid {
            s.push_str(&format!(" {ssid:?}"));
        }
        s.push_str(&format!(" via {}", self.iface));
        if let Some(g) = &self.gateway_ip {
            s.push_str(&format!(", gateway {g}"));
        }
        if self.vpn && self.link_type != LinkType::Vpn {
            s.push_str(", VPN");
        }
        if self.metered == Some(true) {
            s.push_str(", metered");
        }
        s
    }
}

/// The stable id of a network: the first 16 hex digits of SHA-256 over the
/// gateway's MAC address (or the access point's BSSID), the SSID and the
/// gateway's IP address. A link with none of them (a tunnel without a
/// gateway) is told apart by its interface name.
pub fn network_id(
    hw: Option<&str>,
    ssid: Option<&str>,
    gateway_ip: Option<&str>,
    iface: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"waddleperf-network-v1\0");
    let hw = hw.map(str::to_ascii_lowercase);
    for part in [hw.as_deref(), ssid, gateway_ip] {
        h.update(part.unwrap_or("").as_bytes());
        h.update([0u8]);
    }
    if hw.is_none() && ssid.is_none() && gateway_ip.is_none() {
        h.update(iface.as_bytes());
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One network interface, for diagnostics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Interface {
    pub name: String,
    /// Administratively up and with a carrier.
    pub up: bool,
    pub link_type: LinkType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The negotiated link speed, where the driver reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u64>,
    /// Addresses with their prefix length, `10.0.0.2/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<Counters>,
}

/// An interface's traffic and error counters since it came up.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Counters {
    #[cfg_attr(test, ts(type = "number"))]
    pub rx_bytes: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub tx_bytes: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub rx_errors: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub tx_errors: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub rx_dropped: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub tx_dropped: u64,
}

/// One route of the main table, for diagnostics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Route {
    /// `default`, or a prefix such as `10.0.0.0/24`.
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub iface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

/// Every interface, with addresses, MTU, speed and counters.
pub fn interfaces() -> Result<Vec<Interface>, NetCtxError> {
    #[cfg(target_os = "linux")]
    {
        linux::interfaces()
    }
    #[cfg(windows)]
    {
        windows::interfaces()
    }
    #[cfg(target_os = "macos")]
    {
        macos::interfaces()
    }
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    {
        Err(NetCtxError::Unsupported)
    }
}

/// The main routing table.
pub fn routes() -> Result<Vec<Route>, NetCtxError> {
    #[cfg(target_os = "linux")]
    {
        linux::routes()
    }
    #[cfg(windows)]
    {
        windows::routes()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        Err(NetCtxError::Unsupported)
    }
}

/// Why the network context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetCtxError {
    #[error("no default route: the machine is not connected to a network")]
    NoDefaultRoute,
    #[error("cannot read the network configuration from the OS ({what}): {source}")]
    Os {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the OS answered something unreadable ({what}): {detail}")]
    Garbled { what: &'static str, detail: String },
    #[error("not read on this OS")]
    Unsupported,
}

/// Reads the network context now, with whether the OS marks it metered.
pub async fn capture_full() -> Result<NetworkContext, NetCtxError> {
    let mut c =
        tokio::task::spawn_blocking(capture)
            .await
            .map_err(|e| NetCtxError::Garbled {
                what: "network context",
                detail: e.to_string(),
            })??;
    c.metered = metered().await;
    Ok(c)
}

/// Reads the network context now (blocking: a few netlink or system calls,
/// well under a millisecond to a few milliseconds), without `metered`.
pub fn capture() -> Result<NetworkContext, NetCtxError> {
    #[cfg(target_os = "linux")]
    {
        linux::capture()
    }
    #[cfg(windows)]
    {
        windows::capture()
    }
    #[cfg(target_os = "macos")]
    {
        macos::capture()
    }
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    {
        Err(NetCtxError::Unsupported)
    }
}

/// A MAC address as lowercase `aa:bb:cc:dd:ee:ff`; `None` for an empty or
/// all-zero one.
pub fn format_mac(b: &[u8]) -> Option<String> {
    if b.is_empty() || b.iter().all(|x| *x == 0) {
        return None;
    }
    Some(
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// The 802.11 channel number of a centre frequency in MHz.
pub fn channel_of(freq_mhz: u32) -> Option<u32> {
    match freq_mhz {
        2484 => Some(14),
        2412..=2472 => Some((freq_mhz - 2407) / 5),
        // 6 GHz: channel 2 is 5935; the rest from 5950 in steps of 5.
        5935 => Some(2),
        5955..=7115 => Some((freq_mhz - 5950) / 5),
        5160..=5885 => Some((freq_mhz - 5000) / 5),
        4910..=4980 => Some((freq_mhz - 4000) / 5),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_id_is_stable_and_separates_networks() {
        let home = network_id(Some("AA:BB:CC:00:11:22"), None, Some("192.168.1.1"), "eth0");
        // Case of the MAC and the interface name do not matter.
        assert_eq!(
            home,
            network_id(
                Some("aa:bb:cc:00:11:22"),
                None,
                Some("192.168.1.1"),
                "enp3s0"
            )
        );
        assert_eq!(home.len(), 16);
        assert!(home.chars().all(|c| c.is_ascii_hexdigit()));
        // Another router at the same address is another network.
        assert_ne!(
            home,
            network_id(Some("aa:bb:cc:00:11:23"), None, Some("192.168.1.1"), "eth0")
        );
        // The same access point under another SSID too.
        let a = network_id(
            Some("aa:bb:cc:00:11:22"),
            Some("Office"),
            Some("10.0.0.1"),
            "w",
        );
        let b = network_id(
            Some("aa:bb:cc:00:11:22"),
            Some("Guest"),
            Some("10.0.0.1"),
            "w",
        );
        assert_ne!(a, b);
        // Tunnels without a gateway are told apart by interface.
        assert_ne!(
            network_id(None, None, None, "tun0"),
            network_id(None, None, None, "wg0")
        );
    }

    #[test]
    fn channels_of_the_three_bands() {
        assert_eq!(channel_of(2412), Some(1));
        assert_eq!(channel_of(2437), Some(6));
        assert_eq!(channel_of(2484), Some(14));
        assert_eq!(channel_of(5180), Some(36));
        assert_eq!(channel_of(5745), Some(149));
        assert_eq!(channel_of(5955), Some(1));
        assert_eq!(channel_of(6115), Some(33));
        assert_eq!(channel_of(1000), None);
    }

    #[test]
    fn macs_are_formatted_and_empty_ones_dropped() {
        assert_eq!(
            format_mac(&[0xAA, 0xbb, 0, 1, 2, 0xff]).as_deref(),
            Some("aa:bb:00:01:02:ff")
        );
        assert_eq!(format_mac(&[0; 6]), None);
        assert_eq!(format_mac(&[]), None);
    }
}
