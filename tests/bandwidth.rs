//! Bandwidth over the iperf3 protocol, against Debian's `iperf3 -s`:
//! every mode (upload, `--reverse`, `--bidir`, parallel streams, UDP at a
//! set bitrate) next to iperf3's own client run against the same server in
//! the same test, and the figures checked against injected truth: a
//! 50 Mbit/s token bucket each way between namespaces, the bitrate UDP is
//! paced at, random loss on the server's side. A busy server is `busy`, not
//! down, and is tried again; garbage and silence fail with a clear error.
//! Each prints measured vs truth and fails outside its stated bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::free_port;
use support::iperf::{close, iperf3_client, measure, Iperf3Report, Iperf3Server, QueuedServer};
use support::netns::NetPair;
use support::servers::SilentServer;
use waddleperf_engine::autoperf::{tier1_breaches, tier2_breaches};
use waddleperf_engine::config::Thresholds;
use waddleperf_engine::kinds::Direction;
use waddleperf_engine::model::{ErrorKind, Measurement};
use waddleperf_engine::probe::bandwidth::BandwidthProbe;
use waddleperf_engine::probe::Probe;
use waddleperf_engine::spec::{BandwidthSpec, HostPort};

/// Bandwidth tests load the link and two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The token bucket's rate, and the TCP goodput it leaves: each 1514-byte
/// Ethernet frame the bucket counts carries 1448 bytes of payload (1500
/// MTU less IPv4, TCP and timestamp headers).
const RATE_MBIT: f64 = 50.0;
const TCP_GOODPUT_MBIT: f64 = RATE_MBIT * 1448.0 / 1514.0;
/// Stated bound, against the truth and against iperf3's own client.
const WITHIN: f64 = 0.05;
/// Both directions at once through two drop-tail queues interfere: each
/// direction's ACKs wait behind the other's data, so the split between the
/// two moves from run to run, for iperf3's client as for ours (measured
/// here: 43 to 48 Mbit/s a direction, 39 once). Each direction is held to
/// this, their sum to twice `WITHIN`.
const BIDIR_WITHIN: f64 = 0.2;

/// A 3 s test (1 s left out first). The server may still be putting
/// the reference client's test away: a busy answer is tried again after a
/// second, up to twice.
fn spec(server: SocketAddr) -> BandwidthSpec {
    BandwidthSpec {
        seconds: 3,
        omit: 1,
        busy_retries: 2,
        busy_wait: Duration::from_secs(1),
        ..BandwidthSpec::new(HostPort {
            host: server.ip().to_string(),
            port: server.port(),
        })
    }
}

fn ok(name: &str, m: &Measurement) {
    assert!(m.success, "{name}: {m:?}");
    assert_eq!(m.metrics.server_kind.as_deref(), Some("iperf3"), "{name}");
}

/// Each TCP mode against one `iperf3 -s` on loopback, next to iperf3's
/// client in the same mode. Loopback is limited by the CPU (two cores, our
/// client a debug build), so the two agree only roughly; the exchange is
/// what this checks: the server accepts our parameters, streams and
/// results, and each direction's figure is the receiver's.
#[tokio::test]
async fn every_tcp_mode_interoperates_with_iperf3_on_loopback() {
    let _serial = support::timing::serial(&SERIAL).await;
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    let cases: [(&str, Direction, u32, &[&str]); 4] = [
        ("upload, 1 stream", Direction::Upload, 1, &[]),
        ("upload, 4 streams", Direction::Upload, 4, &["-P", "4"]),
        (
            "download (reverse)",
            Direction::Download,
            2,
            &["-P", "2", "-R"],
        ),
        (
            "bidirectional",
            Direction::Bidir,
            2,
            &["-P", "2", "--bidir"],
        ),
    ];
    for (name, direction, streams, args) in cases {
        let m = measure(BandwidthSpec {
            direction,
            streams,
            ..spec(server.addr)
        })
        .await;
        ok(name, &m);
        let mut a = vec!["-t", "3", "-O", "1"];
        a.extend_from_slice(args);
        let reference = iperf3_client(server.addr, &a);
        assert_eq!(m.metrics.streams, Some(streams), "{name}");
        let secs = m.metrics.seconds.unwrap();
        assert!((2.9..3.3).contains(&secs), "{name}: measured {secs} s");
        for (what, ours, theirs) in [
            ("upload", m.metrics.upload_mbps, reference.upload_mbps),
            ("download", m.metrics.download_mbps, reference.download_mbps),
        ] {
            assert_eq!(ours.is_some(), theirs.is_some(), "{name}: {what}: {m:?}");
            if let (Some(o), Some(t)) = (ours, theirs) {
                println!("{name}: {what} ours {o:.0} Mbit/s, iperf3 {t:.0} Mbit/s");
                assert!(o > 0.0, "{name}: {what}");
            }
        }
        // Both ways at once on loopback, the two directions compete for the
        // same two cores, and which one wins moves from run to run (for
        // iperf3's client too): only their sum compares.
        let sum = |u: Option<f64>, d: Option<f64>| u.unwrap_or(0.0) + d.unwrap_or(0.0);
        let (o, t) = (
            sum(m.metrics.upload_mbps, m.metrics.download_mbps),
            sum(reference.upload_mbps, reference.download_mbps),
        );
        assert!(o > t / 3.0, "{name}: {o:.0} Mbit/s vs iperf3's {t:.0}");
        // Retransmits come from the sender's side, wherever it is.
        assert!(m.metrics.retransmits.is_some(), "{name}: {m:?}");
    }
}

