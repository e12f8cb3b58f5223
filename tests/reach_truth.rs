//! Port checks and TCP/UDP traceroute against hosts the test builds: a peer
//! behind a 20 ms delay line with one open port, one closed (RST) and one
//! dropped; and a chain of three routers whose nodes all ignore ICMP echo,
//! traced with TCP SYNs and UDP datagrams next to `traceroute -T` / `-U`
//! in the same test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::chain::Chain;
use support::netns::NetPair;
use support::servers::{curl, wait_for_port, Proc};
use support::timing::{agree, judge, Spread};
use waddleperf_engine::kinds::{PortState, TraceProtocol};
use waddleperf_engine::model::{ErrorKind, Measurement};
use waddleperf_engine::probe::ports::PortsProbe;
use waddleperf_engine::probe::trace::TraceProbe;
use waddleperf_engine::probe::Probe;

/// Timing tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DELAY_MS: f64 = 20.0;
/// What a connect may add to the line's delay here: a loopback-fast peer
/// and a busy two-core machine.
const OVERHEAD_MS: f64 = 3.0;

/// Python's HTTP server without the reverse lookup of its own address that
/// `python3 -m http.server` makes before it listens: in a namespace whose
/// resolver cannot be reached, that lookup alone takes longer than a test.
const HTTP_SERVER: &str = "\
import http.server, socketserver, sys
class Server(http.server.HTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
Server((sys.argv[1], int(sys.argv[2])), http.server.SimpleHTTPRequestHandler).serve_forever()
";

/// A plain HTTP server listening on `ip:port` (IPv4) inside a namespace.
fn http_server(netns: &str, ip: IpAddr, port: u16) -> Proc {
    let child = Command::new("ip")
        .args(["netns", "exec", netns, "python3", "-c", HTTP_SERVER])
        .arg(ip.to_string())
        .arg(port.to_string())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 HTTP server");
    let mut proc = Proc {
        child,
        name: "python3 HTTP server",
        log: None,
    };
    wait_for_port(SocketAddr::new(ip, port), &mut proc);
    proc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_open_closed_or_filtered_each_timed_against_the_line() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let peer = IpAddr::V4(pair.peer_ip);
    let (open, closed, dropped) = (8080, 8081, 8082);
    let _server = http_server(&pair.ns, peer, open);
    pair.black_hole_tcp(dropped);
    let _line = pair.delay_line(Duration::from_millis(DELAY_MS as u64), Duration::ZERO);

    let mut probe = PortsProbe::new(peer.to_string(), vec![open, closed, dropped]);
    probe.connect_wait = Duration::from_millis(600);
    let (mut open_ms, mut closed_ms) = (Vec::new(), Vec::new());
    let mut last: Option<Measurement> = None;
    for _ in 0..5 {
        let m = probe.run().await;
        let ports = m.metrics.ports.clone().expect("per-port results");
        let states: Vec<(u16, PortState)> = ports.iter().map(|p| (p.port, p.state)).collect();
        assert_eq!(
            states,
            [
                (open, PortState::Open),
                (closed, PortState::Closed),
                (dropped, PortState::Filtered)
            ],
            "{m:?}"
        );
        open_ms.push(ports[0].connect_ms.unwrap());
        closed_ms.push(ports[1].connect_ms.unwrap());
        assert_eq!(
            ports[2].connect_ms, None,
            "a filtered port has no answer time"
        );
        // The three connect at once: the whole check takes the dropped
        // port's wait, not the sum.
        assert!(m.duration_ms >= 600.0 && m.duration_ms < 1_500.0, "{m:?}");
        last = Some(m);
    }
    let m = last.unwrap();
    assert!(!m.success);
    assert_eq!(m.error_kind, Some(ErrorKind::Refused));
    let err = m.error.clone().unwrap();
    assert!(
        err.contains(&format!("{closed} closed")) && err.contains(&format!("{dropped} filtered")),
        "{err}"
    );
    assert_eq!(m.target, format!("{peer}:{open},{closed},{dropped}"));
    let o = judge(
        "open port connect",
        &open_ms,
        DELAY_MS,
        OVERHEAD_MS,
        DELAY_MS,
    );
    judge(
        "closed port (RST)",
        &closed_ms,
        DELAY_MS,
        OVERHEAD_MS,
        DELAY_MS,
    );
    // curl's connect time to the open port, on the same path.
    let reference: Vec<f64> = (0..5)
        .map(|_| curl(&format!("http://{peer}:{open}/"), None, &[]).connect_ms)
        .collect();
    let r = Spread::of(&reference);
    println!("curl connect: {r}");
    agree("open port connect vs curl", &o, &r, OVERHEAD_MS);

    // All open: the check passes, its latency the mean connect time.
    let only_open = PortsProbe::new(peer.to_string(), vec![open]).run().await;
    assert!(only_open.success, "{only_open:?}");
    assert!(only_open.latency_ms.unwrap() >= DELAY_MS);
}

/// Hop addresses of `traceroute -n -q 1 -w 1 -m 10` with `flags`.
fn reference_traceroute(flags: &[&str], target: IpAddr) -> Vec<String> {
    let out = support::run(
        Command::new("traceroute")
            .args(flags)
            .args(["-n", "-q", "1", "-w", "1", "-m", "10"])
            .arg(target.to_string()),
    );
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

fn trace(target: IpAddr, protocol: TraceProtocol, port: u16) -> TraceProbe {
    let mut p = TraceProbe::new(target.to_string());
    p.protocol = protocol;
    p.port = port;
    p.rounds = 3;
    p.interval = Duration::from_millis(100);
    p.reply_wait = Duration::from_millis(500);
    p.names = false;
    p.max_hops = 10;
    p
}

fn hop_ips(m: &Measurement) -> Vec<String> {
    m.metrics
        .hops
        .as_ref()
        .unwrap()
        .iter()
        .map(|h| h.ip.clone().unwrap_or_else(|| "*".into()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_udp_traceroute_find_the_routers_where_icmp_echo_is_dropped() {
    let _serial = support::timing::serial(&SERIAL).await;
    let chain = Chain::new(3, None);
    for ns in &chain.nodes {
        chain.sh(ns, "sysctl -qw net.ipv4.icmp_echo_ignore_all=1");
    }
    let target = IpAddr::V4(chain.target());
    let truth: Vec<String> = chain.hops().iter().map(|h| h.to_string()).collect();
    let (open, closed, udp_port) = (8080u16, 8081u16, 33434u16);
    let _server = http_server(chain.nodes.last().unwrap(), target, open);

    // ICMP echo finds the routers but never the target.
    let mut icmp = trace(target, TraceProtocol::Icmp, 0);
    icmp.rounds = 1;
    icmp.max_hops = 5;
    icmp.method = Some(waddleperf_engine::probe::icmp::Method::Raw);
    let icmp = icmp.run().await;
    assert_eq!(icmp.metrics.reached, Some(false), "{icmp:?}");
    assert!(!icmp.success);

    for (flags, protocol, port, state) in [
        (
            vec!["-T", "-p", "8080"],
            TraceProtocol::Tcp,
            open,
            Some("open"),
        ),
        (
            vec!["-T", "-p", "8081"],
            TraceProtocol::Tcp,
            closed,
            Some("closed"),
        ),
        (
            vec!["-U", "-p", "33434"],
            TraceProtocol::Udp,
            udp_port,
            None,
        ),
    ] {
        let reference = tokio::task::block_in_place(|| reference_traceroute(&flags, target));
        println!("traceroute {flags:?}: {reference:?}; truth {truth:?}");
        assert_eq!(
            reference, truth,
            "the reference tool sees the chain ({flags:?})"
        );
        let m = trace(target, protocol, port).run().await;
        println!("ours ({} {port}): {:?}", protocol.as_str(), hop_ips(&m));
        assert!(m.success, "{m:?}");
        assert_eq!(m.metrics.reached, Some(true));
        assert_eq!(m.metrics.trace_protocol.as_deref(), Some(protocol.as_str()));
        assert_eq!(m.metrics.port_state.as_deref(), state, "{m:?}");
        assert_eq!(hop_ips(&m), truth, "{} to port {port}", protocol.as_str());
        for (i, h) in m.metrics.hops.as_ref().unwrap().iter().enumerate() {
            assert_eq!(usize::from(h.ttl), i + 1);
            assert_eq!((h.sent, h.received), (3, 3), "hop {h:?}");
        }
        assert_eq!(
            m.target,
            format!("{}://{target}:{port}", protocol.as_str()),
            "each protocol and port is a series of its own"
        );
    }
}
