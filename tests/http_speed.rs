//! The HTTP speed tests (WaddlePerf, LibreSpeed) and responsiveness (RPM)
//! against `waddleperf serve`: on loopback every kind and path works; in
//! a namespace pair behind a 50 Mbit/s token bucket each kind measures the
//! link's goodput within 5 %, next to curl fetching from the same peer in
//! the same test; behind a router with a deep queue the latency increase
//! is the queue's and the grade poor, with a shallow one it is good, next
//! to ping under the same load, and RPM orders the two paths the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::process::Command;
use std::time::Duration;
use support::free_port;
use support::iperf::{close, measure};
use support::netns::NetPair;
use support::peer::{QueuedPeer, ServePeer};
use waddleperf_engine::kinds::{BandwidthKind, Direction};
use waddleperf_engine::model::ErrorKind;
use waddleperf_engine::spec::BandwidthSpec;

/// Speed tests load the link and two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The token bucket's rate and the TCP goodput it leaves (1448 payload
/// bytes in each 1514-byte frame), and the stated bound.
const RATE_MBIT: f64 = 50.0;
const TCP_GOODPUT_MBIT: f64 = RATE_MBIT * 1448.0 / 1514.0;
const WITHIN: f64 = 0.05;

const KINDS: [BandwidthKind; 3] = [
    BandwidthKind::Waddleperf,
    BandwidthKind::Librespeed,
    BandwidthKind::Rpm,
];

fn spec(kind: BandwidthKind, url: &str) -> BandwidthSpec {
    BandwidthSpec {
        seconds: 4,
        omit: 2,
        direction: Direction::Bidir,
        ..BandwidthSpec::for_server(kind, url).unwrap()
    }
}

/// curl's own figure for fetching `mib` MiB from `url` (from inside `ns`
/// when given): its average download speed in Mbit/s.
fn curl_download_mbps(url: &str, ns: Option<&str>) -> f64 {
    let mut c = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n, "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    let out = c
        .args(["-s", "-o", "/dev/null", "-w", "%{speed_download}"])
        .arg(url)
        .output()
        .expect("cannot run curl");
    let bytes_per_s: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    bytes_per_s * 8.0 / 1e6
}

/// Each kind against the peer on loopback: both directions measured, the
/// figures every kind has, LibreSpeed with and without `.php` and under
/// `/backend/`, RPM with its confidence.
#[tokio::test]
async fn every_kind_works_against_serve_on_loopback() {
    let _serial = support::timing::serial(&SERIAL).await;
    let peer = ServePeer::start("127.0.0.1", free_port(), None, &[]);
    let bases = [
        (BandwidthKind::Waddleperf, peer.url()),
        (BandwidthKind::Librespeed, peer.url()),
        (BandwidthKind::Librespeed, format!("{}backend", peer.url())),
        (BandwidthKind::Rpm, peer.url()),
    ];
    for (kind, url) in bases {
        let name = format!("{} at {url}", kind.as_str());
        let m = measure(BandwidthSpec {
            seconds: 2,
            omit: 1,
            ..spec(kind, &url)
        })
        .await;
        assert!(m.success, "{name}: {m:?}");
        let x = &m.metrics;
        println!(
            "{name}: down {:?} up {:?} Mbit/s, idle {:?} ms, loaded {:?} ms, rpm {:?} ({:?})",
            x.download_mbps,
            x.upload_mbps,
            m.latency_ms,
            x.loaded_latency_ms,
            x.rpm,
            x.rpm_confidence
        );
        assert_eq!(x.server_kind.as_deref(), Some(kind.as_str()), "{name}");
        assert!(x.download_mbps.unwrap() > 100.0, "{name}");
        assert!(x.upload_mbps.unwrap() > 100.0, "{name}");
        assert!(m.latency_ms.unwrap() < 20.0, "{name}");
        assert!(
            x.loaded_latency_down_ms.is_some() && x.loaded_latency_up_ms.is_some(),
            "{name}"
        );
        assert!(x.bufferbloat_grade.is_some(), "{name}");
        assert_eq!(m.resolved_ip.as_deref(), Some("127.0.0.1"), "{name}");
        if kind == BandwidthKind::Rpm {
            assert!(x.rpm.unwrap() > 100.0, "{name}");
            assert!(x.rpm_confidence.is_some(), "{name}");
        } else {
            assert_eq!(x.streams, Some(4), "{name}");
            let secs = x.seconds.unwrap();
            assert!(
                (3.8..4.6).contains(&secs),
                "{name}: measured {secs} s (2 + 2)"
            );
        }
    }
}

/// Through 50 Mbit/s each way, download then upload: every kind measures
/// the link's goodput within 5 %, and curl's download from the same peer
/// agrees.
#[tokio::test]
async fn every_kind_measures_a_50_mbit_link() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    pair.rate_both(&format!("{RATE_MBIT}mbit"));
    let peer = ServePeer::start(&pair.peer_ip.to_string(), 8080, Some(&pair.ns), &[]);
    let curl = curl_download_mbps(&format!("{}speedtest/download?size=20", peer.url()), None);
    close(
        "curl",
        "download Mbit/s vs the link's goodput:",
        curl,
        TCP_GOODPUT_MBIT,
        WITHIN,
    );
    for kind in KINDS {
        let name = kind.as_str();
        let m = measure(BandwidthSpec {
            seconds: if kind == BandwidthKind::Rpm { 8 } else { 4 },
            ..spec(kind, &peer.url())
        })
        .await;
        assert!(m.success, "{name}: {m:?}");
        let (d, u) = (
            m.metrics.download_mbps.unwrap(),
            m.metrics.upload_mbps.unwrap(),
        );
        println!(
            "{name}: rpm {:?} ({:?})",
            m.metrics.rpm, m.metrics.rpm_confidence
        );
        close(
            name,
            "download Mbit/s vs the link's goodput:",
            d,
            TCP_GOODPUT_MBIT,
            WITHIN,
        );
        close(name, "download Mbit/s vs curl:", d, curl, WITHIN);
        close(
            name,
            "upload Mbit/s vs the link's goodput:",
            u,
            TCP_GOODPUT_MBIT,
            WITHIN,
        );
        // What the data budget counts: both directions' bytes, slow start
        // included: most of the measured seconds' worth at least, at most
        // the link's rate all along.
        let bytes = m.metrics.bytes.unwrap() as f64;
        let measured = (d + u) / 2.0 * 1e6 / 8.0 * m.metrics.seconds.unwrap();
        let most = RATE_MBIT * 1e6 / 8.0 * m.duration_ms / 1000.0;
        assert!(
            bytes >= 0.8 * measured && bytes <= most,
            "{name}: {bytes} bytes, measured {measured}, at most {most}"
        );
    }
}