/// UDP at a set bitrate on loopback: the rate is the truth (nothing on
/// loopback limits 20 Mbit/s), nothing is lost, and iperf3's own client at
/// the same bitrate says the same.
#[tokio::test]
async fn udp_is_paced_at_its_bitrate_and_reports_loss_and_jitter() {
    let _serial = support::timing::serial(&SERIAL).await;
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    const BITRATE: u64 = 20_000_000;
    for (name, direction, args) in [
        ("UDP upload", Direction::Upload, &["-u", "-b", "20M"][..]),
        (
            "UDP download",
            Direction::Download,
            &["-u", "-b", "20M", "-R"][..],
        ),
    ] {
        let m = measure(BandwidthSpec {
            direction,
            streams: 1,
            udp_bitrate: Some(BITRATE),
            ..spec(server.addr)
        })
        .await;
        ok(name, &m);
        let reference = iperf3_client(server.addr, &[&["-t", "3"][..], args].concat());
        let ours = m.metrics.upload_mbps.or(m.metrics.download_mbps).unwrap();
        let theirs = reference.upload_mbps.or(reference.download_mbps).unwrap();
        close(name, "Mbit/s vs the bitrate:", ours, 20.0, WITHIN);
        close(name, "Mbit/s vs iperf3:", ours, theirs, WITHIN);
        assert_eq!(
            m.target,
            format!(
                "iperf3://{} {}udp",
                server.addr,
                match direction {
                    Direction::Download => "download ",
                    _ => "",
                }
            )
        );
        let sent = m.metrics.sent.unwrap();
        // 20 Mbit/s of 1400-byte datagrams for 3 s.
        let expected = 20e6 / 8.0 / 1400.0 * 3.0;
        assert!(
            (f64::from(sent) - expected).abs() / expected < WITHIN,
            "{name}: {sent} datagrams, about {expected:.0} expected"
        );
        assert_eq!(m.metrics.loss_pct, Some(0.0), "{name}: {m:?}");
        let jitter = m.metrics.jitter_ms.unwrap();
        println!(
            "{name}: jitter ours {jitter:.3} ms, iperf3 {:.3} ms",
            reference.jitter_ms.unwrap()
        );
        assert!(jitter < 1.0, "{name}: jitter {jitter} ms on loopback");
        assert_eq!(reference.lost_pct, Some(0.0), "{name}: {reference:?}");
        if direction == Direction::Download {
            assert_eq!(m.metrics.out_of_order, Some(0), "{name}");
        }
    }
}

