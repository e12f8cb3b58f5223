//! A stored result as the unified API's upload body (`POST /api/v1/tests/`):
//! `test_id` is the result's UUID, figures go under their canonical names in
//! `metrics`, what the server's statistics group by goes in `metadata`.

use crate::config::NetworkSharing;
use crate::model::{ErrorKind, Measurement};
use crate::store::KnownNetwork;
use crate::version;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// Where an upload goes: the enrolled device's organization and integer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    pub organization_id: i64,
    pub device_id: i64,
}

/// ISO 8601 UTC with `Z`, whole seconds (the server drops sub-seconds).
fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `completed` when the probe ran; `skipped` when the server was busy with
/// another client (nothing about the network was learnt); `failed` else.
fn status(m: &Measurement) -> &'static str {
    match (m.success, m.error_kind) {
        (true, _) => "completed",
        (false, Some(ErrorKind::Busy)) => "skipped",
        (false, _) => "failed",
    }
}

/// What an upload says about the result's network: the setting, and the
/// network as recorded (for `everything`).
#[derive(Debug, Clone, Copy)]
pub struct NetworkShare<'a> {
    pub sharing: NetworkSharing,
    pub network: Option<&'a KnownNetwork>,
}

impl NetworkShare<'_> {
    /// Nothing about the network.
    pub const NONE: NetworkShare<'static> = NetworkShare {
        sharing: NetworkSharing::None,
        network: None,
    };
}

