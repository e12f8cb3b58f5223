//! Probe overhead: our TCP connect and HTTP TTFB against a bare socket and
//! curl on the same targets (loopback, and a namespace behind a 20 ms delay
//! line), as ratios and as errors against the injected truth. Needs root.
//! `cargo bench --bench probe_overhead` prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::netns::NetPair;
use support::servers::{curl, Nginx, TestCa};
use support::{free_port, median};
use waddleperf_engine::config::{HttpMode, TcpMode};
use waddleperf_engine::probe::http::HttpProbe;
use waddleperf_engine::probe::tcp::TcpProbe;
use waddleperf_engine::probe::Probe;

const N: usize = 41;

fn bare_connect(addr: SocketAddr) -> f64 {
    let t = Instant::now();
    let s = TcpStream::connect(addr).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(s);
    ms
}

async fn sample(label: &str, tcp: SocketAddr, url: &str, ca: &TestCa, truth: Option<f64>) {
    let (mut ours_c, mut bare_c, mut ours_t, mut curl_t) = (vec![], vec![], vec![], vec![]);
    for _ in 0..N {
        let r = TcpProbe::new(tcp.to_string().parse().unwrap(), TcpMode::Raw)
            .run()
            .await;
        ours_c.push(r.metrics.connect_ms.unwrap());
        bare_c.push(tokio::task::block_in_place(|| bare_connect(tcp)));
        let mut p = HttpProbe::new(url.parse().unwrap());
        p.mode = HttpMode::Http1;
        p.ca_file = Some(ca.ca_pem.clone());
        let r = p.run().await;
        assert!(r.success, "{r:?}");
        ours_t.push(r.metrics.ttfb_ms.unwrap());
        curl_t.push(
            tokio::task::block_in_place(|| curl(url, Some(&ca.ca_pem), &["--http1.1"])).ttfb_ms,
        );
    }
    let (oc, bc, ot, ct) = (
        median(&mut ours_c),
        median(&mut bare_c),
        median(&mut ours_t),
        median(&mut curl_t),
    );
    let err = |v: f64| {
        truth
            .map(|t| format!("{:+.3}", v - t))
            .unwrap_or_else(|| "–".into())
    };
    println!(
        "| {label}: TCP connect | {oc:.3} ms | bare socket {bc:.3} ms | {:.2} | {} | {} |",
        oc / bc,
        err(oc),
        err(bc)
    );
    println!(
        "| {label}: HTTP/1.1 TTFB | {ot:.3} ms | curl {ct:.3} ms | {:.2} | {} | {} |",
        ot / ct,
        err(ot),
        err(ct)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| target ({N} samples, medians) | ours | reference | ratio | our error vs truth | reference error |");
    println!("|---|---|---|---|---|---|");
    let ca = TestCa::new(&["DNS:localhost".into(), "IP:127.0.0.1".into()], 30);
    let nginx = Nginx::start(&ca, "127.0.0.1", free_port(), free_port(), None);
    sample(
        "loopback",
        nginx.http,
        &format!("https://127.0.0.1:{}/", nginx.https.port()),
        &ca,
        None,
    )
    .await;
    drop(nginx);

    let pair = NetPair::new();
    let ca = TestCa::new(&[format!("IP:{}", pair.peer_ip)], 30);
    let nginx = Nginx::start(&ca, &pair.peer_ip.to_string(), 8443, 8080, Some(&pair));
    let _delay = pair.delay_line(Duration::from_millis(20), Duration::ZERO);
    sample(
        "20 ms delay line",
        nginx.http,
        &format!("https://{}/", nginx.https),
        &ca,
        Some(20.0),
    )
    .await;
}
