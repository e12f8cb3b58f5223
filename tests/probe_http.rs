//! HTTP probe against a real nginx on loopback (HTTP/1.1 and HTTP/2 over
//! TLS with a generated certificate, plain HTTP), checked against curl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::time::Duration;
use support::servers::{curl, Nginx, SilentServer, TestCa, NGINX_FILE_BYTES, NGINX_ROOT_BODY};
use support::{free_port, median};
use waddleperf_engine::config::HttpMode;
use waddleperf_engine::model::ErrorKind;
use waddleperf_engine::probe::http::HttpProbe;
use waddleperf_engine::probe::Probe;

struct Fixture {
    ca: TestCa,
    nginx: Nginx,
}

fn fixture(days: u32) -> Fixture {
    support::require_root("the nginx test server");
    let ca = TestCa::new(&["DNS:localhost".into(), "IP:127.0.0.1".into()], days);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    Fixture { ca, nginx }
}

impl Fixture {
    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.nginx.https.port())
    }
    fn probe(&self, path: &str, mode: HttpMode) -> HttpProbe {
        let mut p = HttpProbe::new(self.https(path).parse().unwrap());
        p.mode = mode;
        p.ca_file = Some(self.ca.ca_pem.clone());
        p.timeout = Duration::from_secs(5);
        p
    }
}

#[tokio::test]
async fn versions_status_bytes_and_phases() {
    let f = fixture(30);
    for (mode, want) in [
        (HttpMode::Auto, "2"),
        (HttpMode::Http2, "2"),
        (HttpMode::Http1, "1.1"),
    ] {
        let r = f.probe("/", mode).run().await;
        assert!(r.success, "{mode:?}: {r:?}");
        let m = &r.metrics;
        assert_eq!(m.http_version.as_deref(), Some(want), "{mode:?}: ALPN");
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.bytes, Some(NGINX_ROOT_BODY.len() as u64));
        assert_eq!(m.redirects, Some(0));
        assert_eq!(r.resolved_ip.as_deref(), Some("127.0.0.1"));
        let phases =
            [m.dns_ms, m.connect_ms, m.tls_ms, m.ttfb_ms].map(|p| p.expect("phase measured"));
        assert!(
            phases.iter().all(|p| *p > 0.0),
            "{mode:?}: every phase positive: {phases:?}"
        );
        let sum: f64 = phases.iter().sum();
        let total = m.total_ms.unwrap();
        // The phases are disjoint parts of the total; what is left is the
        // body transfer and the HTTP connection set-up, small on loopback.
        assert!(
            sum <= total + 0.001,
            "{mode:?}: phases {sum} > total {total}"
        );
        assert!(total - sum < 2.0, "{mode:?}: phases {sum} vs total {total}");
        assert_eq!(r.latency_ms, m.ttfb_ms, "HTTP headline latency is TTFB");
        assert!(r.duration_ms >= total);
        println!(
            "{mode:?}: dns {:.3} connect {:.3} tls {:.3} ttfb {:.3} total {total:.3} ms",
            phases[0], phases[1], phases[2], phases[3]
        );
    }
}

#[tokio::test]
async fn agrees_with_curl_on_the_same_url() {
    let f = fixture(30);
    let url = f.https("/files/100k.bin");
    let (mut ours_ttfb, mut ours_total, mut curl_ttfb, mut curl_total) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let r = f.probe("/files/100k.bin", HttpMode::Auto).run().await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.metrics.bytes, Some(NGINX_FILE_BYTES));
        ours_ttfb.push(r.metrics.ttfb_ms.unwrap());
        ours_total.push(r.metrics.total_ms.unwrap());
        let c = curl(&url, Some(&f.ca.ca_pem), &["--http2"]);
        assert_eq!((c.status, c.http_version), (200, 2.0));
        curl_ttfb.push(c.ttfb_ms);
        curl_total.push(c.total_ms);
    }
    let (ot, ct) = (median(&mut ours_ttfb), median(&mut curl_ttfb));
    let (oa, ca) = (median(&mut ours_total), median(&mut curl_total));
    println!(
        "median ttfb: ours {ot:.3} ms, curl {ct:.3} ms; total: ours {oa:.3} ms, curl {ca:.3} ms"
    );
    // Stated tolerance on loopback: within 3 ms of curl for both figures.
    assert!((ot - ct).abs() < 3.0, "ttfb ours {ot} vs curl {ct}");
    assert!((oa - ca).abs() < 3.0, "total ours {oa} vs curl {ca}");
}