/// The truth: a 50 Mbit/s token bucket on each side of a namespace pair.
/// Upload, download and both at once each measure the TCP goodput of the
/// bucket within 5 %, and within 5 % of iperf3's own client on the same
/// path in the same test.
#[tokio::test]
async fn tcp_figures_match_a_50_mbit_link_and_iperf3() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    pair.rate_both(&format!("{RATE_MBIT}mbit"));
    let server = Iperf3Server::start(&pair.peer_ip.to_string(), 5201, Some(&pair.ns));
    let cases: [(&str, Direction, &[&str]); 3] = [
        ("upload", Direction::Upload, &[]),
        ("download", Direction::Download, &["-R"]),
        ("bidirectional", Direction::Bidir, &["--bidir"]),
    ];
    for (name, direction, args) in cases {
        let m = measure(BandwidthSpec {
            direction,
            streams: 4,
            seconds: 4,
            omit: 2,
            ..spec(server.addr)
        })
        .await;
        ok(name, &m);
        let bound = if direction == Direction::Bidir {
            BIDIR_WITHIN
        } else {
            WITHIN
        };
        // The reference is only one where it measured the link's known
        // goodput itself: a run of iperf3 the shared machine slowed (seen
        // once: 36 Mbit/s of a 47.8 Mbit/s link) is measured again, twice
        // at most.
        let mut reference: Iperf3Report = iperf3_client(
            server.addr,
            &[&["-t", "4", "-O", "2", "-P", "4"][..], args].concat(),
        );
        for _ in 0..2 {
            let missed = [reference.upload_mbps, reference.download_mbps]
                .into_iter()
                .flatten()
                .any(|t| (t - TCP_GOODPUT_MBIT).abs() > TCP_GOODPUT_MBIT * bound);
            if !missed {
                break;
            }
            println!(
                "{name}: iperf3 itself missed the link's goodput (up {:?}, down {:?} Mbit/s): measuring the reference again",
                reference.upload_mbps, reference.download_mbps
            );
            reference = iperf3_client(
                server.addr,
                &[&["-t", "4", "-O", "2", "-P", "4"][..], args].concat(),
            );
        }
        let mut checks = Vec::new();
        for (what, ours, theirs) in [
            ("upload", m.metrics.upload_mbps, reference.upload_mbps),
            ("download", m.metrics.download_mbps, reference.download_mbps),
        ] {
            assert_eq!(ours.is_some(), theirs.is_some(), "{name}: {what}: {m:?}");
            if let (Some(o), Some(t)) = (ours, theirs) {
                checks.push((
                    format!("{what} Mbit/s vs the link's goodput:"),
                    o,
                    TCP_GOODPUT_MBIT,
                    bound,
                ));
                checks.push((format!("{what} Mbit/s vs iperf3:"), o, t, bound));
            }
        }
        if let (Some(u), Some(d)) = (m.metrics.upload_mbps, m.metrics.download_mbps) {
            let what = "both ways together vs twice the goodput:".to_owned();
            checks.push((what, u + d, 2.0 * TCP_GOODPUT_MBIT, 2.0 * WITHIN));
        }
        // All printed first, so a failure shows every figure of the case.
        for (what, o, t, _) in &checks {
            println!(
                "{name}: {what} ours {o:.2}, reference {t:.2} ({:+.1} %)",
                (o - t) / t * 100.0
            );
        }
        for (what, o, t, b) in checks {
            close(name, &what, o, t, b);
        }
    }
}

/// UDP through the 50 Mbit/s link with 10 % of the server's packets
/// dropped: a download at 10 Mbit/s loses 10 % (within four standard
/// deviations of the count), as iperf3 says on the same path; an upload
/// (nothing dropped that way) loses nothing and arrives at its bitrate.
#[tokio::test]
async fn udp_loss_matches_injected_loss_and_iperf3() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    pair.rate_both(&format!("{RATE_MBIT}mbit"));
    let server = Iperf3Server::start(&pair.peer_ip.to_string(), 5201, Some(&pair.ns));
    let up = measure(BandwidthSpec {
        streams: 1,
        seconds: 4,
        udp_bitrate: Some(10_000_000),
        ..spec(server.addr)
    })
    .await;
    ok("UDP upload", &up);
    close(
        "UDP upload",
        "Mbit/s vs the bitrate:",
        up.metrics.upload_mbps.unwrap(),
        10.0,
        WITHIN,
    );
    assert_eq!(up.metrics.loss_pct, Some(0.0), "{up:?}");

    let _loss = pair.udp_loss_from_peer(0.1, 1000);
    let down = measure(BandwidthSpec {
        direction: Direction::Download,
        streams: 1,
        seconds: 4,
        udp_bitrate: Some(10_000_000),
        ..spec(server.addr)
    })
    .await;
    ok("UDP download", &down);
    let reference = iperf3_client(
        server.addr,
        &["-u", "-b", "10M", "-R", "-t", "4", "-l", "1400"],
    );
    let n = f64::from(down.metrics.sent.unwrap());
    let sd = (n * 0.1 * 0.9).sqrt() / n * 100.0;
    let loss = down.metrics.loss_pct.unwrap();
    let theirs = reference.lost_pct.unwrap();
    println!(
        "UDP download: loss truth 10 %, ours {loss:.2} % of {n} datagrams, iperf3 {theirs:.2} % (bound ±{:.2})",
        4.0 * sd
    );
    assert!((loss - 10.0).abs() <= 4.0 * sd, "ours {loss}");
    assert!((theirs - 10.0).abs() <= 4.0 * sd, "iperf3 {theirs}");
    assert!(down.metrics.received < down.metrics.sent);
    // What arrived: 90 % of the bitrate.
    close(
        "UDP download",
        "Mbit/s vs 90 % of the bitrate:",
        down.metrics.download_mbps.unwrap(),
        9.0,
        0.08,
    );
}

