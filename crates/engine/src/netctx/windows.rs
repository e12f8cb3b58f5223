//! Windows: the adapter of the default route from the IP helper API
//! (`GetAdaptersAddresses` with gateways, the lowest IPv4 metric wins), its
//! gateway's MAC (`SendARP`), and for Wi-Fi the WLAN API's current
//! connection, RSSI and channel.
#![allow(unsafe_code)]

use super::{format_mac, LinkType, NetCtxError, NetworkContext, WifiLink};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::NetworkManagement::IpHelper::{
    CancelMibChangeNotify2, ConvertInterfaceLuidToGuid, FreeMibTable, GetAdaptersAddresses,
    GetIfEntry2, GetIpForwardTable2, NotifyIpInterfaceChange, NotifyRouteChange2, SendARP,
    GAA_FLAG_INCLUDE_GATEWAYS, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST,
    IF_TYPE_ETHERNET_CSMACD, IF_TYPE_IEEE80211, IF_TYPE_PPP, IF_TYPE_PROP_VIRTUAL, IF_TYPE_TUNNEL,
    IF_TYPE_WWANPP, IF_TYPE_WWANPP2, IP_ADAPTER_ADDRESSES_LH, MIB_IF_ROW2, MIB_IPFORWARD_ROW2,
    MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW, MIB_NOTIFICATION_TYPE,
};
use windows_sys::Win32::NetworkManagement::Ndis::IfOperStatusUp;
use windows_sys::Win32::NetworkManagement::WiFi::{
    wlan_intf_opcode_channel_number, wlan_intf_opcode_current_connection, wlan_intf_opcode_rssi,
    WlanCloseHandle, WlanFreeMemory, WlanOpenHandle, WlanQueryInterface,
    WLAN_CONNECTION_ATTRIBUTES,
};
use windows_sys::Win32::Networking::WinSock::{
    AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_INET,
    SOCKET_ADDRESS,
};

const ERROR_BUFFER_OVERFLOW: u32 = 111;
/// The adapter list is read into at most this much memory.
const MAX_BUF: usize = 4 * 1024 * 1024;

/// An address of a `SOCKET_ADDRESS`.
///
/// SAFETY: `sa` comes from the adapter list, whose sockaddrs are valid for
/// their stated length while the list's buffer lives.
unsafe fn ip_of(sa: &SOCKET_ADDRESS) -> Option<IpAddr> {
    let p = sa.lpSockaddr as *const SOCKADDR;
    if p.is_null() {
        return None;
    }
    let len = usize::try_from(sa.iSockaddrLength).ok()?;
    match (*p).sa_family {
        AF_INET if len >= std::mem::size_of::<SOCKADDR_IN>() => {
            let v4 = &*(p as *const SOCKADDR_IN);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                v4.sin_addr.S_un.S_addr,
            ))))
        }
        AF_INET6 if len >= std::mem::size_of::<SOCKADDR_IN6>() => {
            let v6 = &*(p as *const SOCKADDR_IN6);
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.u.Byte)))
        }
        _ => None,
    }
}

/// An adapter's unicast addresses with their prefix lengths (at most 64).
///
/// SAFETY: `a` is an entry of a list `GetAdaptersAddresses` wrote, alive.
unsafe fn unicast(a: &IP_ADAPTER_ADDRESSES_LH) -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    let mut u = a.FirstUnicastAddress;
    while !u.is_null() && out.len() < 64 {
        if let Some(ip) = ip_of(&(*u).Address) {
            out.push((ip, (*u).OnLinkPrefixLength));
        }
        u = (*u).Next;
    }
    out
}

fn wide(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut n = 0usize;
    // SAFETY: a NUL-terminated UTF-16 string of the adapter list, bounded here.
    unsafe {
        while n < 512 && *p.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
    }
}

struct Adapter {
    name: String,
    if_type: u32,
    tunnel: bool,
    metric: u32,
    local: Option<IpAddr>,
    gateway: IpAddr,
    dns: Vec<String>,
    guid: Option<GUID>,
}

/// The adapter list, as `GetAdaptersAddresses` writes it (8-aligned).
fn adapter_buffer() -> Result<Vec<u64>, NetCtxError> {
    let flags = GAA_FLAG_INCLUDE_GATEWAYS | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST;
    let mut size: u32 = 16 * 1024;
    loop {
        let mut buf = vec![0u64; (size as usize).div_ceil(8)];
        // SAFETY: `buf` is `size` bytes (8-aligned); the API writes at most that.
        let r = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC),
                flags,
                std::ptr::null(),
                buf.as_mut_ptr() as *mut IP_ADAPTER_ADDRESSES_LH,
                &mut size,
            )
        };
        match r {
            0 => return Ok(buf),
            ERROR_BUFFER_OVERFLOW if (size as usize) <= MAX_BUF => continue,
            e => {
                return Err(NetCtxError::Os {
                    what: "adapters",
                    source: std::io::Error::from_raw_os_error(e as i32),
                })
            }
        }
    }
}