#[tokio::test]
async fn throughput_is_bytes_over_transfer_time() {
    let f = fixture(30);
    let r = f.probe("/files/100k.bin", HttpMode::Http1).run().await;
    assert!(r.success, "{r:?}");
    let m = &r.metrics;
    let got = m.throughput_mbps.unwrap();
    let megabits = NGINX_FILE_BYTES as f64 * 8.0 / 1e6;
    // Megabits over (request sent → last byte): that span is at least the
    // TTFB and at most everything after the TLS handshake. (The rate truth
    // itself is checked on a tbf-limited link in netns_truth.rs.)
    let after_tls_s =
        (m.total_ms.unwrap() - m.dns_ms.unwrap() - m.connect_ms.unwrap() - m.tls_ms.unwrap())
            / 1000.0;
    let ttfb_s = m.ttfb_ms.unwrap() / 1000.0;
    assert!(
        got >= megabits / after_tls_s * 0.999,
        "{got} below {}",
        megabits / after_tls_s
    );
    assert!(
        got <= megabits / ttfb_s,
        "{got} above {}",
        megabits / ttfb_s
    );
}

#[tokio::test]
async fn certificates_are_checked_by_default() {
    let f = fixture(30);
    // Without our CA the certificate is untrusted.
    let mut p = f.probe("/", HttpMode::Auto);
    p.ca_file = None;
    let r = p.run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("unknown or untrusted"),
        "{r:?}"
    );
    assert!(
        r.metrics.connect_ms.is_some(),
        "phases before the failure are kept"
    );
    // The per-target opt-out works, and still reports the certificate.
    p.insecure = true;
    let r = p.run().await;
    assert!(r.success, "{r:?}");
    let m = &r.metrics;
    assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    // The IANA names of the TLS 1.3 suites.
    let cipher = m.cipher.as_deref().unwrap();
    assert!(
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&cipher),
        "{cipher}"
    );
    // Subject and issuer as RFC 4514 (RFC 2253) strings, as openssl prints them.
    let openssl = |what: &str, pem: &std::path::Path| {
        let out = support::run(
            std::process::Command::new("openssl")
                .args(["x509", "-noout", what, "-nameopt", "RFC2253", "-in"])
                .arg(pem),
        );
        out.trim().split_once('=').unwrap().1.to_owned()
    };
    assert_eq!(
        m.cert_subject.as_deref(),
        Some(openssl("-subject", &f.ca.cert).as_str())
    );
    assert_eq!(
        m.cert_subject.as_deref(),
        Some("O=WaddlePerf Tests,CN=waddleperf-test-server")
    );
    assert_eq!(
        m.cert_issuer.as_deref(),
        Some(openssl("-issuer", &f.ca.cert).as_str())
    );
    // Issued for 30 days a moment ago: 30 whole days left, or 29 once a
    // second has passed (whole days, rounded down).
    let days = m.cert_days_left.unwrap();
    assert!((29..=30).contains(&days), "{days}");
}

#[tokio::test]
async fn http2_forced_against_a_server_without_it_is_a_protocol_error() {
    let f = fixture(30);
    let url = format!("https://localhost:{}/", f.nginx.https_h1.port());
    let mut p = HttpProbe::new(url.clone().parse().unwrap());
    p.mode = HttpMode::Http2;
    p.ca_file = Some(f.ca.ca_pem.clone());
    p.timeout = Duration::from_secs(5);
    let r = p.run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Protocol), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("HTTP/2 refused"),
        "{r:?}"
    );
    // The same server in auto mode speaks HTTP/1.1.
    p.mode = HttpMode::Auto;
    let r = p.run().await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.metrics.http_version.as_deref(), Some("1.1"));
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_for_its_name() {
    support::require_root("the nginx test server");
    // The certificate names `localhost` only; the server is reached as
    // 127.0.0.1, where it listens: the connection works, the name does not.
    let ca = TestCa::new(&["DNS:localhost".into()], 30);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    let mut p = HttpProbe::new(
        format!("https://127.0.0.1:{}/", nginx.https.port())
            .parse()
            .unwrap(),
    );
    p.ca_file = Some(ca.ca_pem.clone());
    p.timeout = Duration::from_secs(5);
    let r = p.run().await;
    assert!(!r.success, "{r:?}");
    assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("not valid for this host name"),
        "{r:?}"
    );
    assert!(
        r.metrics.connect_ms.is_some(),
        "the connection itself worked"
    );
    // The same server by the name it has: accepted.
    let mut p = HttpProbe::new(
        format!("https://localhost:{}/", nginx.https.port())
            .parse()
            .unwrap(),
    );
    p.ca_file = Some(ca.ca_pem.clone());
    p.timeout = Duration::from_secs(5);
    assert!(p.run().await.success);
}

