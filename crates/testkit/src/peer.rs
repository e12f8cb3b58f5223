//! `waddleperf serve` as the HTTP speed-test peer (WaddlePerf speed test,
//! LibreSpeed paths, responsiveness), on loopback or inside a namespace,
//! and behind a queued router: the HTTP twin of `iperf.rs`.

use super::servers::Proc;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// `waddleperf serve --http PORT --listen IP [extra…]` (inside `ns` when
/// given), ready when it prints its address; killed on drop.
pub struct ServePeer {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl ServePeer {
    pub fn start(ip: &str, port: u16, ns: Option<&str>, extra: &[&str]) -> ServePeer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let bin = super::waddleperf_bin();
        let mut cmd = match ns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(["serve", "--http", &port.to_string(), "--listen", ip])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("cannot start waddleperf serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let proc = Proc {
            child,
            name: "waddleperf serve",
            log: Some(log),
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("serve said {line:?}:\n{}", proc.log_text()));
        ServePeer { proc, addr, dir }
    }

    /// The base URL tests give the speed-test clients.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// A `waddleperf serve` behind one router that forwards `rate` each way
/// through a token bucket whose queue holds a packet at most `queue_ms`:
/// the HTTP peer on a bloated path (see `iperf::QueuedServer`).
pub struct QueuedPeer {
    pub server: ServePeer,
    pub chain: super::chain::Chain,
}

impl QueuedPeer {
    pub fn start(rate: &str, queue_ms: f64) -> QueuedPeer {
        let chain = super::chain::Chain::bloated(rate, queue_ms);
        let server = ServePeer::start(
            &chain.target().to_string(),
            8080,
            chain.nodes.last().map(String::as_str),
            &[],
        );
        QueuedPeer { server, chain }
    }
}