/// Calls `f` with each adapter of the list (read once, alive during the
/// calls).
fn each_adapter(mut f: impl FnMut(&IP_ADAPTER_ADDRESSES_LH)) -> Result<(), NetCtxError> {
    let buf = adapter_buffer()?;
    let mut p = buf.as_ptr() as *const IP_ADAPTER_ADDRESSES_LH;
    // SAFETY: the list the API wrote into `buf`, walked while `buf` lives.
    unsafe {
        while !p.is_null() {
            let a = &*p;
            p = a.Next;
            f(a);
        }
    }
    Ok(())
}

/// Every adapter, for diagnostics.
pub fn interfaces() -> Result<Vec<super::Interface>, NetCtxError> {
    let mut out = Vec::new();
    each_adapter(|a| {
        // SAFETY: an entry of the list `each_adapter` holds alive.
        let addresses = unsafe { unicast(a) }
            .into_iter()
            .map(|(ip, prefix)| format!("{ip}/{prefix}"))
            .collect();
        let n = (a.PhysicalAddressLength as usize).min(8);
        out.push(super::Interface {
            name: wide(a.FriendlyName),
            up: a.OperStatus == IfOperStatusUp,
            link_type: classify(a.IfType, a.TunnelType != 0),
            mac: format_mac(&a.PhysicalAddress[..n]),
            mtu: (a.Mtu != u32::MAX).then_some(a.Mtu),
            speed_mbps: (a.TransmitLinkSpeed != u64::MAX && a.TransmitLinkSpeed > 0)
                .then_some(a.TransmitLinkSpeed / 1_000_000),
            addresses,
            counters: counters(a),
        });
    })?;
    Ok(out)
}

/// An adapter's traffic and error counters (`GetIfEntry2`).
fn counters(a: &IP_ADAPTER_ADDRESSES_LH) -> Option<super::Counters> {
    // SAFETY: a zeroed row with the LUID set, as the API requires.
    let mut row: MIB_IF_ROW2 = unsafe { std::mem::zeroed() };
    row.InterfaceLuid = a.Luid;
    // SAFETY: `row` is a valid, writable row.
    if unsafe { GetIfEntry2(&mut row) } != 0 {
        return None;
    }
    Some(super::Counters {
        rx_bytes: row.InOctets,
        tx_bytes: row.OutOctets,
        rx_errors: row.InErrors,
        tx_errors: row.OutErrors,
        rx_dropped: row.InDiscards,
        tx_dropped: row.OutDiscards,
    })
}

/// The address of a `SOCKADDR_INET`.
///
/// SAFETY: `sa` comes from a table the API wrote; its family says which
/// member is valid.
unsafe fn inet(sa: &SOCKADDR_INET) -> Option<IpAddr> {
    match sa.si_family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
            sa.Ipv4.sin_addr.S_un.S_addr,
        )))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(sa.Ipv6.sin6_addr.u.Byte))),
        _ => None,
    }
}

/// Interface names by index (IPv4 and IPv6 indexes).
fn names() -> std::collections::HashMap<u32, String> {
    let mut out = std::collections::HashMap::new();
    let _ = each_adapter(|a| {
        let name = wide(a.FriendlyName);
        // SAFETY: the union's index view, as the API fills it.
        out.insert(unsafe { a.Anonymous1.Anonymous.IfIndex }, name.clone());
        out.insert(a.Ipv6IfIndex, name);
    });
    out
}

/// The routing table (`GetIpForwardTable2`), at most 4096 routes.
pub fn routes() -> Result<Vec<super::Route>, NetCtxError> {
    let names = names();
    let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
    // SAFETY: an out-pointer; the table is freed below with FreeMibTable.
    let r = unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) };
    if r != 0 || table.is_null() {
        return Err(NetCtxError::Os {
            what: "routes",
            source: std::io::Error::from_raw_os_error(r as i32),
        });
    }
    let mut out = Vec::new();
    // SAFETY: `NumEntries` rows follow the table header, alive until freed.
    unsafe {
        let n = ((*table).NumEntries as usize).min(4096);
        let rows: &[MIB_IPFORWARD_ROW2] = std::slice::from_raw_parts((*table).Table.as_ptr(), n);
        for row in rows {
            let Some(dst) = inet(&row.DestinationPrefix.Prefix) else {
                continue;
            };
            let len = row.DestinationPrefix.PrefixLength;
            let gateway = inet(&row.NextHop).filter(|g| !g.is_unspecified());
            out.push(super::Route {
                destination: if len == 0 {
                    "default".to_owned()
                } else {
                    format!("{dst}/{len}")
                },
                gateway: gateway.map(|g| g.to_string()),
                iface: names.get(&row.InterfaceIndex).cloned().unwrap_or_default(),
                metric: Some(row.Metric),
            });
        }
        FreeMibTable(table as *const core::ffi::c_void);
    }
    Ok(out)
}

