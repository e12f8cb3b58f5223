//! Test support shared by the integration tests and benches (a crate of
//! its own, `publish = false`, that they depend on like any other): network namespaces with
//! injected truth (delay line, loss, rate), and real servers (nginx with a
//! generated certificate, sshd, silent and closed ports, curl as reference).
//!
//! Rules (shared/reference/test-network.md): only loopback and the test's own
//! namespaces are addressed; everything a test creates is removed when its
//! guard drops, pass or fail; names carry the process id and a counter so
//! parallel tests never collide. These tests need root (CI runs as root):
//! without it they fail with a message saying so, they never skip.
// Test peers panic with what went wrong (a test that cannot set up fails);
// constructors that build namespaces need root, so they are no `Default`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::new_without_default)]

#[cfg(target_os = "linux")]
pub mod chain;
#[cfg(target_os = "linux")]
pub mod cli_home;
#[cfg(target_os = "linux")]
pub mod desktop;
pub mod generated;
#[cfg(target_os = "linux")]
pub mod iperf;
#[cfg(target_os = "linux")]
pub mod netns;
#[cfg(target_os = "linux")]
pub mod peer;
#[cfg(target_os = "linux")]
pub mod servers;
#[cfg(target_os = "linux")]
pub mod session_bus;
#[cfg(target_os = "linux")]
pub mod sni;
pub mod timing;
pub mod unified_api;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process.
pub fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Runs a command and panics with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics unless running as root, naming what needs it.
pub fn require_root(what: &str) {
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        uid.trim(),
        "0",
        "{what} needs root (CAP_NET_ADMIN) to build network namespaces and start servers; \
         CI runs as root: run the tests with sudo"
    );
}

/// A binary of this workspace, built next to the running test or bench:
/// `target/<profile>/deps/<test>-<hash>` runs, `target/<profile>/<name>` is
/// the binary (cargo builds a package's binaries before its tests and
/// benches run).
pub fn built_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --workspace, or cargo test --workspace)",
        bin.display()
    );
    bin
}

/// The `waddleperf` binary under test.
pub fn waddleperf_bin() -> PathBuf {
    built_bin("waddleperf")
}

/// `waddleperf --config CONFIG --db DB`, with no log filter from the
/// environment (tests read its output).
pub fn waddleperf_cmd(config: &std::path::Path, db: &std::path::Path) -> Command {
    let mut c = Command::new(waddleperf_bin());
    c.arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .env_remove("WADDLEPERF_LOG");
    c
}

/// A free TCP port on loopback for a server a test starts. Ports come from
/// 20000–32767, below the kernel's ephemeral range (32768 and up, where
/// `bind(…:0)` and outgoing connections take theirs), one after another
/// within this process (tests run in parallel threads) from a start that
/// depends on the process id (test binaries run one after another); each is
/// checked free before it is handed out. So no test's port is taken by
/// another test between this call and the server's bind.
pub fn free_port() -> u16 {
    static NEXT: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let next = NEXT.get_or_init(|| AtomicU32::new(std::process::id() * 97 % SPAN));
    for _ in 0..SPAN {
        let port = (LOW + next.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32767");
}

/// A TCP port on loopback that stays closed while this is held: bound but
/// not listening, so a connection to it is refused (RST) and no other test
/// can start a server on it meanwhile.
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub port: u16,
}

pub fn closed_port() -> ClosedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .map(|a| a.port())
        .unwrap();
    ClosedPort {
        _socket: socket,
        port,
    }
}

/// A CSV text as WaddlePerf writes it (RFC 4180 quoting, one record per
/// line): the header and the rows.
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let fields = |line: &str| {
        let (mut out, mut cur, mut quoted, mut chars) =
            (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => out.push(std::mem::take(&mut cur)),
                (c, _) => cur.push(c),
            }
        }
        out.push(cur);
        out
    };
    let mut lines = text.lines();
    let header = lines.next().map(fields).unwrap_or_default();
    (header, lines.map(fields).collect())
}

/// Median of samples.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A tmpfs of a given size (e.g. "1m") for disk-full tests, unmounted on drop.
pub struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    pub fn new(size: &str) -> SmallDisk {
        require_root("a disk-full test (mounting a small tmpfs)");
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Fills the remaining space with a file.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

/// What `ping` reported: its summary line and every reply's time.
#[derive(Debug, Clone)]
pub struct Ping {
    pub sent: u32,
    pub received: u32,
    /// ping's own average (its summary line).
    pub avg: f64,
    /// The median of the per-reply times: one late reply (a stalled
    /// machine) moves it little, unlike the average.
    pub median: f64,
    /// The fastest reply: the path with the least of the machine's stalls.
    pub min: f64,
}

/// Runs `ping -c count -i interval -W wait` and reads its report.
pub fn ping(ip: IpAddr, count: u32, interval_s: &str, wait_s: &str) -> Ping {
    let out = Command::new("ping")
        .args([
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            interval_s,
            "-W",
            wait_s,
        ])
        .arg(ip.to_string())
        .output()
        .expect("cannot run ping (iputils-ping)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut p = Ping {
        sent: 0,
        received: 0,
        avg: f64::NAN,
        median: f64::NAN,
        min: f64::NAN,
    };
    let mut times = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.split(" time=").nth(1) {
            let t = t.split_whitespace().next().unwrap_or_default();
            times.push(t.parse::<f64>().unwrap());
        }
        if line.contains("packets transmitted") {
            let nums: Vec<u32> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            p.sent = nums[0];
            p.received = nums[1];
        }
        if let Some(rest) = line.split(" = ").nth(1).filter(|_| line.starts_with("rtt")) {
            p.avg = rest.split('/').nth(1).unwrap().parse().unwrap();
        }
    }
    if !times.is_empty() {
        p.median = median(&mut times);
        p.min = times[0];
    }
    p
}

/// Whether `ping -M do -s payload` gets through.
pub fn df_ping_passes(target: IpAddr, payload: u32) -> bool {
    Command::new("ping")
        .args([
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            &payload.to_string(),
        ])
        .arg(target.to_string())
        .output()
        .unwrap()
        .status
        .success()
}