/// An iperf3 server runs one test at a time: while another client's runs,
/// ours is `busy`, which is no breach (the network is not down); tried
/// again after a wait, it measures once the server is free.
#[tokio::test]
async fn a_busy_server_is_busy_not_down_and_is_tried_again() {
    let _serial = support::timing::serial(&SERIAL).await;
    let server = Iperf3Server::start("127.0.0.1", free_port(), None);
    let other = std::process::Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &server.addr.port().to_string(),
            "-t",
            "3",
            "-b",
            "10M",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut other = support::servers::Proc {
        child: other,
        name: "iperf3 -c",
        log: None,
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let busy = measure(BandwidthSpec {
        busy_retries: 0,
        ..spec(server.addr)
    })
    .await;
    assert!(!busy.success);
    assert_eq!(busy.error_kind, Some(ErrorKind::Busy), "{busy:?}");
    assert!(busy.error.as_deref().unwrap().contains("busy"), "{busy:?}");
    let t = Thresholds::default();
    assert!(tier1_breaches(&busy, &t).is_empty());
    assert!(tier2_breaches(&busy, &t).is_empty());

    let start = Instant::now();
    let retried = measure(BandwidthSpec {
        seconds: 1,
        omit: 0,
        busy_retries: 3,
        busy_wait: Duration::from_secs(2),
        ..spec(server.addr)
    })
    .await;
    ok("tried again", &retried);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "it waited for the server"
    );
    assert!(other.child.wait().unwrap().success());
}

