//! Debian's iperf3 as a peer (`iperf3 -s`) and as the reference client
//! (`iperf3 -c … -J`), for the bandwidth tests.

use super::servers::Proc;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `iperf3 -s` bound to `ip:port` (inside the namespace `ns` when given),
/// killed on drop.
pub struct Iperf3Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Iperf3Server {
    pub fn start(ip: &str, port: u16, ns: Option<&str>) -> Iperf3Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("iperf3.log");
        let mut cmd = match ns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n, "iperf3"]);
                c
            }
            None => Command::new("iperf3"),
        };
        cmd.args([
            "-s",
            "--forceflush",
            "-B",
            ip,
            "-p",
            &port.to_string(),
            "--logfile",
        ])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .expect("cannot start iperf3 (is the iperf3 package installed?)");
        let mut proc = Proc {
            child,
            name: "iperf3",
            log: Some(log),
        };
        // Ready once it says so: a probing connection would count as a
        // client that sent no cookie.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !proc.log_text().contains("Server listening") {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("iperf3 -s exited ({status}):\n{}", proc.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "iperf3 -s did not listen within 10 s:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Iperf3Server {
            proc,
            addr: SocketAddr::new(ip.parse().unwrap(), port),
            dir,
        }
    }
}

/// What iperf3's own client reported (`-J`), receiver's side as it prints
/// it: Mbit/s each way, and for UDP jitter and loss.
#[derive(Debug, Clone, Copy, Default)]
pub struct Iperf3Report {
    pub upload_mbps: Option<f64>,
    pub download_mbps: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub lost_pct: Option<f64>,
}

/// Runs `iperf3 -c server -J extra…` and reads its end summary. `-R`
/// reports a download, `--bidir` both.
/// A server that has just ended a test can still say it is busy for a
/// moment: the reference client tries again, as a person would.
pub fn iperf3_client(server: SocketAddr, extra: &[&str]) -> Iperf3Report {
    let (ip, port) = (server.ip().to_string(), server.port().to_string());
    let mut tries = 0;
    let v = loop {
        let out = Command::new("iperf3")
            .args(["-c", &ip, "-p", &port, "-J"])
            .args(extra)
            .output()
            .expect("cannot run iperf3");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "iperf3 -c printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let busy = v["error"].as_str().is_some_and(|e| e.contains("busy"));
        if !busy || tries == 10 {
            break v;
        }
        tries += 1;
        std::thread::sleep(Duration::from_millis(300));
    };
    let end = &v["end"];
    assert!(
        v.get("error").is_none() && end.is_object(),
        "iperf3 -c failed: {v}"
    );
    let mbps = |k: &str| end[k]["bits_per_second"].as_f64().map(|b| b / 1e6);
    let reverse = extra.contains(&"-R");
    let bidir = extra.contains(&"--bidir");
    Iperf3Report {
        upload_mbps: if reverse { None } else { mbps("sum_received") },
        download_mbps: if bidir {
            mbps("sum_received_bidir_reverse")
        } else if reverse {
            mbps("sum_received")
        } else {
            None
        },
        jitter_ms: end["sum_received"]["jitter_ms"].as_f64(),
        lost_pct: end["sum_received"]["lost_percent"].as_f64(),
    }
}

/// An `iperf3 -s` behind one router that forwards `rate` each way through
/// a token bucket whose queue holds a packet at most `queue_ms` (plus a
/// 32 kbit burst): bufferbloat on a router, as on a real path (in the
/// sender's own qdisc, TCP small queues would keep the queue nearly empty).
pub struct QueuedServer {
    // The server goes before its namespaces.
    pub server: Iperf3Server,
    pub chain: super::chain::Chain,
}

impl QueuedServer {
    pub fn start(rate: &str, queue_ms: f64) -> QueuedServer {
        let chain = super::chain::Chain::bloated(rate, queue_ms);
        let server = Iperf3Server::start(
            &chain.target().to_string(),
            5201,
            chain.nodes.last().map(String::as_str),
        );
        QueuedServer { server, chain }
    }

    pub fn target(&self) -> std::net::Ipv4Addr {
        self.chain.target()
    }
}

/// Runs one bandwidth test as tier 2 runs it, without live progress.
pub async fn measure(
    spec: waddleperf_engine::spec::BandwidthSpec,
) -> waddleperf_engine::model::Measurement {
    use waddleperf_engine::probe::Probe;
    waddleperf_engine::probe::bandwidth::BandwidthProbe {
        spec,
        tier: 2,
        progress: None,
    }
    .run()
    .await
}

/// Asserts that `ours` is within the relative `bound` of `truth`, printing
/// both either way.
pub fn close(name: &str, what: &str, ours: f64, truth: f64, bound: f64) {
    let err = (ours - truth) / truth;
    println!(
        "{name}: {what} ours {ours:.2}, reference {truth:.2} ({:+.1} %, bound ±{:.0} %)",
        err * 100.0,
        bound * 100.0
    );
    assert!(
        err.abs() <= bound,
        "{name}: {what} {ours:.2} is not within {:.0} % of {truth:.2}",
        bound * 100.0
    );
}
