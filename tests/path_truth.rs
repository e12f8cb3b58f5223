//! Traceroute and path MTU against routers and links built by the test: a
//! chain of three routers (each hop known in advance) and a 1400-byte link,
//! over IPv4 and IPv6, next to `traceroute -I` and `ping -M do` in the same
//! test. (Delay, loss, DNS and HTTP/3 truth: `tests/probe_truth.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;
use support::chain::{Chain, PingGroupRange};
use support::{df_ping_passes, run};
use waddleperf_engine::model::Measurement;
use waddleperf_engine::probe::icmp::Method;
use waddleperf_engine::probe::mtu::MtuProbe;
use waddleperf_engine::probe::trace::TraceProbe;
use waddleperf_engine::probe::Probe;

/// These tests open `ping_group_range` for a while: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `traceroute -I -n`'s hop addresses (`*` for none).
fn reference_traceroute(target: IpAddr) -> Vec<String> {
    let out = run(Command::new("traceroute")
        .args(["-I", "-n", "-q", "1", "-w", "1", "-m", "10"])
        .arg(target.to_string()));
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// Traces `target` through a chain whose hops are `truth`: `traceroute -I`
/// first, then ours on the raw socket and on the unprivileged one (routers'
/// errors from its error queue), three rounds each.
async fn check_traceroute(label: &str, target: IpAddr, truth: &[String]) {
    let reference = tokio::task::block_in_place(|| reference_traceroute(target));
    println!("{label}: truth {truth:?}, traceroute -I {reference:?}");
    assert_eq!(reference, truth, "the reference tool sees the chain");
    let trace = |method| {
        let mut p = TraceProbe::new(target.to_string());
        p.rounds = 3;
        p.interval = Duration::from_millis(100);
        p.names = false;
        p.max_hops = 10;
        p.method = Some(method);
        p
    };
    let raw = trace(Method::Raw).run().await;
    let dgram = {
        let _open = PingGroupRange::allow_all();
        trace(Method::Datagram).run().await
    };
    assert_eq!(raw.metrics.icmp_method.as_deref(), Some("raw"), "{label}");
    assert_eq!(
        dgram.metrics.icmp_method.as_deref(),
        Some("datagram"),
        "{label}"
    );
    for (name, r) in [
        ("raw socket", &raw),
        ("datagram socket + error queue", &dgram),
    ] {
        assert!(r.success, "{label} ({name}): {r:?}");
        assert_eq!(r.metrics.reached, Some(true));
        let hops = r.metrics.hops.as_ref().unwrap();
        let ips: Vec<String> = hops
            .iter()
            .map(|h| h.ip.clone().unwrap_or_default())
            .collect();
        println!("{label} ({name}): ours {ips:?}");
        assert_eq!(ips, truth, "{label} ({name})");
        for (i, h) in hops.iter().enumerate() {
            assert_eq!(usize::from(h.ttl), i + 1);
            assert_eq!(
                (h.sent, h.received, h.loss_pct),
                (3, 3, 0.0),
                "{label} ({name}) hop {h:?}"
            );
            assert!(h.min_ms.unwrap() <= h.mean_ms.unwrap() && h.mean_ms <= h.max_ms);
        }
        assert_eq!(r.latency_ms, hops.last().unwrap().mean_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceroute_finds_the_three_routers_in_order() {
    let _serial = support::timing::serial(&SERIAL).await;
    let chain = Chain::new(3, None);
    let truth: Vec<String> = chain.hops().iter().map(|h| h.to_string()).collect();
    check_traceroute("traceroute", IpAddr::V4(chain.target()), &truth).await;
}

fn mtu_probe(target: IpAddr) -> MtuProbe {
    let mut p = MtuProbe::new(target.to_string());
    p.reply_wait = Duration::from_millis(300);
    p
}

/// Our path MTU to `target` is `truth`, and `ping -M do` agrees: a packet
/// of `truth` bytes passes, one byte more does not.
async fn check_path_mtu(label: &str, target: IpAddr, truth: u32) {
    let headers = if target.is_ipv6() { 48 } else { 28 };
    let mut p = mtu_probe(target);
    p.method = Some(Method::Raw);
    let r = p.run().await;
    assert_eq!(r.metrics.icmp_method.as_deref(), Some("raw"), "{label}");
    let (pass, fail) = tokio::task::block_in_place(|| {
        (
            df_ping_passes(target, truth - headers),
            df_ping_passes(target, truth - headers + 1),
        )
    });
    println!(
        "{label}: truth {truth}, ours {:?} in {:.0} ms, ping -M do: {} bytes {}, {} bytes {}",
        r.metrics.path_mtu,
        r.duration_ms,
        truth,
        if pass { "pass" } else { "FAIL" },
        truth + 1,
        if fail { "PASS" } else { "fail" }
    );
    assert!(r.success, "{r:?}");
    assert_eq!(r.metrics.path_mtu, Some(truth), "{label}");
    assert!(pass && !fail, "the reference agrees on {truth}");
}

/// Our path MTU through the unprivileged socket (routers' errors from its
/// error queue).
async fn datagram_path_mtu(target: IpAddr) -> Measurement {
    let _open = PingGroupRange::allow_all();
    let mut p = mtu_probe(target);
    p.method = Some(Method::Datagram);
    let r = p.run().await;
    assert_eq!(r.metrics.icmp_method.as_deref(), Some("datagram"));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_mtu_is_1400_on_the_narrow_link_and_1500_on_the_wide_one() {
    let _serial = support::timing::serial(&SERIAL).await;
    let narrow = Chain::new(1, Some((1, 1400)));
    let wide = Chain::new(1, None);
    let target = IpAddr::V4(narrow.target());
    check_path_mtu("path mtu (narrow link)", target, 1400).await;
    check_path_mtu("path mtu (wide link)", IpAddr::V4(wide.target()), 1500).await;
    let r = datagram_path_mtu(target).await;
    println!("path mtu (datagram socket): {:?}", r.metrics.path_mtu);
    assert_eq!(r.metrics.path_mtu, Some(1400), "{r:?}");
    // A black-hole router: "fragmentation needed" never arrives; silence
    // counts as too big and the answer is the same.
    narrow.sh(
        &narrow.nodes[0],
        "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP",
    );
    let r = mtu_probe(target).run().await;
    println!(
        "path mtu behind a black hole: {:?} in {:.0} ms",
        r.metrics.path_mtu, r.duration_ms
    );
    assert_eq!(r.metrics.path_mtu, Some(1400), "{r:?}");
}

/// The same chain over IPv6: routers answer "time exceeded" and "packet too
/// big" in ICMPv6, and a path MTU is the IPv6 payload + 48.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_traceroute_and_path_mtu_through_the_chain() {
    let _serial = support::timing::serial(&SERIAL).await;
    // Three routers; the link between the second and the third is narrow.
    let chain = Chain::new(3, Some((2, 1400)));
    let wide = Chain::new(1, None);
    let target = IpAddr::V6(chain.target6());
    let truth: Vec<String> = chain.hops6().iter().map(|h| h.to_string()).collect();
    check_traceroute("traceroute over ipv6", target, &truth).await;
    check_path_mtu("path mtu over ipv6 (narrow)", target, 1400).await;
    check_path_mtu(
        "path mtu over ipv6 (wide)",
        IpAddr::V6(wide.target6()),
        1500,
    )
    .await;
    let r = datagram_path_mtu(target).await;
    println!(
        "path mtu over ipv6 (datagram socket): {:?}",
        r.metrics.path_mtu
    );
    assert_eq!(r.metrics.path_mtu, Some(1400), "{r:?}");
}