/// A 20 Mbit/s router with a deep (300 ms) and a shallow (10 ms) queue,
/// loaded by a download: the WaddlePerf test's latency increase is the
/// queue's (ping under the same load says the same), its grade poor on
/// the deep queue and good on the shallow one; RPM is lower on the deep
/// one, with the same grades.
#[tokio::test]
async fn bufferbloat_is_graded_and_rpm_orders_the_paths() {
    let _serial = support::timing::serial(&SERIAL).await;
    let mut rpms = Vec::new();
    for queue_ms in [300.0, 10.0] {
        let deep = queue_ms > 100.0;
        let path = QueuedPeer::start("20mbit", queue_ms);
        let target = path.chain.target();
        // ping over the measured seconds: 1.5 s idle requests, then 2 s
        // left out, then 6 s measured.
        let reference = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(4_500));
            support::ping(target.into(), 40, "0.1", "3")
        });
        let m = measure(BandwidthSpec {
            direction: Direction::Download,
            seconds: 6,
            ..spec(BandwidthKind::Waddleperf, &path.server.url())
        })
        .await;
        assert!(m.success, "{m:?}");
        let ping_median = reference.join().unwrap().median;
        let x = &m.metrics;
        let (idle, loaded) = (m.latency_ms.unwrap(), x.loaded_latency_down_ms.unwrap());
        let increase = x.latency_increase_ms.unwrap();
        let grade = x.bufferbloat_grade.clone().unwrap();
        println!(
            "{queue_ms} ms queue: idle {idle:.2} ms, loaded {loaded:.2} ms (ping under the same load {ping_median:.2} ms), \
             increase {increase:.2} ms, grade {grade}, download {:.2} Mbit/s",
            x.download_mbps.unwrap()
        );
        // HTTP requests on a kept-alive connection see the queue as ping
        // does: within 25 % (TCP fills the queue as it goes) or 3 ms.
        assert!(
            (loaded - ping_median).abs() <= (0.25 * ping_median).max(3.0),
            "ours {loaded:.1} ms vs ping {ping_median:.1} ms"
        );
        // Four streams fill the deep queue part way (how far, TCP decides:
        // ping agrees above); the shallow one adds at most its delay.
        if deep {
            assert!(
                increase >= 20.0 && increase <= queue_ms + 20.0,
                "{increase} ms"
            );
            assert!(!["A+", "A"].contains(&grade.as_str()), "{grade}");
        } else {
            assert!(increase <= queue_ms + 5.0, "{increase} ms");
            assert!(["A+", "A"].contains(&grade.as_str()), "{grade}");
        }
        let r = measure(BandwidthSpec {
            direction: Direction::Download,
            seconds: 8,
            ..spec(BandwidthKind::Rpm, &path.server.url())
        })
        .await;
        assert!(r.success, "{r:?}");
        let (rpm, rgrade) = (
            r.metrics.rpm.unwrap(),
            r.metrics.bufferbloat_grade.clone().unwrap(),
        );
        println!(
            "{queue_ms} ms queue: RPM {rpm} ({:?}), increase {:?} ms, grade {rgrade}",
            r.metrics.rpm_confidence, r.metrics.latency_increase_ms
        );
        if deep {
            assert!(!["A+", "A"].contains(&rgrade.as_str()), "{rgrade}");
        } else {
            assert!(["A+", "A"].contains(&rgrade.as_str()), "{rgrade}");
        }
        rpms.push(rpm);
    }
    assert!(
        rpms[0] * 1.5 < rpms[1],
        "RPM deep {} vs shallow {}",
        rpms[0],
        rpms[1]
    );
}

/// A peer that is not of the kind asked for, or not there, fails clearly.
#[tokio::test]
async fn wrong_servers_fail_clearly() {
    let _serial = support::timing::serial(&SERIAL).await;
    let peer = ServePeer::start("127.0.0.1", free_port(), None, &[]);
    // A path with nothing behind it: the server answers 404.
    let m = measure(spec(BandwidthKind::Rpm, &format!("{}nothing/", peer.url()))).await;
    assert!(!m.success);
    let e = m.error.unwrap();
    assert!(
        e.contains("not a responsiveness server") && e.contains("404"),
        "{e}"
    );
    let m = measure(spec(
        BandwidthKind::Librespeed,
        &format!("{}nothing/", peer.url()),
    ))
    .await;
    assert!(m.error.unwrap().contains("not a LibreSpeed server"));
    let port = free_port();
    let m = measure(spec(
        BandwidthKind::Waddleperf,
        &format!("http://127.0.0.1:{port}/"),
    ))
    .await;
    assert_eq!(m.error_kind, Some(ErrorKind::Refused), "{m:?}");
}
