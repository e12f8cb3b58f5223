//! `waddleperf serve` against nginx serving the same bytes on loopback:
//! download and upload rates with curl as the one client for both, and
//! each server's CPU time per Gbit moved (from /proc), in alternating
//! rounds of one run. Then our HTTP speed-test client against serve.
//! `cargo bench --bench serve` prints Markdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::peer::ServePeer;
use waddleperf_engine::kinds::{BandwidthKind, Direction};
use waddleperf_engine::probe::bandwidth::BandwidthProbe;
use waddleperf_engine::probe::Probe;
use waddleperf_engine::spec::BandwidthSpec;

const ROUNDS: usize = 5;
/// Parallel curls, and 100 MiB requests each makes in a round.
const STREAMS: usize = 2;
const REQUESTS: usize = 3;
const MIB: u64 = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    support::median(&mut v)
}

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with one worker: a 100 MiB file, and an upload sink that reads
/// and drops the body (as serve does).
fn nginx() -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("www")).unwrap();
    let mut data = vec![0u8; (100 * MIB) as usize];
    fastrand::fill(&mut data);
    std::fs::write(d.join("www/100m.bin"), data).unwrap();
    let port = support::free_port();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        client_max_body_size 0;
        location = /upload {{ return 200 "ok"; }}
    }}
}}
"#,
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        _dir: dir,
        port,
    }
}

/// `STREAMS` curls at once, each making `REQUESTS` requests: Gbit/s over
/// the wall time, and the server's CPU seconds per Gbit.
fn round(urls: &[String], upload: Option<&std::path::Path>, pid: u32) -> (f64, f64) {
    let cpu0 = cpu_secs(pid);
    let t = Instant::now();
    let kids: Vec<Child> = (0..STREAMS)
        .map(|_| {
            let mut c = Command::new("curl");
            c.args(["-s", "-o", "/dev/null", "--fail"]);
            if let Some(f) = upload {
                c.args(["-H", "Expect:", "--data-binary"])
                    .arg(format!("@{}", f.display()));
            }
            c.args(urls).stdout(Stdio::null()).spawn().unwrap()
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success(), "curl failed");
    }
    let secs = t.elapsed().as_secs_f64();
    let gbit = (STREAMS * urls.len()) as f64 * 100.0 * MIB as f64 * 8.0 / 1e9;
    (gbit / secs, (cpu_secs(pid) - cpu0) / gbit)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let serve = ServePeer::start("127.0.0.1", support::free_port(), None, &[]);
    let serve_pid = serve.proc.child.id();
    let ngx = nginx();
    let ngx_pid = ngx.child.id();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("100m.bin");
    let mut data = vec![0u8; (100 * MIB) as usize];
    fastrand::fill(&mut data);
    std::fs::write(&body, data).unwrap();

    println!(
        "`waddleperf serve` vs nginx (1 worker, sendfile) on loopback, the same 100 MiB bodies, curl as the client \
         ({STREAMS} at once, {REQUESTS} requests each), {ROUNDS} alternating rounds, medians; release build.\n"
    );
    println!("| test | serve | nginx | ratio | target | serve CPU s/Gbit | nginx CPU s/Gbit |");
    println!("|---|---|---|---|---|---|---|");
    for upload in [false, true] {
        let (mut ours, mut theirs, mut our_cpu, mut their_cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (serve_url, ngx_url) = if upload {
            (
                format!("{}speedtest/upload", serve.url()),
                format!("http://127.0.0.1:{}/upload", ngx.port),
            )
        } else {
            (
                format!("{}speedtest/download?size=100", serve.url()),
                format!("http://127.0.0.1:{}/100m.bin", ngx.port),
            )
        };
        let file = upload.then_some(body.as_path());
        for _ in 0..ROUNDS {
            let (g, c) = round(&vec![serve_url.clone(); REQUESTS], file, serve_pid);
            ours.push(g);
            our_cpu.push(c);
            let (g, c) = round(&vec![ngx_url.clone(); REQUESTS], file, ngx_pid);
            theirs.push(g);
            their_cpu.push(c);
        }
        let (o, t) = (median(ours), median(theirs));
        println!(
            "| {} | {o:.2} Gbit/s | {t:.2} Gbit/s | {:.2} | ≥ 0.9 | {:.3} | {:.3} |",
            if upload { "upload" } else { "download" },
            o / t,
            median(our_cpu),
            median(their_cpu)
        );
    }

    println!("\nOur HTTP speed-test clients against serve on loopback (4 streams, 4 s after 1 s left out), medians of {ROUNDS}:\n");
    println!("| kind | download | upload |");
    println!("|---|---|---|");
    for kind in [BandwidthKind::Waddleperf, BandwidthKind::Librespeed] {
        let (mut d, mut u) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let m = BandwidthProbe {
                spec: BandwidthSpec {
                    direction: Direction::Bidir,
                    seconds: 4,
                    omit: 1,
                    ..BandwidthSpec::for_server(kind, &serve.url()).unwrap()
                },
                tier: 1,
                progress: None,
            }
            .run()
            .await;
            assert!(m.success, "{m:?}");
            d.push(m.metrics.download_mbps.unwrap() / 1000.0);
            u.push(m.metrics.upload_mbps.unwrap() / 1000.0);
        }
        println!(
            "| {} | {:.2} Gbit/s | {:.2} Gbit/s |",
            kind.as_str(),
            median(d),
            median(u)
        );
    }
}