/// Route and interface change notifications (`NotifyRouteChange2`,
/// `NotifyIpInterfaceChange`), delivered on a channel.
pub struct Changes {
    rx: tokio::sync::mpsc::UnboundedReceiver<()>,
    handles: Vec<usize>,
    /// The callbacks' context: alive until the notifications are cancelled.
    tx: *mut tokio::sync::mpsc::UnboundedSender<()>,
}

// SAFETY: the handles are kernel notification handles, usable from any
// thread; the sender is only read by the callbacks and freed after they end.
unsafe impl Send for Changes {}

unsafe extern "system" fn on_route(
    ctx: *const core::ffi::c_void,
    _row: *const MIB_IPFORWARD_ROW2,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: `ctx` is the sender `Changes` owns until it cancels these.
    let _ = (*(ctx as *const tokio::sync::mpsc::UnboundedSender<()>)).send(());
}

unsafe extern "system" fn on_interface(
    ctx: *const core::ffi::c_void,
    _row: *const MIB_IPINTERFACE_ROW,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: as `on_route`.
    let _ = (*(ctx as *const tokio::sync::mpsc::UnboundedSender<()>)).send(());
}

impl Changes {
    pub fn new() -> std::io::Result<Changes> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut c = Changes {
            rx,
            handles: Vec::new(),
            tx: Box::into_raw(Box::new(tx)),
        };
        let ctx = c.tx as *const core::ffi::c_void;
        let mut h: HANDLE = std::ptr::null_mut();
        // SAFETY: a callback of the documented type, a context alive until cancel.
        let r = unsafe { NotifyRouteChange2(AF_UNSPEC, Some(on_route), ctx, false, &mut h) };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r as i32));
        }
        c.handles.push(h as usize);
        let mut h: HANDLE = std::ptr::null_mut();
        // SAFETY: as above.
        let r =
            unsafe { NotifyIpInterfaceChange(AF_UNSPEC, Some(on_interface), ctx, false, &mut h) };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r as i32));
        }
        c.handles.push(h as usize);
        Ok(c)
    }

    /// The next change, and every one queued behind it.
    pub async fn next(&mut self) -> std::io::Result<()> {
        if self.rx.recv().await.is_none() {
            return Err(std::io::Error::other("the change notifications ended"));
        }
        while self.rx.try_recv().is_ok() {}
        Ok(())
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        for h in self.handles.drain(..) {
            // SAFETY: a handle from Notify*Change*, cancelled once; this
            // waits for callbacks in progress.
            unsafe {
                CancelMibChangeNotify2(h as HANDLE);
            }
        }
        // SAFETY: no callback can run any more; the box is freed once.
        drop(unsafe { Box::from_raw(self.tx) });
    }
}

fn adapters() -> Result<Vec<Adapter>, NetCtxError> {
    let mut out = Vec::new();
    each_adapter(|a| {
        if a.OperStatus != IfOperStatusUp {
            return;
        }
        // SAFETY: the entry's lists, alive while `each_adapter` holds the buffer.
        unsafe {
            let mut g = a.FirstGatewayAddress;
            let mut gateway = None;
            while !g.is_null() {
                if let Some(ip) = ip_of(&(*g).Address) {
                    if gateway.is_none() || ip.is_ipv4() {
                        gateway = Some(ip);
                    }
                }
                g = (*g).Next;
            }
            let Some(gateway) = gateway else { return };
            // IPv4 first, else the first address.
            let all = unicast(a);
            let local = all
                .iter()
                .find(|(ip, _)| ip.is_ipv4())
                .or(all.first())
                .map(|(ip, _)| *ip);
            let mut dns = Vec::new();
            let mut d = a.FirstDnsServerAddress;
            while !d.is_null() && dns.len() < 16 {
                if let Some(ip) = ip_of(&(*d).Address) {
                    dns.push(ip.to_string());
                }
                d = (*d).Next;
            }
            let mut guid: GUID = std::mem::zeroed();
            let guid = (ConvertInterfaceLuidToGuid(&a.Luid, &mut guid) == 0).then_some(guid);
            out.push(Adapter {
                name: wide(a.FriendlyName),
                if_type: a.IfType,
                tunnel: a.TunnelType != 0,
                metric: a.Ipv4Metric,
                local,
                gateway,
                dns,
                guid,
            });
        }
    })?;
    Ok(out)
}

