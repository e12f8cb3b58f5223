//! Accuracy per probe against injected truth: a 30 ms delay line into a
//! network namespace, each probe's median beside the reference tool's median
//! on the same path in the same run (ICMP and UDP vs `ping`, DNS vs `dig`,
//! TCP connect vs curl's `time_connect`, HTTP TTFB vs curl; path MTU vs
//! `ping -M do`; traceroute vs `traceroute -I`). Needs root.
//! `cargo bench --bench accuracy` prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::IpAddr;
use std::time::Duration;
use support::chain::Chain;
use support::netns::NetPair;
use support::servers::{curl, dig, udp_echo_peer, Dnsmasq, Nginx, TestCa};
use support::{df_ping_passes, median, ping};
use waddleperf_engine::config::{HttpMode, TcpMode};
use waddleperf_engine::probe::dns::DnsProbe;
use waddleperf_engine::probe::http::HttpProbe;
use waddleperf_engine::probe::mtu::MtuProbe;
use waddleperf_engine::probe::ping::IcmpProbe;
use waddleperf_engine::probe::tcp::TcpProbe;
use waddleperf_engine::probe::trace::TraceProbe;
use waddleperf_engine::probe::udp::UdpProbe;
use waddleperf_engine::probe::Probe;

const DELAY_MS: f64 = 30.0;
const N: u32 = 41;

fn row(probe: &str, truth: f64, ours: f64, reference: &str, theirs: f64) {
    println!(
        "| {probe} | {truth:.1} ms | {ours:.3} ms | {:+.3} | {reference} {theirs:.3} ms | {:+.3} | {} |",
        ours - truth,
        theirs - truth,
        if (ours - truth).abs() <= (theirs - truth).abs() + 0.05 { "yes" } else { "no" }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pair = NetPair::new();
    let peer = pair.peer_ip.to_string();
    let ip = IpAddr::V4(pair.peer_ip);
    let ca = TestCa::new(&[format!("IP:{peer}")], 30);
    let nginx = Nginx::start(&ca, &peer, 8443, 8080, Some(&pair));
    let dns = Dnsmasq::start(&peer, 53, Some(&pair));
    let _echo = udp_echo_peer(&peer, 7, &pair);
    let _delay = pair.delay_line(Duration::from_secs_f64(DELAY_MS / 1000.0), Duration::ZERO);

    println!("Accuracy against a {DELAY_MS} ms delay line (release build; {N} samples each: means for ICMP/UDP, medians otherwise).\n");
    println!("| probe | truth | ours | our error | reference | its error | ours ≤ reference |");
    println!("|---|---|---|---|---|---|---|");

    // ICMP: per-probe RTTs, the same count as ping's.
    let mut p = IcmpProbe::new(peer.clone());
    p.count = N;
    p.interval = Duration::from_millis(50);
    let r = p.run().await;
    let reference = tokio::task::block_in_place(|| ping(ip, N, "0.05", "2")).avg;
    row(
        "ICMP echo RTT (mean)",
        DELAY_MS,
        r.metrics.mean_ms.unwrap(),
        "ping avg",
        reference,
    );

    let mut u = UdpProbe::new(format!("{peer}:7").parse().unwrap());
    u.count = N;
    u.interval = Duration::from_millis(50);
    let r = u.run().await;
    row(
        "UDP echo RTT (mean)",
        DELAY_MS,
        r.metrics.mean_ms.unwrap(),
        "ping avg",
        reference,
    );

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..N {
        let mut d = DnsProbe::new("www.wp.test");
        d.server = Some(waddleperf_engine::spec::DnsServer::parse(&dns.addr.to_string()).unwrap());
        ours.push(d.run().await.latency_ms.unwrap());
        theirs.push(tokio::task::block_in_place(|| dig(dns.addr, "www.wp.test", "A")).query_ms);
    }
    row(
        "DNS query time",
        DELAY_MS,
        median(&mut ours),
        "dig (whole ms)",
        median(&mut theirs),
    );

    let url = format!("http://{}/", nginx.http);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ttfb, mut curl_ttfb) = (Vec::new(), Vec::new());
    for _ in 0..N {
        let r = TcpProbe::new(nginx.http.to_string().parse().unwrap(), TcpMode::Raw)
            .run()
            .await;
        ours.push(r.metrics.connect_ms.unwrap());
        let mut h = HttpProbe::new(url.clone().parse().unwrap());
        h.mode = HttpMode::Http1;
        ttfb.push(h.run().await.metrics.ttfb_ms.unwrap());
        let c = tokio::task::block_in_place(|| curl(&url, None, &["--http1.1"]));
        theirs.push(c.connect_ms);
        curl_ttfb.push(c.ttfb_ms);
    }
    row(
        "TCP connect",
        DELAY_MS,
        median(&mut ours),
        "curl time_connect",
        median(&mut theirs),
    );
    row(
        "HTTP/1.1 TTFB",
        DELAY_MS,
        median(&mut ttfb),
        "curl ttfb",
        median(&mut curl_ttfb),
    );
    drop(_delay);

    // Path MTU and traceroute: exact answers, not times.
    let narrow = Chain::new(1, Some((1, 1400)));
    let mut m = MtuProbe::new(narrow.target().to_string());
    m.reply_wait = Duration::from_millis(300);
    let r = m.run().await;
    let target = IpAddr::V4(narrow.target());
    let ok = |s: u32| df_ping_passes(target, s);
    let reference = (ok(1372) && !ok(1373)).then_some(1400);
    println!(
        "\n| path MTU (1400 link) | truth 1400 | ours {:?} in {:.0} ms | ping -M do: {:?} |",
        r.metrics.path_mtu, r.duration_ms, reference
    );
    let chain = Chain::new(3, None);
    let mut t = TraceProbe::new(chain.target().to_string());
    t.names = false;
    t.max_hops = 10;
    let r = t.run().await;
    let ours: Vec<String> = r
        .metrics
        .hops
        .unwrap()
        .iter()
        .map(|h| h.ip.clone().unwrap_or_default())
        .collect();
    let truth: Vec<String> = chain.hops().iter().map(|h| h.to_string()).collect();
    println!(
        "| traceroute (3 routers) | truth {truth:?} | ours {ours:?} in {:.0} ms | equal: {} |",
        r.duration_ms,
        ours == truth
    );
}
