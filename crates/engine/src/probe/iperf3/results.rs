//! The results exchange: what this side tells the server, what is read
//! (defensively) from the server's answer, and the figures made of both,
//! each from the receiving side as iperf3 reports them.

use super::{protocol, Counted};
use crate::model::Measurement;
use crate::probe::ProbeError;
use crate::spec::BandwidthSpec;
use serde_json::{json, Value};

/// The results this side sends: what each of its streams moved. The
/// server rejects results without every one of these fields.
pub(super) fn ours(counted: &[Counted]) -> Value {
    let has_retransmits = counted.iter().any(|c| c.sending && c.retransmits.is_some());
    let streams: Vec<Value> = counted
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "bytes": c.bytes,
                "retransmits": c.retransmits.map_or(-1, |r| r as i64),
                "jitter": c.jitter_s,
                "errors": c.lost,
                "omitted_errors": 0,
                "packets": c.packets,
                "omitted_packets": 0,
                "start_time": 0,
                "end_time": c.seconds,
            })
        })
        .collect();
    json!({
        "cpu_util_total": 0,
        "cpu_util_user": 0,
        "cpu_util_system": 0,
        "sender_has_retransmits": i32::from(has_retransmits),
        "streams": streams,
    })
}

/// One stream of the server's results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Theirs {
    pub id: u32,
    pub bytes: u64,
    pub seconds: f64,
    pub retransmits: Option<u64>,
    pub jitter_s: f64,
    pub lost: u64,
    pub packets: u64,
}

pub(super) fn their_stream(v: &Value) -> Option<Theirs> {
    let count = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let start = v.get("start_time").and_then(Value::as_f64).unwrap_or(0.0);
    let end = v.get("end_time")?.as_f64()?;
    Some(Theirs {
        id: u32::try_from(v.get("id")?.as_u64()?).ok()?,
        bytes: v.get("bytes")?.as_u64()?,
        seconds: (end - start).max(0.0),
        retransmits: v
            .get("retransmits")
            .and_then(Value::as_i64)
            .and_then(|r| u64::try_from(r).ok()),
        jitter_s: v
            .get("jitter")
            .and_then(Value::as_f64)
            .filter(|j| j.is_finite() && *j >= 0.0)
            .unwrap_or(0.0),
        lost: count("errors"),
        packets: count("packets"),
    })
}

fn mbps(bytes: u64, seconds: f64) -> Option<f64> {
    (seconds > 0.0).then(|| bytes as f64 * 8.0 / 1e6 / seconds)
}

/// How the datagrams of the UDP streams arrived, at whichever side
/// received them: (datagrams sent as the receiver knows it, lost,
/// out of order where known, jitter in seconds per stream).
#[derive(Default)]
struct Datagrams {
    packets: u64,
    lost: u64,
    out_of_order: Option<u64>,
    jitters: Vec<f64>,
}