/// The kind of an adapter from its interface type and tunnel type.
fn classify(if_type: u32, tunnel: bool) -> LinkType {
    match if_type {
        IF_TYPE_IEEE80211 => LinkType::Wifi,
        IF_TYPE_WWANPP | IF_TYPE_WWANPP2 => LinkType::Cellular,
        IF_TYPE_PPP | IF_TYPE_TUNNEL | IF_TYPE_PROP_VIRTUAL => LinkType::Vpn,
        _ if tunnel => LinkType::Vpn,
        IF_TYPE_ETHERNET_CSMACD => LinkType::Ethernet,
        _ => LinkType::Other,
    }
}

fn gateway_mac(gw: IpAddr) -> Option<String> {
    let IpAddr::V4(v4) = gw else { return None };
    let mut mac = [0u8; 8];
    let mut len: u32 = 8;
    // SAFETY: `mac` holds `len` bytes; the API writes at most that.
    let r = unsafe {
        SendARP(
            u32::from(v4).to_be(),
            0,
            mac.as_mut_ptr() as *mut core::ffi::c_void,
            &mut len,
        )
    };
    (r == 0)
        .then(|| format_mac(&mac[..(len as usize).min(8)]))
        .flatten()
}

struct Wlan(HANDLE);
impl Drop for Wlan {
    fn drop(&mut self) {
        // SAFETY: the handle came from WlanOpenHandle and is closed once.
        unsafe {
            WlanCloseHandle(self.0, std::ptr::null());
        }
    }
}

/// One WLAN query's answer, copied out and freed.
///
/// SAFETY: `T` must be the type the opcode answers with.
unsafe fn query<T: Copy>(h: &Wlan, guid: &GUID, opcode: i32) -> Option<T> {
    let mut size: u32 = 0;
    let mut data: *mut core::ffi::c_void = std::ptr::null_mut();
    let r = WlanQueryInterface(
        h.0,
        guid,
        opcode,
        std::ptr::null(),
        &mut size,
        &mut data,
        std::ptr::null_mut(),
    );
    if r != 0 || data.is_null() {
        return None;
    }
    let v = ((size as usize) >= std::mem::size_of::<T>()).then(|| *(data as *const T));
    WlanFreeMemory(data);
    v
}

fn wifi(guid: &GUID) -> Option<WifiLink> {
    let mut negotiated = 0u32;
    let mut h: HANDLE = std::ptr::null_mut();
    // SAFETY: out-pointers to locals.
    if unsafe { WlanOpenHandle(2, std::ptr::null(), &mut negotiated, &mut h) } != 0 {
        return None;
    }
    let h = Wlan(h);
    // SAFETY: each opcode's documented answer type.
    let conn: WLAN_CONNECTION_ATTRIBUTES =
        unsafe { query(&h, guid, wlan_intf_opcode_current_connection) }?;
    let rssi: Option<i32> = unsafe { query(&h, guid, wlan_intf_opcode_rssi) };
    let channel: Option<u32> = unsafe { query(&h, guid, wlan_intf_opcode_channel_number) };
    let assoc = conn.wlanAssociationAttributes;
    let n = (assoc.dot11Ssid.uSSIDLength as usize).min(32);
    let ssid = String::from_utf8_lossy(&assoc.dot11Ssid.ucSSID[..n]).into_owned();
    Some(WifiLink {
        ssid: (!ssid.is_empty()).then_some(ssid),
        bssid: format_mac(&assoc.dot11Bssid),
        wifi_rssi_dbm: rssi,
        // The WLAN API gives the channel number itself.
        wifi_channel: channel.filter(|c| *c > 0),
        wifi_tx_rate_mbps: (assoc.ulTxRate > 0).then(|| f64::from(assoc.ulTxRate) / 1000.0),
    })
}

pub fn capture() -> Result<NetworkContext, NetCtxError> {
    let all = adapters()?;
    let a = all
        .iter()
        .min_by_key(|a| (!a.gateway.is_ipv4(), a.metric))
        .ok_or(NetCtxError::NoDefaultRoute)?;
    let link_type = classify(a.if_type, a.tunnel);
    let mut c = NetworkContext {
        iface: a.name.clone(),
        link_type,
        local_ip: a.local.map(|ip| ip.to_string()),
        gateway_ip: Some(a.gateway.to_string()),
        gateway_mac: if matches!(link_type, LinkType::Ethernet | LinkType::Wifi) {
            gateway_mac(a.gateway)
        } else {
            None
        },
        dns_servers: a.dns.clone(),
        vpn: link_type == LinkType::Vpn,
        ..NetworkContext::default()
    };
    if link_type == LinkType::Wifi {
        if let Some(w) = a.guid.as_ref().and_then(wifi) {
            c.set_wifi(w);
        }
    }
    Ok(NetworkContext::new(c))
}