#[tokio::test]
async fn redirects_are_followed_with_separate_phases() {
    let f = fixture(30);
    let r = f.probe("/redirect", HttpMode::Auto).run().await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.metrics.redirects, Some(1));
    assert_eq!(r.metrics.status_code, Some(200));
    assert_eq!(r.metrics.bytes, Some(NGINX_ROOT_BODY.len() as u64));
    let chain = r.metrics.redirect_chain.as_ref().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].status_code, 302);
    assert!(chain[0].url.ends_with("/redirect"));
    // The final hop's total is its own, not the sum of both hops.
    assert!(r.metrics.total_ms.unwrap() < r.duration_ms);

    let mut p = f.probe("/loop", HttpMode::Auto);
    p.max_redirects = 3;
    let r = p.run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Protocol));
    assert!(r
        .error
        .as_deref()
        .unwrap()
        .contains("more than 3 redirects"));
    // The redirects followed: the limit, never one more.
    assert_eq!(r.metrics.redirects, Some(3));
    assert_eq!(r.metrics.redirect_chain.as_ref().map(Vec::len), Some(4));
}

#[tokio::test]
async fn a_body_longer_than_the_limit_is_cut_there_and_says_so() {
    let f = fixture(30);
    for (mode, limit) in [
        (HttpMode::Http1, 1000),
        (HttpMode::Http2, 1000),
        (HttpMode::Http1, 65_536),
    ] {
        let mut p = f.probe("/files/100k.bin", mode);
        p.max_body_bytes = limit;
        let r = p.run().await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.metrics.bytes, Some(limit), "{mode:?}");
        assert_eq!(r.metrics.body_truncated, Some(true), "{mode:?}");
    }
    // A body of exactly the limit, or shorter, is whole.
    let mut p = f.probe("/files/100k.bin", HttpMode::Http1);
    p.max_body_bytes = NGINX_FILE_BYTES;
    let r = p.run().await;
    assert_eq!(r.metrics.bytes, Some(NGINX_FILE_BYTES));
    assert_eq!(r.metrics.body_truncated, None);
}

#[tokio::test]
async fn error_status_fails_with_timings_kept() {
    let f = fixture(30);
    let r = f.probe("/status/503", HttpMode::Auto).run().await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Http));
    assert_eq!(r.metrics.status_code, Some(503));
    assert!(r
        .error
        .as_deref()
        .unwrap()
        .contains("503 Service Unavailable"));
    assert!(r.metrics.ttfb_ms.unwrap() > 0.0);
}

#[tokio::test]
async fn plain_http_by_address() {
    let f = fixture(30);
    let r = HttpProbe::new(
        format!("http://127.0.0.1:{}/", f.nginx.http.port())
            .parse()
            .unwrap(),
    )
    .run()
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.metrics.http_version.as_deref(), Some("1.1"));
    assert_eq!(r.metrics.dns_ms, None, "an address literal is not resolved");
    assert_eq!(r.metrics.tls_ms, None);
    assert!(r.metrics.connect_ms.unwrap() > 0.0);
}