/// Not an iperf3 server: one that answers like a web server fails at once
/// naming it; one that accepts and says nothing fails at the time limit.
#[tokio::test]
async fn garbage_and_silence_fail_clearly() {
    let web = SilentServer::start(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let m = measure(spec(web.addr)).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Protocol), "{m:?}");
    let e = m.error.unwrap();
    assert!(e.contains("is it an iperf3 server?"), "{e}");

    let silent = SilentServer::start(b"");
    let start = Instant::now();
    let m = measure(BandwidthSpec {
        seconds: 1,
        omit: 0,
        timeout: Duration::from_millis(500),
        ..spec(silent.addr)
    })
    .await;
    assert_eq!(m.error_kind, Some(ErrorKind::Timeout), "{m:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// Bufferbloat: a router between this machine and the server forwards at
/// 20 Mbit/s each way, its token bucket queueing up to 300 ms (deep) or
/// 2 ms (shallow). (The queue is on a router, as on a real path: in the
/// sender's own qdisc, TCP small queues would keep it nearly empty.)
///
/// The truth: a UDP upload at 30 Mbit/s keeps the queue full, so every
/// echo sent beside it waits the whole queue (its limit plus a burst of
/// 1.6 ms). TCP fills it only partly in a short test (how far depends on
/// its congestion control), so with TCP the check is `ping` run during the
/// same load, and the grade's side of the scale. `ping` agrees in every case.
#[tokio::test]
async fn latency_under_load_shows_the_queue_a_test_fills() {
    let _serial = support::timing::serial(&SERIAL).await;
    let mut tcp_increase = Vec::new();
    for (queue_ms, udp) in [(300.0, true), (300.0, false), (2.0, true), (2.0, false)] {
        let name = format!(
            "{} queue, {}",
            if queue_ms > 100.0 { "deep" } else { "shallow" },
            if udp {
                "UDP at 30 Mbit/s"
            } else {
                "TCP, 16 streams"
            }
        );
        let path = QueuedServer::start("20mbit", queue_ms);
        let (server, target) = (&path.server, path.target());
        // ping over the measured seconds: the probe pings idle for 1 s,
        // then leaves 2 s out, then measures 6 s (TCP fills the queue
        // more as they go, so the two must watch the same seconds).
        let reference = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(3_200));
            support::ping(target.into(), 56, "0.1", "3")
        });
        let m = measure(BandwidthSpec {
            streams: if udp { 1 } else { 16 },
            seconds: 6,
            omit: 2,
            udp_bitrate: udp.then_some(30_000_000),
            ..spec(server.addr)
        })
        .await;
        ok(&name, &m);
        let ping_median = reference.join().unwrap().median;
        let x = &m.metrics;
        let (idle, loaded) = (m.latency_ms.unwrap(), x.loaded_latency_up_ms.unwrap());
        let increase = x.latency_increase_ms.unwrap();
        let grade = x.bufferbloat_grade.clone().unwrap();
        println!(
            "{name} ({queue_ms} ms): idle {idle:.2} ms, loaded {loaded:.2} ms (ping under the same load {ping_median:.2} ms), \
             increase {increase:.2} ms, grade {grade}, upload {:.2} Mbit/s",
            x.upload_mbps.unwrap()
        );
        assert_eq!(x.loaded_latency_ms, x.loaded_latency_up_ms);
        assert!(idle < 5.0, "{name}: idle {idle} ms on a bare link");
        // Stated agreement: 10 % on a full queue (UDP); 25 % while TCP
        // fills it (ping's echoes start and stop a moment apart from ours);
        // at least 2 ms (a shallow queue's delay is a few milliseconds,
        // the grade's finest step 5).
        let agree = if udp { 0.1 } else { 0.25 };
        assert!(
            (loaded - ping_median).abs() <= (agree * ping_median).max(2.0),
            "{name}: ours {loaded:.1} ms vs ping {ping_median:.1} ms under the same load"
        );
        let full = queue_ms + 1.6;
        match (queue_ms > 100.0, udp) {
            (true, true) => {
                assert!(
                    (increase - full).abs() <= 0.08 * full,
                    "{name}: {increase} ms, truth {full}"
                );
                assert_eq!(grade, "D", "{name}");
            }
            (true, false) => {
                assert!(
                    increase >= 60.0 && increase <= full + 10.0,
                    "{name}: {increase} ms"
                );
                assert!(["C", "D"].contains(&grade.as_str()), "{name}: {grade}");
                tcp_increase.push(increase);
            }
            (false, true) => {
                assert!(
                    (increase - full).abs() <= 1.5,
                    "{name}: {increase} ms, truth {full}"
                );
                assert_eq!(grade, "A+", "{name}");
            }
            (false, false) => {
                assert!(increase <= full + 2.0, "{name}: {increase} ms");
                assert_eq!(grade, "A+", "{name}");
                tcp_increase.push(increase);
            }
        }
    }
    assert!(tcp_increase[0] > tcp_increase[1] * 5.0, "{tcp_increase:?}");
}

/// Live progress through a 50 Mbit/s link: each second's rate is the
/// link's goodput within 10 % (a second is short: a loss and its recovery
/// move it), and the loaded latency comes with it.
#[tokio::test]
async fn live_progress_follows_the_link_rate() {
    use waddleperf_engine::probe::bandwidth::Progress;
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    pair.rate_both(&format!("{RATE_MBIT}mbit"));
    let server = Iperf3Server::start(&pair.peer_ip.to_string(), 5201, Some(&pair.ns));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let m = BandwidthProbe {
        spec: BandwidthSpec {
            direction: Direction::Download,
            seconds: 4,
            omit: 2,
            ..spec(server.addr)
        },
        tier: 1,
        progress: Some(Progress(tx)),
    }
    .run()
    .await;
    ok("download", &m);
    let mut seen = Vec::new();
    while let Ok(i) = rx.try_recv() {
        seen.push(i);
    }
    for i in &seen {
        println!(
            "{:.2} s: {:?} Mbit/s, latency {:?} ms",
            i.elapsed_s, i.download_mbps, i.loaded_latency_ms
        );
    }
    assert!((3..=5).contains(&seen.len()), "{seen:?}");
    // The last second may be cut short by the end of the window.
    for i in seen
        .iter()
        .filter(|i| i.elapsed_s > 0.9 && i.elapsed_s < 3.9)
    {
        close(
            "each second",
            "Mbit/s vs goodput:",
            i.download_mbps.unwrap(),
            TCP_GOODPUT_MBIT,
            0.1,
        );
        assert!(i.loaded_latency_ms.is_some(), "{i:?}");
    }
}
