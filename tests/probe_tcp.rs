//! TCP probe: raw connect, TLS facts, SSH banners from a real sshd, and the
//! failure modes (refused, silent server, black hole) with their timing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::time::Duration;
use support::free_port;
use support::netns::NetPair;
use support::servers::{Nginx, SilentServer, Sshd, TestCa};
use waddleperf_engine::config::TcpMode;
use waddleperf_engine::model::ErrorKind;
use waddleperf_engine::probe::tcp::TcpProbe;
use waddleperf_engine::probe::Probe;

fn probe(addr: impl ToString, mode: TcpMode, timeout_ms: u64) -> TcpProbe {
    let mut p = TcpProbe::new(addr.to_string().parse().unwrap(), mode);
    p.timeout = Duration::from_millis(timeout_ms);
    p
}

#[tokio::test]
async fn ssh_banner_from_real_sshd() {
    support::require_root("the sshd test server");
    let sshd = Sshd::start("127.0.0.1", free_port());
    let r = probe(sshd.addr, TcpMode::Ssh, 5000).run().await;
    assert!(r.success, "{r:?}\n{}", sshd.proc.log_text());
    let banner = r.metrics.ssh_banner.as_deref().unwrap();
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner}");
    assert!(!banner.ends_with('\r'));
    assert_eq!(r.target, format!("ssh://{}", sshd.addr));
    assert!(r.metrics.connect_ms.unwrap() > 0.0);
    assert_eq!(r.latency_ms, r.metrics.connect_ms);
    println!("banner: {banner}");
}

#[tokio::test]
async fn ssh_mode_needs_a_banner() {
    // A server that answers something else and closes: protocol error.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            use std::io::Write;
            let _ = s.write_all(b"220 smtp.example ESMTP ready\r\n");
        }
    });
    let r = probe(addr, TcpMode::Ssh, 3000).run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Protocol), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("220 smtp.example"),
        "{r:?}"
    );

    // A server that accepts and says nothing: timeout at the configured
    // timeout, not later. A connect alone is not an SSH success.
    let silent = SilentServer::start(b"");
    let r = probe(silent.addr, TcpMode::Ssh, 600).run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{r:?}");
    assert!(r.metrics.connect_ms.is_some(), "the connect phase is kept");
    assert!(
        (600.0..900.0).contains(&r.duration_ms),
        "timed out at {} ms",
        r.duration_ms
    );
}

#[tokio::test]
async fn closed_port_is_refused_fast() {
    let closed = support::closed_port();
    let port = closed.port;
    let r = probe(format!("127.0.0.1:{port}"), TcpMode::Raw, 5000)
        .run()
        .await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("connection refused"));
    // Refusal comes back at once, far inside the 5 s timeout.
    assert!(r.duration_ms < 1000.0, "{}", r.duration_ms);
}

#[tokio::test]
async fn black_holed_port_times_out_at_the_timeout() {
    let pair = NetPair::new();
    pair.black_hole_tcp(9);
    let r = probe(format!("{}:9", pair.peer_ip), TcpMode::Raw, 700)
        .run()
        .await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{r:?}");
    println!(
        "black hole: timed out after {:.1} ms (timeout 700 ms)",
        r.duration_ms
    );
    assert!(
        (700.0..1000.0).contains(&r.duration_ms),
        "{}",
        r.duration_ms
    );
}

#[tokio::test]
async fn tls_handshake_timed_apart_with_certificate_facts() {
    support::require_root("the nginx test server");
    let ca = TestCa::new(&["DNS:localhost".into(), "IP:127.0.0.1".into()], 90);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    let mut p = probe(
        format!("localhost:{}", nginx.https.port()),
        TcpMode::Tls,
        5000,
    );
    p.ca_file = Some(ca.ca_pem.clone());
    let r = p.run().await;
    assert!(r.success, "{r:?}");
    let m = &r.metrics;
    let (c, t) = (m.connect_ms.unwrap(), m.tls_ms.unwrap());
    assert!(c > 0.0 && t > 0.0);
    assert!(
        (r.latency_ms.unwrap() - (c + t)).abs() < 1e-9,
        "TLS latency is connect + handshake"
    );
    assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(m.cipher.is_some());
    assert_eq!(
        m.cert_subject.as_deref(),
        Some("O=WaddlePerf Tests,CN=waddleperf-test-server")
    );
    assert_eq!(m.cert_issuer.as_deref(), Some("CN=WaddlePerf Test CA"));
    assert!((89..=90).contains(&m.cert_days_left.unwrap()));
    assert_eq!(r.target, format!("tls://localhost:{}", nginx.https.port()));

    // A name the certificate does not cover.
    p.server_name = Some("wrong.example".into());
    let r = p.run().await;
    assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("not valid for this host name"),
        "{r:?}"
    );

    // TLS to a port that does not speak it.
    let mut p = probe(
        format!("127.0.0.1:{}", nginx.http.port()),
        TcpMode::Tls,
        3000,
    );
    p.insecure = true;
    let r = p.run().await;
    assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
}

#[tokio::test]
async fn raw_connect_and_bad_targets() {
    let silent = SilentServer::start(b"");
    let r = probe(silent.addr, TcpMode::Raw, 2000).run().await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.latency_ms, r.metrics.connect_ms);
    assert_eq!(r.resolved_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.metrics.dns_ms, None);

    // A target without a port is refused where it is parsed, before any probe.
    let e = "localhost-without-port"
        .parse::<waddleperf_engine::spec::HostPort>()
        .unwrap_err();
    assert!(e.contains("expected host:port"), "{e}");
    let r = probe("no-such-host.invalid:80", TcpMode::Raw, 2000)
        .run()
        .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Dns), "{r:?}");
}

#[tokio::test]
async fn happy_eyeballs_moves_past_a_dead_address() {
    use waddleperf_engine::probe::net::{connect, ATTEMPT_DELAY};
    let pair = NetPair::new();
    pair.black_hole_tcp(9);
    let live = SilentServer::start(b"");
    let dead: std::net::SocketAddr = format!("{}:9", pair.peer_ip).parse().unwrap();

    // A black-holed first address costs the attempt delay, not the timeout.
    let t = std::time::Instant::now();
    let c = connect(&[dead, live.addr]).await.unwrap();
    let took = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(c.addr, live.addr);
    assert!(
        c.connect_ms < 50.0,
        "the winner's own connect time: {}",
        c.connect_ms
    );
    let delay = ATTEMPT_DELAY.as_secs_f64() * 1000.0;
    assert!((delay..delay + 200.0).contains(&took), "took {took} ms");
    println!("dead first address: connected to {} after {took:.1} ms (attempt delay {delay} ms), connect_ms {:.3}", c.addr, c.connect_ms);

    // A refused first address moves on at once.
    let held = support::closed_port();
    let closed: std::net::SocketAddr = format!("127.0.0.1:{}", held.port).parse().unwrap();
    let t = std::time::Instant::now();
    let c = connect(&[closed, live.addr]).await.unwrap();
    assert_eq!(c.addr, live.addr);
    assert!(t.elapsed() < ATTEMPT_DELAY, "{:?}", t.elapsed());

    // All dead: the last error is reported.
    let e = connect(&[closed]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
}