#[tokio::test]
async fn garbage_and_silence_are_clear_errors() {
    // Garbage as the answer to the request (sent before it, hyper may read
    // it while idle and report a closed connection instead).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = listener.local_addr().unwrap();
    let garbage = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"this is not http\r\n\r\n").await;
        // Held open: the answer is bad, not cut short.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let r = HttpProbe::new(format!("http://{garbage_addr}/").parse().unwrap())
        .run()
        .await;
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Protocol), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("not valid HTTP"),
        "{r:?}"
    );
    garbage.abort();

    let silent = SilentServer::start(b"");
    let mut p = HttpProbe::new(format!("http://{}/", silent.addr).parse().unwrap());
    p.timeout = Duration::from_millis(400);
    let r = p.run().await;
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{r:?}");
    assert!(
        r.duration_ms >= 400.0 && r.duration_ms < 700.0,
        "timed out at {}",
        r.duration_ms
    );
    assert!(r.metrics.connect_ms.is_some());

    let held = support::closed_port();
    let closed = held.port;
    let r = HttpProbe::new(format!("http://127.0.0.1:{closed}/").parse().unwrap())
        .run()
        .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");

    let r = HttpProbe::new("http://no-such-host.invalid/".parse().unwrap())
        .run()
        .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Dns), "{r:?}");
}

/// A plain HTTP/1.1 server that spends a known time on each request: it
/// reads the request, works for `spin` (on the CPU, as a Python or PHP
/// server does) then sleeps `sleep`, answers, and reports the time from the
/// request's first byte to the answer's write: no client can see a TTFB
/// below that.
struct SlowServer {
    addr: std::net::SocketAddr,
    turnaround: std::sync::mpsc::Receiver<Duration>,
}

impl SlowServer {
    fn start(spin: Duration, sleep: Duration) -> SlowServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, turnaround) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                let mut first = None;
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            first.get_or_insert_with(std::time::Instant::now);
                            buf.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
                let Some(t0) = first else { continue };
                while t0.elapsed() < spin {
                    std::hint::spin_loop();
                }
                std::thread::sleep(sleep);
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let at = std::time::Instant::now();
                let _ = s.write_all(answer);
                let _ = tx.send(at - t0);
            }
        });
        SlowServer { addr, turnaround }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttfb_is_never_below_the_servers_turnaround_and_follows_its_delay() {
    // A server on the CPU for 0.5 ms: the client's write wakes it, and it may
    // take the writer's core at once (the case that gave 20 µs TTFBs).
    let busy = SlowServer::start(Duration::from_micros(500), Duration::ZERO);
    let url = format!("http://{}/", busy.addr);
    for run in 0..40 {
        let mut p = HttpProbe::new(url.clone().parse().unwrap());
        p.mode = HttpMode::Http1;
        p.timeout = Duration::from_secs(5);
        let m = p.run().await;
        assert!(m.success, "{m:?}");
        let ttfb = m.metrics.ttfb_ms.unwrap();
        let server = busy.turnaround.recv().unwrap().as_secs_f64() * 1000.0;
        assert!(
            ttfb >= server,
            "run {run}: TTFB {ttfb:.3} ms below the server's own turnaround {server:.3} ms"
        );
    }

    // A server that answers 40 ms after the request: TTFB is the delay plus
    // loopback, within 3 ms, and next to curl's.
    let slow = SlowServer::start(Duration::ZERO, Duration::from_millis(40));
    let url = format!("http://{}/", slow.addr);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let mut p = HttpProbe::new(url.clone().parse().unwrap());
        p.mode = HttpMode::Http1;
        p.timeout = Duration::from_secs(5);
        let m = p.run().await;
        assert!(m.success, "{m:?}");
        ours.push(m.metrics.ttfb_ms.unwrap());
        slow.turnaround.recv().unwrap();
        let u = url.clone();
        theirs.push(
            tokio::task::spawn_blocking(move || curl(&u, None, &[]))
                .await
                .unwrap()
                .ttfb_ms,
        );
        slow.turnaround.recv().unwrap();
    }
    let (o, c) = (median(&mut ours), median(&mut theirs));
    println!("TTFB at a 40 ms server delay: ours {o:.3} ms, curl {c:.3} ms");
    assert!(ours.iter().all(|t| *t >= 40.0), "{ours:?}");
    assert!(o <= 43.0, "ours {o:.3} ms");
    assert!((o - c).abs() <= 2.0, "ours {o:.3} ms, curl {c:.3} ms");
}
