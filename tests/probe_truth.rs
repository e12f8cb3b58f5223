//! ICMP, UDP, DNS and HTTP/3 figures checked against truth injected in
//! network namespaces (delay line, `statistic` loss, jitter, both over IPv4
//! and IPv6, blocked UDP), and against the reference tool (ping, dig) in
//! the same test. Traceroute and path MTU: `tests/path_truth.rs`. Each prints
//! measured vs truth, and fails outside its stated bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;
use support::chain::PingGroupRange;
use support::netns::NetPair;
use support::servers::{self, dig, udp_echo_peer, Caddy, Dnsmasq, TestCa};
use support::timing::{agree, judge, Spread};
use support::{ping, run, Ping};
use waddleperf_engine::config::HttpMode;
use waddleperf_engine::model::{ErrorKind, Measurement};
use waddleperf_engine::probe::dns::DnsProbe;
use waddleperf_engine::probe::http::HttpProbe;
use waddleperf_engine::probe::icmp::Method;
use waddleperf_engine::probe::ping::IcmpProbe;
use waddleperf_engine::probe::udp::UdpProbe;
use waddleperf_engine::probe::Probe;

/// Timing tests run one at a time (two cores), and the tests that open
/// `ping_group_range` hold it too.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DELAY_MS: f64 = 30.0;
/// Stated bound: one round trip through the delay line costs the delay plus
/// at most this much (release granularity, scheduling, debug build).
const OVERHEAD_MS: f64 = 2.0;
/// Stated agreement with the reference tool (fastest against fastest) on
/// the same path.
const AGREE_MS: f64 = 1.0;
/// How far dig's query time may stray: whole milliseconds read from its
/// event loop's clock.
const DIG_SLACK_MS: f64 = 3.0;
/// The QUIC handshake also waits for the server to sign it (caddy, per
/// connection): its own bound. Our side's decryption and certificate checks
/// are not in it (stamped when the datagram is read).
const H3_HANDSHAKE_OVERHEAD_MS: f64 = 3.0;

fn ms(d: f64) -> Duration {
    Duration::from_secs_f64(d / 1000.0)
}

/// 200 probes at p = 0.2: the loss count is within ±4 standard deviations
/// of 40 (σ = 5.66), i.e. 8.7 % to 31.3 %; a correct probe fails this
/// about once in 15 000 runs.
const LOSS_P: f64 = 0.2;
const LOSS_N: u32 = 200;
/// A sampled result (ICMP, UDP) through the delay line: `count` replies,
/// judged as `support::timing` says: none faster than the line, the
/// fastest within the stated overhead of it (no time of the probe's own on
/// every reply), the median and the mean (with the single slowest reply
/// set aside) short of the overhead and an extra half round trip; the fastest within
/// `AGREE_MS` of ping's fastest on the same path. Returns the mean.
///
/// Why not the plain mean or median against the overhead: this is a shared
/// two-core machine, and a thread (the delay line's, the probe's, the
/// kernel's) is held off the CPU now and then. The replies caught in such a
/// stall really did take longer, and both the probe and ping report it so,
/// but on a busy machine they move the median and the mean by more than
/// the overhead stated here; the fastest reply does not move, while a probe
/// that is off on every reply still fails.
fn check_line_mean(name: &str, r: &Measurement, count: u32, reference: &Ping) -> f64 {
    assert!(r.success, "{name}: {r:?}");
    assert_eq!(r.metrics.received, Some(count), "{name}");
    let mean = r.metrics.mean_ms.unwrap();
    let median = r.metrics.median_ms.unwrap();
    let (min, max) = (r.metrics.min_ms.unwrap(), r.metrics.max_ms.unwrap());
    let n = f64::from(count);
    let trimmed = (mean * n - max) / (n - 1.0);
    println!(
        "{name}: truth {DELAY_MS:.1} ms, ours min {min:.3} ms (error {:+.3}), median {median:.3} ms (error {:+.3}), \
         mean {mean:.3} (without the slowest reply {trimmed:.3}, error {:+.3}), max {max:.3}; \
         ping min {:.3} ms (error {:+.3}), median {:.3}, avg {:.3}",
        min - DELAY_MS,
        median - DELAY_MS,
        trimmed - DELAY_MS,
        reference.min,
        reference.min - DELAY_MS,
        reference.median,
        reference.avg,
    );
    assert!(min >= DELAY_MS, "{name}: no reply beats the delay line");
    assert!(min <= median && median <= max && min <= mean && mean <= max);
    assert!(
        min <= DELAY_MS + OVERHEAD_MS,
        "{name}: the fastest reply {min} > {DELAY_MS} + {OVERHEAD_MS}"
    );
    for (what, v) in [("median", median), ("trimmed mean", trimmed)] {
        assert!(
            v < 1.5 * DELAY_MS + OVERHEAD_MS,
            "{name}: {what} {v} is half a round trip over {DELAY_MS}"
        );
    }
    assert!(
        (min - reference.min).abs() < AGREE_MS,
        "{name}: our fastest reply {min} vs ping's {}",
        reference.min
    );
    mean
}