/// Upload from the server's (receiving) results, download from what was
/// received here; retransmits from whichever side sent; for UDP, loss and
/// jitter from the receiver (jitter as iperf3 gives it: the mean of the
/// streams').
pub(super) fn figures(
    spec: &BandwidthSpec,
    ours: &[Counted],
    theirs: &Value,
    m: &mut Measurement,
) -> Result<(), ProbeError> {
    let their_streams: Vec<Theirs> = theirs
        .get("streams")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(their_stream).collect())
        .unwrap_or_default();
    let server_retransmits =
        theirs.get("sender_has_retransmits").and_then(Value::as_i64) == Some(1);
    let udp = spec.udp_bitrate.is_some();
    let mut retransmits: Option<u64> = None;
    let mut add = |r: Option<u64>| {
        if let Some(r) = r {
            retransmits = Some(retransmits.unwrap_or(0) + r);
        }
    };
    let mut dg = Datagrams::default();
    let mut seconds: f64 = 0.0;
    let sent: Vec<&Counted> = ours.iter().filter(|c| c.sending).collect();
    if !sent.is_empty() {
        let received: Vec<&Theirs> = their_streams
            .iter()
            .filter(|t| sent.iter().any(|c| c.id == t.id))
            .collect();
        if received.is_empty() {
            return Err(protocol(
                "the iperf3 server's results name none of the streams sent to it",
            ));
        }
        let bytes = received.iter().map(|t| t.bytes).sum();
        let secs = received.iter().map(|t| t.seconds).fold(0.0, f64::max);
        m.metrics.upload_mbps = mbps(bytes, secs);
        seconds = seconds.max(secs);
        for c in &sent {
            add(c.retransmits);
        }
        for t in &received {
            dg.packets += t.packets;
            dg.lost += t.lost;
            dg.jitters.push(t.jitter_s);
        }
    }
    let got: Vec<&Counted> = ours.iter().filter(|c| !c.sending).collect();
    if !got.is_empty() {
        let bytes = got.iter().map(|c| c.bytes).sum();
        let secs = got.iter().map(|c| c.seconds).fold(0.0, f64::max);
        m.metrics.download_mbps = mbps(bytes, secs);
        seconds = seconds.max(secs);
        if server_retransmits {
            for t in their_streams
                .iter()
                .filter(|t| got.iter().any(|c| c.id == t.id))
            {
                add(t.retransmits);
            }
        }
        for c in &got {
            dg.packets += c.packets;
            dg.lost += c.lost;
            dg.jitters.push(c.jitter_s);
            if let Some(o) = c.out_of_order {
                dg.out_of_order = Some(dg.out_of_order.unwrap_or(0) + o);
            }
        }
    }
    m.metrics.streams = Some(spec.streams);
    m.metrics.seconds = Some(seconds);
    if udp {
        let n = dg.jitters.len().max(1) as f64;
        m.metrics.jitter_ms = Some(dg.jitters.iter().sum::<f64>() / n * 1000.0);
        m.metrics.sent = Some(u32::try_from(dg.packets).unwrap_or(u32::MAX));
        m.metrics.received =
            Some(u32::try_from(dg.packets.saturating_sub(dg.lost)).unwrap_or(u32::MAX));
        m.metrics.loss_pct = (dg.packets > 0).then(|| dg.lost as f64 * 100.0 / dg.packets as f64);
        m.metrics.out_of_order = dg.out_of_order;
    } else {
        m.metrics.retransmits = retransmits;
    }
    let moved = m.metrics.upload_mbps.unwrap_or(0.0) + m.metrics.download_mbps.unwrap_or(0.0);
    // What the test moved, both ways, slow start included (about: the
    // measured rates over the whole test), for the daily data budget.
    let whole = f64::from(spec.seconds + if udp { 0 } else { spec.omit });
    m.metrics.bytes = Some((moved * 1e6 / 8.0 * whole).round() as u64);
    if moved <= 0.0 {
        return Err(protocol(format!(
            "nothing was transferred in {} s ({} ms to connect)",
            spec.seconds,
            m.metrics.connect_ms.map_or(0.0, |c| c.round())
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_results_are_read_defensively() {
        let v = json!({"id": 1, "bytes": 1000, "start_time": 0, "end_time": 2.0,
                       "retransmits": -1, "jitter": 0.001, "errors": 3, "packets": 100});
        let t = their_stream(&v).unwrap();
        assert_eq!(
            (t.id, t.bytes, t.seconds, t.retransmits),
            (1, 1000, 2.0, None)
        );
        assert_eq!((t.lost, t.packets), (3, 100));
        assert_eq!(their_stream(&json!({"id": "x"})), None);
        assert_eq!(
            their_stream(&json!({"id": 1, "bytes": -5, "end_time": 1})),
            None
        );
        let nan = json!({"id": 1, "bytes": 1, "end_time": 1, "jitter": -3.0});
        assert_eq!(their_stream(&nan).map(|t| t.jitter_s), Some(0.0));
    }
}