/// The upload body for one result.
pub fn upload_body(m: &Measurement, to: Destination, net: NetworkShare<'_>) -> Value {
    let mut metrics = match serde_json::to_value(&m.metrics) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(l) = m.latency_ms {
        metrics.insert("latency_ms".into(), json!(l));
    }
    let completed =
        m.started_at + chrono::Duration::microseconds((m.duration_ms * 1000.0).round() as i64);
    let mut metadata = json!({
        "test_type": m.test_type,
        "target": m.target,
        "tier": m.tier,
        "client": crate::version::client(),
        "client_version": version::VERSION,
    });
    if let Some(ip) = &m.resolved_ip {
        metadata["resolved_ip"] = json!(ip);
    }
    if let Some(k) = m.error_kind {
        metadata["error_kind"] = json!(k);
    }
    if let (Some(id), true) = (&m.network_id, net.sharing != NetworkSharing::None) {
        metadata["network_id"] = json!(id);
        if let (NetworkSharing::Everything, Some(n)) = (net.sharing, net.network) {
            let mut ctx = serde_json::to_value(&n.context).unwrap_or(Value::Null);
            if let Some(o) = ctx.as_object_mut() {
                o.remove("network_id");
                if let Some(l) = &n.label {
                    o.insert("label".into(), json!(l));
                }
            }
            metadata["network"] = ctx;
        }
    }
    let mut body = json!({
        "test_id": m.id.to_string(),
        "name": format!("{} {}", m.test_type, m.target),
        "organization_id": to.organization_id,
        "device_id": to.device_id,
        "status": status(m),
        "duration_ms": m.duration_ms.round() as i64,
        "success": m.success,
        "started_at": iso(&m.started_at),
        "completed_at": iso(&completed),
        "metrics": metrics,
        "metadata": metadata,
    });
    if let Some(e) = &m.error {
        let kind = m.error_kind.map(|k| format!("{k}: ")).unwrap_or_default();
        body["error_message"] = json!(format!("{kind}{e}"));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestType;

    #[test]
    fn a_busy_server_is_skipped_not_failed() {
        let mut m = Measurement::begin(TestType::Bandwidth, "iperf3://lan:5201");
        m.fail(ErrorKind::Busy, "the iperf3 server is busy");
        let to = Destination {
            organization_id: 1,
            device_id: 2,
        };
        assert_eq!(upload_body(&m, to, NetworkShare::NONE)["status"], "skipped");
        m.fail(ErrorKind::Refused, "refused");
        assert_eq!(upload_body(&m, to, NetworkShare::NONE)["status"], "failed");
    }

    #[test]
    fn body_follows_the_contract() {
        let mut m = Measurement::begin(TestType::Tcp, "tls://example.com:443");
        m.started_at = "2026-11-22T01:42:00.123456Z".parse().unwrap();
        m.duration_ms = 3012.4;
        m.success = true;
        m.latency_ms = Some(40.5);
        m.tier = 2;
        m.metrics.connect_ms = Some(12.25);
        m.metrics.cert_days_left = Some(80);
        m.resolved_ip = Some("93.184.215.14".into());
        let b = upload_body(
            &m,
            Destination {
                organization_id: 1,
                device_id: 7,
            },
            NetworkShare::NONE,
        );
        assert_eq!(b["test_id"], m.id.to_string());
        assert_eq!(b["name"], "tcp tls://example.com:443");
        assert_eq!(
            (b["organization_id"].as_i64(), b["device_id"].as_i64()),
            (Some(1), Some(7))
        );
        assert_eq!(b["status"], "completed");
        assert_eq!(b["duration_ms"], 3012);
        assert_eq!(b["started_at"], "2026-11-22T01:42:00Z");
        assert_eq!(b["completed_at"], "2026-11-22T01:42:03Z");
        assert_eq!(b["metrics"]["latency_ms"], 40.5);
        assert_eq!(b["metrics"]["connect_ms"], 12.25);
        assert_eq!(b["metrics"]["cert_days_left"], 80);
        assert_eq!(b["metadata"]["test_type"], "tcp");
        assert_eq!(b["metadata"]["tier"], 2);
        assert_eq!(b["metadata"]["client"], crate::version::client());
        assert!(b.get("error_message").is_none());

        m.fail(ErrorKind::Timeout, "no answer in 3000 ms");
        let b = upload_body(
            &m,
            Destination {
                organization_id: 1,
                device_id: 7,
            },
            NetworkShare::NONE,
        );
        assert_eq!(b["status"], "failed");
        assert_eq!(b["success"], false);
        assert_eq!(b["error_message"], "timeout: no answer in 3000 ms");
        assert_eq!(b["metadata"]["error_kind"], "timeout");
    }

    #[test]
    fn the_network_goes_as_far_as_the_setting_allows() {
        use crate::netctx::{LinkType, NetworkContext};
        let mut m = Measurement::begin(TestType::Tcp, "a:1");
        m.network_id = Some("0123456789abcdef".into());
        let known = KnownNetwork {
            id: "0123456789abcdef".into(),
            label: Some("Home".into()),
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            results: 1,
            context: NetworkContext {
                network_id: "0123456789abcdef".into(),
                iface: "wlan0".into(),
                link_type: LinkType::Wifi,
                gateway_ip: Some("192.168.1.1".into()),
                gateway_mac: Some("aa:bb:cc:dd:ee:ff".into()),
                ssid: Some("Home Wi-Fi".into()),
                bssid: Some("aa:bb:cc:dd:ee:01".into()),
                ..NetworkContext::default()
            },
        };
        let to = Destination {
            organization_id: 1,
            device_id: 2,
        };
        let body = |sharing| {
            upload_body(
                &m,
                to,
                NetworkShare {
                    sharing,
                    network: Some(&known),
                },
            )
        };
        let none = body(NetworkSharing::None);
        assert!(none["metadata"].get("network_id").is_none());
        assert!(!none.to_string().contains("Home"), "{none}");
        let id = body(NetworkSharing::Id);
        assert_eq!(id["metadata"]["network_id"], "0123456789abcdef");
        assert!(id["metadata"].get("network").is_none());
        for raw in ["Home Wi-Fi", "aa:bb:cc", "192.168.1.1", "wlan0"] {
            assert!(!id.to_string().contains(raw), "{raw} leaked: {id}");
        }
        let all = body(NetworkSharing::Everything);
        let n = &all["metadata"]["network"];
        assert_eq!(all["metadata"]["network_id"], "0123456789abcdef");
        assert_eq!(n["ssid"], "Home Wi-Fi");
        assert_eq!(n["gateway_mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(n["link_type"], "wifi");
        assert_eq!(n["label"], "Home");
        // A result from before network context has none to send.
        let mut old = m.clone();
        old.network_id = None;
        let share = NetworkShare {
            sharing: NetworkSharing::Everything,
            network: Some(&known),
        };
        assert!(upload_body(&old, to, share)["metadata"]
            .get("network")
            .is_none());
    }
}
