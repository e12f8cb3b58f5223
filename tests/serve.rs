//! `waddleperf serve` as a peer: every path answers as curl sees it, and
//! bad clients get a clear status while the peer keeps serving with
//! bounded memory: malformed and oversized requests, too many connections,
//! an upload that stalls, one over the size limit, a download past the
//! time limit. The UDP echo runs beside the HTTP peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::free_port;
use support::peer::ServePeer;

/// `curl -s -w '%{http_code} %{size_download}' URL [args]`: the status,
/// the body size and the body (saved to a file).
fn curl(url: &str, args: &[&str]) -> (u16, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code} %{size_download}"])
        .args(args)
        .arg(url)
        .output()
        .expect("cannot run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut w = text.split_whitespace();
    let code = w.next().unwrap().parse().unwrap();
    let size = w.next().unwrap().parse().unwrap();
    let b = std::fs::read(&body).unwrap_or_default();
    (
        code,
        size,
        String::from_utf8_lossy(&b[..b.len().min(4096)]).to_string(),
    )
}

/// A raw request and whatever comes back before the peer closes or 3 s pass.
fn raw(peer: &ServePeer, request: &[u8]) -> String {
    let mut s = TcpStream::connect(peer.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn healthy(peer: &ServePeer) {
    let (code, _, body) = curl(&format!("{}health", peer.url()), &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"healthy\""), "{body}");
}

#[test]
fn every_path_answers_as_curl_sees_it() {
    let peer = ServePeer::start("127.0.0.1", free_port(), None, &[]);
    let u = peer.url();
    healthy(&peer);
    let (code, _, body) = curl(&format!("{u}speedtest/ping"), &[]);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["pong"], true);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    assert!(
        (v["timestamp"].as_f64().unwrap() - now_ms).abs() < 5_000.0,
        "{body}"
    );
    // Sizes exactly as asked, in MiB.
    assert_eq!(
        curl(&format!("{u}speedtest/download?size=3"), &[]).1,
        3 << 20
    );
    assert_eq!(curl(&format!("{u}speedtest/download"), &[]).1, 10 << 20);
    for path in ["garbage.php", "garbage", "backend/garbage.php"] {
        assert_eq!(
            curl(&format!("{u}{path}?ckSize=2&r=0.3"), &[]).1,
            2 << 20,
            "{path}"
        );
    }
    // Uploads counted to the byte.
    let (code, _, body) = curl(
        &format!("{u}speedtest/upload"),
        &["--data-binary", "@/etc/services", "-H", "Expect:"],
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let size = std::fs::metadata("/etc/services").unwrap().len();
    assert_eq!(v["bytes_received"].as_u64(), Some(size), "{body}");
    assert_eq!(v["success"], true);
    for path in ["empty.php", "empty", "backend/empty.php"] {
        let (code, n, _) = curl(
            &format!("{u}{path}?r=1"),
            &["--data-binary", "@/etc/services"],
        );
        assert_eq!((code, n), (200, 0), "{path}");
    }
    let (_, _, body) = curl(&format!("{u}getIP.php?isp=true"), &[]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["processedString"], "127.0.0.1", "{body}");
    let (_, _, body) = curl(&format!("{u}speedtest/info"), &[]);
    assert!(body.contains("\"recommended_streams\":6"), "{body}");
    let (code, _, body) = curl(
        &format!("{u}speedtest/result"),
        &["--data", r#"{"download_mbps":90.5,"upload_mbps":10}"#],
    );
    assert_eq!((code, body.as_str()), (200, r#"{"success":true}"#));
    // The responsiveness config points at the host the client asked for.
    let (_, _, body) = curl(
        &format!("{u}.well-known/nq"),
        &["-H", "Host: peer.lan:8080"],
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(
        v["urls"]["small_download_url"], "http://peer.lan:8080/rpm/small",
        "{body}"
    );
    assert_eq!(curl(&format!("{u}rpm/small"), &[]).1, 1);
    // HTTP/2 without TLS (prior knowledge), as the RPM client uses it.
    let out = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{size_download}",
        ])
        .arg(format!("{u}speedtest/download?size=1"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 1048576");
    // Mistakes named.
    let (code, _, body) = curl(&format!("{u}speedtest/download?size=500"), &[]);
    assert_eq!(code, 400);
    assert!(
        body.contains("size must be a whole number of MiB from 1 to 100"),
        "{body}"
    );
    let (code, _, body) = curl(&format!("{u}nope"), &[]);
    assert_eq!(code, 404);
    assert!(body.contains("no such path: /nope"), "{body}");
    let (code, _, body) = curl(&format!("{u}speedtest/upload"), &[]);
    assert_eq!(code, 405);
    assert!(
        body.contains("GET is not allowed on /speedtest/upload"),
        "{body}"
    );
}

#[test]
fn bad_clients_get_a_clear_status_and_the_peer_keeps_serving() {
    let peer = ServePeer::start(
        "127.0.0.1",
        free_port(),
        None,
        &[
            "--max-connections",
            "3",
            "--idle-seconds",
            "1",
            "--max-upload-mib",
            "1",
            "--max-seconds",
            "1",
        ],
    );
    let pid = peer.proc.child.id();
    let u = peer.url();

    // Not HTTP at all, and a request target longer than 8 KiB.
    let r = raw(&peer, b"\x16\x03\x01garbage that is not HTTP\r\n\r\n");
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r:?}");
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000));
    assert!(raw(&peer, long.as_bytes()).starts_with("HTTP/1.1 414"));
    // 2 MB of headers: refused without reading them all.
    let mut huge = b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..40_000 {
        huge.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    let r = raw(&peer, &huge);
    assert!(!r.starts_with("HTTP/1.1 200"), "{r:?}");
    healthy(&peer);

    // Over the size limit: 413 naming it.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 3 << 20]).unwrap();
    let (code, _, body) = curl(
        &format!("{u}speedtest/upload"),
        &[
            "--data-binary",
            &format!("@{}", big.display()),
            "-H",
            "Expect:",
        ],
    );
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("limit of 1 MiB"), "{body}");

    // An endless download ends, whole, at the time limit.
    let t = Instant::now();
    let (code, n, _) = curl(&format!("{u}rpm/large"), &["--max-time", "10"]);
    assert_eq!(code, 200);
    assert!(
        n > 0 && t.elapsed() < Duration::from_secs(5),
        "{n} bytes in {:?}",
        t.elapsed()
    );

    // An upload that stalls: closed after the idle limit; others served
    // meanwhile.
    let mut stalled = TcpStream::connect(peer.addr).unwrap();
    stalled
        .write_all(
            b"POST /speedtest/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
        )
        .unwrap();
    stalled.write_all(&[0u8; 1024]).unwrap();
    healthy(&peer);
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "a stalled upload held on {:?}",
        t.elapsed()
    );
    drop(stalled);

    // Three connections at most: a fourth is told the peer is busy.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(peer.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = raw(&peer, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 503"), "{r:?}");
    assert!(r.contains("3 connections is this peer's limit"), "{r:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    healthy(&peer);

    // Many parallel downloads cut off mid-body: memory stays bounded (the
    // bytes come from one 8 MiB pool).
    let kids: Vec<_> = (0..3)
        .map(|_| {
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "--max-time", "0.5"])
                .arg(format!("{u}speedtest/download?size=100"))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut k in kids {
        let _ = k.wait();
    }
    healthy(&peer);
    let rss = rss_kib(pid);
    println!(
        "serve's resident memory after the abuse: {} MiB",
        rss / 1024
    );
    assert!(rss < 96 * 1024, "{rss} KiB");
}

#[test]
fn the_udp_echo_runs_beside_the_http_peer() {
    let mut child = Command::new(support::waddleperf_bin())
        .args(["serve", "--http", "0", "--udp-echo", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let udp = lines.next().unwrap().unwrap();
    let http = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(udp.starts_with("UDP echo listening on 127.0.0.1:"), "{udp}");
    assert!(
        http.starts_with("HTTP peer listening on http://127.0.0.1:"),
        "{http}"
    );
    // Bad limits are named before anything listens.
    let out = Command::new(support::waddleperf_bin())
        .args(["serve", "--max-connections", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-connections must be at least 1"));
}
