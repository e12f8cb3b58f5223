//! Bandwidth: our iperf3-protocol client against iperf3's own client, the
//! same `iperf3 -s` on loopback, alternating in one run (loopback is
//! limited by the CPU, so this compares the clients' cost per byte); then
//! the loaded latency against a router queue kept full, beside `ping`.
//! Needs root (namespaces). `cargo bench --bench bandwidth` prints Markdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::time::Duration;
use support::iperf::{iperf3_client, Iperf3Server, QueuedServer};
use waddleperf_engine::kinds::Direction;
use waddleperf_engine::probe::bandwidth::BandwidthProbe;
use waddleperf_engine::probe::Probe;
use waddleperf_engine::spec::{BandwidthSpec, HostPort};

const ROUNDS: usize = 5;
const SECONDS: u32 = 4;

fn median(mut v: Vec<f64>) -> f64 {
    support::median(&mut v)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = Iperf3Server::start("127.0.0.1", support::free_port(), None);
    let spec = |direction, streams| BandwidthSpec {
        direction,
        streams,
        seconds: SECONDS,
        omit: 1,
        busy_retries: 2,
        busy_wait: Duration::from_secs(1),
        ..BandwidthSpec::new(HostPort {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
        })
    };
    println!("Our iperf3 client vs iperf3 3.12's client, one `iperf3 -s` on loopback, {ROUNDS} alternating rounds of {SECONDS} s (after 1 s omitted), medians; release build.\n");
    println!("| test | ours | iperf3 -c | ratio | target |");
    println!("|---|---|---|---|---|");
    let secs = SECONDS.to_string();
    for (name, direction, streams, args) in [
        ("upload, 1 stream", Direction::Upload, 1u32, vec!["-P", "1"]),
        (
            "download, 1 stream",
            Direction::Download,
            1,
            vec!["-P", "1", "-R"],
        ),
        ("upload, 4 streams", Direction::Upload, 4, vec!["-P", "4"]),
    ] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let m = BandwidthProbe {
                spec: spec(direction, streams),
                tier: 1,
                progress: None,
            }
            .run()
            .await;
            assert!(m.success, "{m:?}");
            ours.push(m.metrics.upload_mbps.or(m.metrics.download_mbps).unwrap());
            let mut a = vec!["-t", secs.as_str(), "-O", "1"];
            a.extend_from_slice(&args);
            let r = tokio::task::block_in_place(|| iperf3_client(server.addr, &a));
            theirs.push(r.upload_mbps.or(r.download_mbps).unwrap());
        }
        let (o, t) = (median(ours), median(theirs));
        println!(
            "| {name} | {:.2} Gbit/s | {:.2} Gbit/s | {:.2} | ≥ 0.95 |",
            o / 1000.0,
            t / 1000.0,
            o / t
        );
    }

    // Loaded latency: a router forwarding 20 Mbit/s, its queue kept full by
    // a 30 Mbit/s UDP upload, so every echo waits the whole queue.
    println!("\nLatency under load against a full router queue (20 Mbit/s, UDP upload at 30 Mbit/s), beside `ping` during the same load.\n");
    println!("| queue | truth (limit + burst) | ours: increase | ping under load | grade |");
    println!("|---|---|---|---|---|");
    for queue_ms in [300.0, 100.0, 20.0] {
        let path = QueuedServer::start("20mbit", queue_ms);
        let target = path.target();
        let reference = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(3_200));
            support::ping(target.into(), 56, "0.1", "3")
        });
        let m = BandwidthProbe {
            spec: BandwidthSpec {
                streams: 1,
                seconds: 6,
                omit: 2,
                udp_bitrate: Some(30_000_000),
                ..BandwidthSpec::new(HostPort {
                    host: target.to_string(),
                    port: 5201,
                })
            },
            tier: 1,
            progress: None,
        }
        .run()
        .await;
        assert!(m.success, "{m:?}");
        let ping = reference.join().unwrap();
        println!(
            "| {queue_ms} ms | {:.1} ms | {:.1} ms | {:.1} ms (RTT) | {} |",
            queue_ms + 1.6,
            m.metrics.latency_increase_ms.unwrap(),
            ping.median,
            m.metrics.bufferbloat_grade.as_deref().unwrap_or("–")
        );
    }
}