fn binomial_bounds() -> (f64, f64) {
    let n = f64::from(LOSS_N);
    let sd = (n * LOSS_P * (1.0 - LOSS_P)).sqrt();
    (
        (n * LOSS_P - 4.0 * sd) / n * 100.0,
        (n * LOSS_P + 4.0 * sd) / n * 100.0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icmp_mean_is_the_delay_line_and_agrees_with_ping() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let peer = IpAddr::V4(pair.peer_ip);
    let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
    let probe = |count, method| {
        let mut p = IcmpProbe::new(pair.peer_ip.to_string());
        p.count = count;
        p.interval = Duration::from_millis(50);
        p.method = Some(method);
        p
    };
    // Raw socket (root), then the unprivileged datagram socket: each forced,
    // and the result says which ran.
    let raw = probe(20, Method::Raw).run().await;
    let reference = tokio::task::block_in_place(|| ping(peer, 20, "0.05", "2"));
    let dgram = {
        let _open = PingGroupRange::allow_all();
        probe(20, Method::Datagram).run().await
    };
    assert_eq!(raw.metrics.icmp_method.as_deref(), Some("raw"));
    assert_eq!(dgram.metrics.icmp_method.as_deref(), Some("datagram"));
    println!("ping: {}/{} replies", reference.received, reference.sent);
    for (name, r) in [
        ("icmp (raw socket)", &raw),
        ("icmp (datagram socket)", &dgram),
    ] {
        check_line_mean(name, r, 20, &reference);
        assert_eq!(r.metrics.sent, Some(20));
        assert_eq!(r.metrics.loss_pct, Some(0.0));
        assert_eq!(r.latency_ms, r.metrics.mean_ms);
    }
    assert_eq!(reference.received, 20);
}

/// IPv6 end to end: ICMPv6 echo on the raw and the datagram socket, and
/// UDP to the echo responder, through the same 30 ms line; `ping` (which
/// takes IPv6 addresses as they are) alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_icmp_and_udp_follow_the_delay_line_and_agree_with_ping() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let peer = IpAddr::V6(pair.peer_ip6);
    let _echo = udp_echo_peer(&pair.peer_ip6.to_string(), 7, &pair);
    let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
    let icmp = |method| {
        let mut p = IcmpProbe::new(pair.peer_ip6.to_string());
        p.count = 20;
        p.interval = Duration::from_millis(50);
        p.method = Some(method);
        p
    };
    let raw = icmp(Method::Raw).run().await;
    let reference = tokio::task::block_in_place(|| ping(peer, 20, "0.05", "2"));
    let dgram = {
        let _open = PingGroupRange::allow_all();
        icmp(Method::Datagram).run().await
    };
    assert_eq!(raw.metrics.icmp_method.as_deref(), Some("raw"));
    assert_eq!(dgram.metrics.icmp_method.as_deref(), Some("datagram"));
    let mut u = UdpProbe::new(format!("[{}]:7", pair.peer_ip6).parse().unwrap());
    u.count = 20;
    u.interval = Duration::from_millis(50);
    let udp = u.run().await;
    assert_eq!(
        (reference.sent, reference.received),
        (20, 20),
        "ping -6 through the line"
    );
    for (name, r) in [
        ("icmpv6, raw socket", &raw),
        ("icmpv6, datagram socket", &dgram),
        ("udp over ipv6", &udp),
    ] {
        check_line_mean(name, r, 20, &reference);
        assert_eq!(
            r.resolved_ip.as_deref(),
            Some(pair.peer_ip6.to_string().as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icmp_and_udp_loss_are_within_the_binomial_range() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let _echo = udp_echo_peer(&pair.peer_ip.to_string(), 7, &pair);
    pair.loss(LOSS_P);
    let (lo, hi) = binomial_bounds();

    let mut p = IcmpProbe::new(pair.peer_ip.to_string());
    p.count = LOSS_N;
    p.interval = Duration::from_millis(10);
    p.reply_wait = Duration::from_millis(1000);
    let icmp = p.run().await;
    let reference =
        tokio::task::block_in_place(|| ping(IpAddr::V4(pair.peer_ip), LOSS_N, "0.01", "1"));
    let (ps, pr) = (reference.sent, reference.received);
    let ping_loss = f64::from(ps - pr) * 100.0 / f64::from(ps);

    let mut u = UdpProbe::new(format!("{}:7", pair.peer_ip).parse().unwrap());
    u.count = LOSS_N;
    u.interval = Duration::from_millis(10);
    u.reply_wait = Duration::from_millis(1000);
    let udp = u.run().await;

    for (name, r) in [("icmp", &icmp), ("udp", &udp)] {
        assert!(r.success, "{r:?}");
        let loss = r.metrics.loss_pct.unwrap();
        let (sent, received) = (r.metrics.sent.unwrap(), r.metrics.received.unwrap());
        println!(
            "{name} loss: truth {:.0} % over {LOSS_N}, ours {loss:.1} % ({received}/{sent}), ping {ping_loss:.1} %, \
             accepted {lo:.1}..{hi:.1} %",
            LOSS_P * 100.0
        );
        assert_eq!(sent, LOSS_N);
        assert!(
            (lo..=hi).contains(&loss),
            "{name} loss {loss} outside {lo}..{hi}"
        );
        assert_eq!(loss, f64::from(sent - received) * 100.0 / f64::from(sent));
    }
    assert!((lo..=hi).contains(&ping_loss), "ping's loss {ping_loss}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_mean_is_the_delay_line_and_jitter_follows_injected_jitter() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let _echo = udp_echo_peer(&pair.peer_ip.to_string(), 7, &pair);
    let target = format!("{}:7", pair.peer_ip);
    let udp = |count: u32| {
        let mut u = UdpProbe::new(target.clone().parse().unwrap());
        u.count = count;
        u.interval = Duration::from_millis(40);
        u
    };
    let icmp = |count: u32| {
        let mut p = IcmpProbe::new(pair.peer_ip.to_string());
        p.count = count;
        p.interval = Duration::from_millis(40);
        p
    };

    let steady = {
        let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
        let u = udp(20).run().await;
        let reference =
            tokio::task::block_in_place(|| ping(IpAddr::V4(pair.peer_ip), 20, "0.04", "2"));
        check_line_mean("udp", &u, 20, &reference);
        // Jitter is the mean difference between consecutive replies: one
        // reply caught in a stall of the machine (see check_line_mean)
        // adds at most two differences of (slowest - median). They are
        // set aside, as the slowest reply is for the mean.
        let j = u.metrics.jitter_ms.unwrap();
        let stall = u.metrics.max_ms.unwrap() - u.metrics.median_ms.unwrap();
        let trimmed = (j - 2.0 * stall / 19.0).max(0.0);
        println!("udp on a steady line: jitter {j:.3} ms, {trimmed:.3} without the slowest reply");
        trimmed
    };
    // Uniform extra delay in [0, 10) ms: consecutive samples differ by 10/3 ms on average.
    let jitter_truth = 10.0 / 3.0;
    let _delay = pair.delay_line(ms(DELAY_MS), ms(10.0));
    let u = udp(60).run().await;
    let i = icmp(60).run().await;
    for (name, r) in [("udp", &u), ("icmp", &i)] {
        assert!(r.success, "{r:?}");
        let j = r.metrics.jitter_ms.unwrap();
        println!(
            "{name} jitter: steady line {steady:.3} ms; with 0–10 ms uniform jitter truth {jitter_truth:.2} ms, ours {j:.3} ms"
        );
        assert!(
            steady < 0.5,
            "a steady line has next to no jitter: {steady}"
        );
        assert!(
            (2.0..=5.0).contains(&j),
            "{name} jitter {j} not near {jitter_truth:.2}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icmp_total_loss_is_a_result_with_loss_100() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    pair.sh("sysctl -qw net.ipv4.icmp_echo_ignore_all=1");
    let mut p = IcmpProbe::new(pair.peer_ip.to_string());
    p.count = 4;
    p.interval = Duration::from_millis(20);
    p.reply_wait = Duration::from_millis(300);
    let r = p.run().await;
    println!("icmp to a host that ignores echoes: {r:?}");
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(r.metrics.loss_pct, Some(100.0));
    assert_eq!(r.metrics.sent, Some(4));
    assert_eq!(r.metrics.received, Some(0));
    assert!(r.error.unwrap().contains("100 % loss"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_rcode_and_time_agree_with_the_server_and_dig() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let server = Dnsmasq::start(&pair.peer_ip.to_string(), 53, Some(&pair));
    let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
    let ask = |name: &str, ty: &str| {
        let mut p = DnsProbe::new(name);
        p.server =
            Some(waddleperf_engine::spec::DnsServer::parse(&server.addr.to_string()).unwrap());
        p.record_type = waddleperf_engine::spec::parse_record_type(ty).unwrap();
        p.timeout = Duration::from_secs(3);
        p
    };
    let cases: [(&str, &str, Option<Vec<String>>); 6] = [
        ("www.wp.test", "A", Some(vec![servers::DNS_WWW.1.into()])),
        (
            servers::DNS_ALIAS,
            "CNAME",
            Some(vec![format!("{}.", servers::DNS_WWW.0)]),
        ),
        ("wp.test", "MX", Some(vec![servers::DNS_MX.1.into()])),
        ("wp.test", "TXT", Some(vec![servers::DNS_TXT.1.into()])),
        (
            "_echo._udp.wp.test",
            "SRV",
            Some(vec![servers::DNS_SRV.1.into()]),
        ),
        (
            "10.9.8.7",
            "PTR",
            Some(vec![format!("{}.", servers::DNS_WWW.0)]),
        ),
    ];
    let (mut ours, mut digs) = (Vec::new(), Vec::new());
    for (name, ty, truth) in cases {
        let r = ask(name, ty).run().await;
        let d = tokio::task::block_in_place(|| {
            let qname = if ty == "PTR" {
                "7.8.9.10.in-addr.arpa"
            } else {
                name
            };
            dig(server.addr, qname, ty)
        });
        assert!(r.success, "{name} {ty}: {r:?}");
        assert_eq!(r.metrics.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(d.status, "NOERROR");
        let answers = r.metrics.answers.clone().unwrap();
        assert_eq!(answers, d.answers, "{name} {ty}: ours vs dig");
        if let Some(t) = truth {
            assert_eq!(answers, t, "{name} {ty}: ours vs configured");
        }
        assert_eq!(
            r.metrics.server.as_deref(),
            Some(server.addr.to_string().as_str())
        );
        assert_eq!(r.metrics.record_type.as_deref(), Some(ty));
        ours.push(r.latency_ms.unwrap());
        digs.push(d.query_ms);
    }
    // A missing name: NXDOMAIN, a failed result that keeps its figures.
    let r = ask("missing.wp.test", "A").run().await;
    let d = tokio::task::block_in_place(|| dig(server.addr, "missing.wp.test", "A"));
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Dns));
    assert_eq!(r.metrics.rcode.as_deref(), Some("NXDOMAIN"));
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(r.metrics.answers, Some(vec![]));
    ours.push(r.latency_ms.unwrap());
    digs.push(d.query_ms);

    let o = judge("dns query time", &ours, DELAY_MS, OVERHEAD_MS, DELAY_MS);
    let g = Spread::of(&digs);
    println!("dig query time: {g} (whole ms)");
    // dig is the coarser clock: it prints whole milliseconds and, in 9.18,
    // stamps send and receipt from its event loop, so on a busy machine it
    // has read 27 ms on this 30 ms line (a figure below the physical truth).
    // It must still see the line; ours is held to the truth bound above.
    assert!(
        (DELAY_MS - DIG_SLACK_MS..=DELAY_MS + OVERHEAD_MS + DIG_SLACK_MS).contains(&g.min),
        "dig sees the line: {g}"
    );
    // Agreement with dig, except where dig reads below the physical line:
    // no probe can be faster than the line, so dig's error below it is
    // dig's alone.
    let g_physical = Spread {
        min: g.min.max(DELAY_MS),
        ..g
    };
    agree(
        "dns query time vs dig (whole ms from its event loop's clock)",
        &o,
        &g_physical,
        DIG_SLACK_MS,
    );

    // Truncated over UDP (dnsmasq's 512-byte limit): asked again over TCP.
    // Five samples, judged like the other timings here: one sample is at
    // the mercy of a busy shared machine.
    let (mut connects, mut totals) = (Vec::new(), Vec::new());
    let d = tokio::task::block_in_place(|| dig(server.addr, servers::DNS_BIG_TXT, "TXT"));
    for _ in 0..5 {
        let r = ask(servers::DNS_BIG_TXT, "TXT").run().await;
        assert!(r.success, "{r:?}");
        let answers = r.metrics.answers.clone().unwrap();
        assert_eq!(answers, d.answers, "TCP fallback: ours vs dig");
        assert_eq!(
            answers[0].matches('"').count(),
            2 * servers::DNS_BIG_TXT_STRINGS
        );
        connects.push(r.metrics.connect_ms.expect("the TCP fallback connects"));
        totals.push(r.latency_ms.unwrap());
    }
    judge(
        "dns over TCP after truncation, connect (1 round trip)",
        &connects,
        DELAY_MS,
        OVERHEAD_MS,
        DELAY_MS,
    );
    judge(
        "dns over TCP after truncation, total (3 round trips)",
        &totals,
        3.0 * DELAY_MS,
        3.0 * OVERHEAD_MS,
        DELAY_MS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_system_resolver_is_timed_apart() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let server = Dnsmasq::start(&pair.peer_ip.to_string(), 53, Some(&pair));
    let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
    // The CLI in a private mount namespace whose /etc/resolv.conf names dnsmasq.
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {}\noptions attempts:1\n", pair.peer_ip),
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {} test dns {} --json --no-store --timeout 5000",
        resolv.display(),
        support::waddleperf_bin().display(),
        servers::DNS_WWW.0
    );
    // Five runs: one process start is at the mercy of a busy shared
    // machine (one came out 5 ms late right after a build).
    let (mut queries, mut systems) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let out = tokio::task::block_in_place(|| {
            run(Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c", &script])
                .env("WADDLEPERF_CONFIG", dir.path().join("none.toml")))
        });
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        println!("dns through the system's server: {}", v["metrics"]);
        assert_eq!(v["success"], true, "{v}");
        assert_eq!(v["metrics"]["server"], server.addr.to_string());
        assert_eq!(
            v["metrics"]["answers"],
            serde_json::json!([servers::DNS_WWW.1])
        );
        queries.push(v["latency_ms"].as_f64().unwrap());
        systems.push(
            v["metrics"]["dns_ms"]
                .as_f64()
                .expect("system resolver time"),
        );
    }
    judge(
        "dns from the CLI, direct query",
        &queries,
        DELAY_MS,
        OVERHEAD_MS,
        DELAY_MS,
    );
    // glibc asks A and AAAA in parallel, so one round trip plus its own work.
    judge(
        "dns from the CLI, system resolver (getaddrinfo: A and AAAA)",
        &systems,
        DELAY_MS,
        3.0 * OVERHEAD_MS,
        DELAY_MS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_against_caddy_times_the_quic_handshake_and_blocked_udp_is_its_own_error() {
    let _serial = support::timing::serial(&SERIAL).await;
    let pair = NetPair::new();
    let ip = pair.peer_ip.to_string();
    let ca = TestCa::new(&[format!("IP:{ip}")], 30);
    let caddy = Caddy::start(&ca, &ip, 8443, &pair);
    let url = format!("https://{}/", caddy.addr);
    let probe = |mode| {
        let mut p = HttpProbe::new(url.clone().parse().unwrap());
        p.mode = mode;
        p.ca_file = Some(ca.ca_pem.clone());
        p.timeout = Duration::from_secs(4);
        p
    };
    {
        let _delay = pair.delay_line(ms(DELAY_MS), Duration::ZERO);
        let (mut hs, mut ttfb) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            let r = probe(HttpMode::Http3).run().await;
            assert!(r.success, "{r:?}\ncaddy: {}", caddy.proc.log_text());
            assert_eq!(r.metrics.http_version.as_deref(), Some("3"));
            assert_eq!(r.metrics.status_code, Some(200));
            assert_eq!(r.metrics.bytes, Some(servers::CADDY_BODY.len() as u64));
            assert!(r.metrics.tls_ms.is_none(), "QUIC has no separate TLS phase");
            assert_eq!(
                r.metrics
                    .cert_subject
                    .as_deref()
                    .map(|s| s.contains("waddleperf-test-server")),
                Some(true)
            );
            hs.push(r.metrics.connect_ms.unwrap());
            ttfb.push(r.metrics.ttfb_ms.unwrap());
        }
        judge(
            "http/3 QUIC handshake (1 round trip)",
            &hs,
            DELAY_MS,
            H3_HANDSHAKE_OVERHEAD_MS,
            DELAY_MS,
        );
        judge(
            "http/3 ttfb (1 round trip)",
            &ttfb,
            DELAY_MS,
            OVERHEAD_MS,
            DELAY_MS,
        );
    }
    // auto: HTTP/2 over TCP, then the Alt-Svc offer is taken up.
    let auto = probe(HttpMode::Auto).run().await;
    assert!(auto.success, "{auto:?}");
    assert_eq!(auto.metrics.http_version.as_deref(), Some("3"), "{auto:?}");

    // UDP blocked: HTTP/3 is unavailable, its own kind; auto stays on TCP.
    pair.sh(&format!(
        "iptables -A INPUT -i {} -p udp --dport 8443 -j DROP",
        pair.peer_if
    ));
    let blocked = probe(HttpMode::Http3).run().await;
    println!(
        "http/3 with UDP blocked: {:?}: {:?}",
        blocked.error_kind, blocked.error
    );
    assert!(!blocked.success);
    assert_eq!(blocked.error_kind, Some(ErrorKind::Http3Unavailable));
    let auto = probe(HttpMode::Auto).run().await;
    assert!(auto.success, "{auto:?}");
    assert_eq!(auto.metrics.http_version.as_deref(), Some("2"));
    // What the fallback costs: the HTTP/2 exchange (3 round trips) plus
    // the Alt-Svc handshake's wait of 1 s, and no more.
    println!(
        "auto with UDP blocked: HTTP/2 after {:.0} ms (HTTP/2 total {:.1} ms, Alt-Svc wait 1000 ms)",
        auto.duration_ms,
        auto.metrics.total_ms.unwrap_or_default()
    );
    assert!(
        (1000.0..=1000.0 + 3.0 * DELAY_MS + 500.0).contains(&auto.duration_ms),
        "the fallback took {} ms",
        auto.duration_ms
    );
}
