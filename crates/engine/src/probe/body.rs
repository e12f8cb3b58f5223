//! What HTTP/1.1, HTTP/2 and HTTP/3 share once a response arrives: the body
//! counted up to its limit, and the transfer's figures.

use super::ms;
use crate::model::Measurement;
use std::time::Instant;

/// Body bytes counted up to `probe.max_body_bytes`: a longer body is cut
/// there, and says so. Shared by HTTP/1.1, HTTP/2 and HTTP/3.
pub(crate) struct BodyCount {
    pub bytes: u64,
    max: u64,
    truncated: bool,
}

impl BodyCount {
    pub fn new(max: u64) -> BodyCount {
        BodyCount {
            bytes: 0,
            max,
            truncated: false,
        }
    }

    /// Counts a chunk; `false` once the limit is passed (stop reading).
    pub fn add(&mut self, len: usize) -> bool {
        let room = self.max.saturating_sub(self.bytes);
        let len = len as u64;
        if len > room {
            self.bytes += room;
            self.truncated = true;
            return false;
        }
        self.bytes += len;
        true
    }

    pub fn record(&self, m: &mut Measurement) {
        m.metrics.body_truncated = self.truncated.then_some(true);
    }
}

/// Records the end of a response read now: `total_ms` from `start`, the
/// body bytes and their rate since the request was `sent`; the headline
/// latency is the TTFB. Shared by HTTP/1.1, HTTP/2 and HTTP/3.
pub(crate) fn record_transfer(m: &mut Measurement, start: Instant, sent: Instant, bytes: u64) {
    let end = Instant::now();
    m.metrics.total_ms = Some(ms(end - start));
    m.metrics.bytes = Some(bytes);
    let transfer = (end - sent).as_secs_f64();
    m.metrics.throughput_mbps =
        (bytes > 0 && transfer > 0.0).then(|| bytes as f64 * 8.0 / 1e6 / transfer);
    m.latency_ms = m.metrics.ttfb_ms;
}
