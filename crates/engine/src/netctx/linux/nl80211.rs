//! Wi-Fi facts from nl80211 (generic netlink): the interface's SSID and
//! frequency (`GET_INTERFACE`), and the access point the station is
//! associated with, its signal and the transmit rate (`GET_STATION` dump).
//! The message types are the rust-netlink project's `wl-nl80211`; the I/O is
//! the blocking request of `nl.rs`. Parsing is separate from the socket so
//! that recorded replies can be checked on a machine without a radio.

use super::super::{channel_of, format_mac, NetCtxError, WifiLink};
use super::nl::{self, request, Kind};
use netlink_packet_generic::ctrl::{nlas::GenlCtrlAttrs, GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;
use wl_nl80211::{
    Nl80211Attr, Nl80211Command, Nl80211Message, Nl80211RateInfo, Nl80211StationInfo,
};

/// errno values that mean "not a wireless interface" or "no nl80211".
const ENOENT: i32 = 2;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;

fn not_wireless(e: &NetCtxError) -> bool {
    matches!(e, NetCtxError::Os { source, .. }
        if matches!(source.raw_os_error(), Some(ENOENT | ENODEV | EINVAL | EOPNOTSUPP)))
}

/// The Wi-Fi facts of interface `index`; `None` when it is not a wireless
/// interface (or the kernel has no nl80211).
pub fn query(index: u32) -> Result<Option<WifiLink>, NetCtxError> {
    let sock = nl::open(NETLINK_GENERIC, "nl80211")?;
    let ctrl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("nl80211".into())],
    });
    let family = match request(&sock, ctrl, Kind::Get, "nl80211 family") {
        Ok(answers) => answers.iter().find_map(|m| {
            m.payload.nlas.iter().find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
        }),
        Err(e) if not_wireless(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(family) = family else {
        return Ok(None);
    };
    let ask = |cmd: Nl80211Command| {
        let mut m = GenlMessage::from_payload(Nl80211Message {
            cmd,
            attributes: vec![Nl80211Attr::IfIndex(index)],
        });
        m.set_resolved_family_id(family);
        m
    };
    let iface = match request(
        &sock,
        ask(Nl80211Command::GetInterface),
        Kind::Get,
        "nl80211 interface",
    ) {
        Ok(v) => v,
        Err(e) if not_wireless(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let stations = request(
        &sock,
        ask(Nl80211Command::GetStation),
        Kind::Dump,
        "nl80211 station",
    )
    .or_else(|e| {
        if not_wireless(&e) {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    })?;
    let iface: Vec<Nl80211Message> = iface.into_iter().map(|m| m.payload).collect();
    let stations: Vec<Nl80211Message> = stations.into_iter().map(|m| m.payload).collect();
    Ok(wifi_link(&iface, &stations))
}

#[cfg(test)]
/// The nl80211 messages of recorded reply datagrams (each as read from the
/// socket: one or more netlink messages).
pub fn parse_recorded(datagrams: &[&[u8]]) -> Result<Vec<Nl80211Message>, NetCtxError> {
    let mut out: Vec<GenlMessage<Nl80211Message>> = Vec::new();
    for d in datagrams {
        if let nl::Next::Done = nl::parse_datagram(d, 0, "nl80211 reply", &mut out)? {
            break;
        }
    }
    Ok(out.into_iter().map(|m| m.payload).collect())
}

/// The Wi-Fi link from `GET_INTERFACE`'s answer and the station dump; `None`
/// when the interface answer is not a wireless interface's.
pub fn wifi_link(iface: &[Nl80211Message], stations: &[Nl80211Message]) -> Option<WifiLink> {
    let i = iface.first()?;
    let mut w = WifiLink::default();
    for a in &i.attributes {
        match a {
            Nl80211Attr::Ssid(s) if w.ssid.is_none() => w.ssid = Some(s.clone()),
            Nl80211Attr::SsidRaw(raw) if w.ssid.is_none() && !raw.is_empty() => {
                w.ssid = Some(String::from_utf8_lossy(raw).into_owned())
            }
            Nl80211Attr::WiphyFreq(f) => w.wifi_channel = channel_of(*f),
            _ => {}
        }
    }
    // A station interface has one station: the access point it is associated with.
    if let Some(s) = stations.first() {
        for a in &s.attributes {
            match a {
                Nl80211Attr::Mac(m) => w.bssid = format_mac(m),
                Nl80211Attr::StationInfo(info) => {
                    let mut last = None;
                    let mut avg = None;
                    for x in info {
                        match x {
                            Nl80211StationInfo::Signal(v) => last = Some(i32::from(*v)),
                            Nl80211StationInfo::SignalAvg(v) => avg = Some(i32::from(*v)),
                            Nl80211StationInfo::TxBitrate(rate) => {
                                w.wifi_tx_rate_mbps = tx_rate_mbps(rate)
                            }
                            _ => {}
                        }
                    }
                    // The average is steadier than the last frame's signal.
                    w.wifi_rssi_dbm = avg.or(last);
                }
                _ => {}
            }
        }
    }
    Some(w)
}

/// The transmit bitrate in Mbit/s (the kernel's unit is 100 kbit/s; the
/// 32-bit field wins over the 16-bit one, which saturates at 6.5 Gbit/s).
fn tx_rate_mbps(rate: &[Nl80211RateInfo]) -> Option<f64> {
    let b32 = rate.iter().find_map(|r| match r {
        Nl80211RateInfo::Bitrate32(v) => Some(*v),
        _ => None,
    });
    let b16 = rate.iter().find_map(|r| match r {
        Nl80211RateInfo::Bitrate(v) => Some(u32::from(*v)),
        _ => None,
    });
    b32.or(b16).map(|v| f64::from(v) / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Nl80211Message> {
        parse_recorded(&[bytes]).expect("the recorded reply parses")
    }

    #[test]
    fn an_associated_station_gives_ssid_bssid_signal_channel_and_rate() {
        let iface = parse(include_bytes!("testdata/wifi_interface.bin"));
        let stations = parse(include_bytes!("testdata/wifi_station.bin"));
        assert_eq!(iface.len(), 1, "the ACK is not a message");
        assert_eq!(stations.len(), 1, "DONE is not a station");
        let w = wifi_link(&iface, &stations).expect("a wireless interface");
        assert_eq!(w.ssid.as_deref(), Some("Café Office"));
        assert_eq!(w.bssid.as_deref(), Some("9c:53:22:ab:cd:ef"));
        assert_eq!(w.wifi_rssi_dbm, Some(-58), "the average signal");
        assert_eq!(w.wifi_channel, Some(36));
        assert_eq!(w.wifi_tx_rate_mbps, Some(866.7));
    }

    #[test]
    fn an_idle_interface_is_wireless_without_an_association() {
        let iface = parse(include_bytes!("testdata/wifi_idle_interface.bin"));
        let stations = parse(include_bytes!("testdata/wifi_idle_station.bin"));
        assert!(stations.is_empty());
        let w = wifi_link(&iface, &stations).expect("still a wireless interface");
        assert_eq!(w, WifiLink::default());
        assert_eq!(wifi_link(&[], &[]), None);
    }

    #[test]
    fn truncated_or_garbled_replies_are_errors_not_panics() {
        let whole = include_bytes!("testdata/wifi_station.bin");
        for cut in [3usize, 17, 40, 100, whole.len() - 1] {
            // Either an error naming the reply, or fewer messages: never a panic.
            let _ = parse_recorded(&[&whole[..cut]]);
        }
        let mut bad = whole.to_vec();
        bad[0] = 0xff; // a length beyond the datagram
        let e = parse_recorded(&[&bad]).expect_err("a length beyond the datagram");
        assert!(e.to_string().contains("nl80211 reply"), "{e}");
        for seed in 0..200u64 {
            let mut junk = whole.to_vec();
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for b in junk.iter_mut().skip(16) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 7 == 0 {
                    *b = x as u8;
                }
            }
            if let Ok(m) = parse_recorded(&[&junk]) {
                let _ = wifi_link(&m, &m);
            }
        }
    }
}
