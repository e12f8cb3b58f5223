//! Every default a test falls back to, in one place: the config file's
//! defaults, the CLI's flag defaults and the probes' own all read these.

use std::ops::RangeInclusive;

/// `[probe] timeout_ms`: how long any test may run beyond its planned
/// pacing (for a single exchange such as an HTTP fetch, the whole test).
pub const TIMEOUT_MS: u64 = 10_000;
/// The range a time limit or reply wait may take, in milliseconds.
pub const TIMEOUT_RANGE_MS: RangeInclusive<u64> = 100..=600_000;
/// `[probe] max_redirects`.
pub const MAX_REDIRECTS: u32 = 10;
/// `[probe] max_body_bytes`.
pub const MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// DNS: the record type asked for, and the server port.
pub const DNS_RECORD_TYPE: &str = "A";
pub const DNS_PORT: u16 = 53;

/// ICMP echo: probes, spacing, payload bytes (as `ping`), reply wait.
pub const ICMP_COUNT: u32 = 10;
pub const ICMP_INTERVAL_MS: u64 = 200;
pub const ICMP_SIZE: usize = 56;
pub const ICMP_REPLY_WAIT_MS: u64 = 2_000;
/// ICMP payload range.
pub const ICMP_SIZES: RangeInclusive<usize> = 0..=65_000;

/// UDP echo: as ICMP, with a 64-byte datagram.
pub const UDP_COUNT: u32 = ICMP_COUNT;
pub const UDP_INTERVAL_MS: u64 = ICMP_INTERVAL_MS;
pub const UDP_SIZE: usize = 64;
pub const UDP_REPLY_WAIT_MS: u64 = ICMP_REPLY_WAIT_MS;
/// Datagram bytes: at least the 12-byte sequence and time header.
pub const UDP_SIZES: RangeInclusive<usize> = 12..=65_000;

/// Probes a sampled test may send, and the spacing between them.
pub const COUNT_RANGE: RangeInclusive<u32> = 1..=10_000;
pub const INTERVAL_RANGE_MS: RangeInclusive<u64> = 10..=60_000;

/// Traceroute / MTR.
pub const TRACE_MAX_HOPS: u8 = 30;
pub const TRACE_HOPS: RangeInclusive<u8> = 1..=64;
pub const TRACE_ROUNDS: u32 = 1;
pub const TRACE_INTERVAL_MS: u64 = 1_000;
pub const TRACE_REPLY_WAIT_MS: u64 = 1_000;

/// TCP and UDP traceroute: the port probed when none is given (HTTPS for
/// TCP; the first of traceroute's classic UDP ports).
pub const TRACE_TCP_PORT: u16 = 443;
pub const TRACE_UDP_PORT: u16 = 33_434;

/// Port checks: how long each connect may wait for an answer before the
/// port counts as filtered, how many connects run at once, and the most
/// ports one check may list (a reachability check, not a scanner).
pub const PORTS_CONNECT_WAIT_MS: u64 = 2_000;
pub const PORTS_CONCURRENCY: usize = 8;
pub const PORTS_MAX: usize = 64;

/// Path MTU discovery: the largest packet tried, and the reply wait.
pub const MTU_MAX: u32 = 9_000;
pub const MTU_SIZES: RangeInclusive<u32> = 576..=65_535;
pub const MTU_REPLY_WAIT_MS: u64 = 1_000;

/// Bandwidth: the iperf3 server port, parallel streams, seconds measured,
/// seconds of TCP slow start left out before them, and their ranges.
pub const IPERF3_PORT: u16 = 5201;
pub const BANDWIDTH_STREAMS: u32 = 4;
pub const BANDWIDTH_STREAM_RANGE: RangeInclusive<u32> = 1..=32;
pub const BANDWIDTH_SECONDS: u32 = 10;
pub const BANDWIDTH_SECONDS_RANGE: RangeInclusive<u32> = 1..=300;
pub const BANDWIDTH_OMIT: u32 = 1;
pub const BANDWIDTH_OMIT_RANGE: RangeInclusive<u32> = 0..=30;
/// UDP bandwidth: the bitrate per stream when none is given (iperf3's
/// default) and the range accepted.
pub const UDP_BITRATE: u64 = 1_000_000;
pub const UDP_BITRATE_RANGE: RangeInclusive<u64> = 1_000..=10_000_000_000;
/// A busy bandwidth server (an iperf3 server runs one test at a time) is
/// tried again this many times, this long apart, in scheduled runs.
pub const BUSY_RETRIES: u32 = 2;
pub const BUSY_WAIT_S: u64 = 20;
/// What AutoPerf's bandwidth tests may move in a day, in MB: a few tier 2
/// tests and one tier 3 test on a 100 Mbit/s link.
pub const BANDWIDTH_BUDGET_MB: u32 = 2_000;
/// AutoPerf's tier 3 bandwidth test: 60 s in both directions.
pub const TIER3_BANDWIDTH_SECONDS: u32 = 60;
