//! Network namespaces as test hosts, and truth injected between them.
//!
//! A [`NetPair`] is a namespace ("peer") joined to the test's own namespace
//! by a veth pair, with a private /30 picked from the process id and a
//! counter. Servers run inside the peer with [`NetPair::command`]; the code
//! under test runs in the test process and reaches the peer at `peer_ip`.

use super::{next_id, require_root, run};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct NetPair {
    pub ns: String,
    pub host_if: String,
    pub peer_if: String,
    pub host_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
    /// The same link's IPv6 addresses (a private /64, no duplicate-address
    /// detection, so they work at once).
    pub host_ip6: Ipv6Addr,
    pub peer_ip6: Ipv6Addr,
}

impl NetPair {
    pub fn new() -> NetPair {
        require_root("a network-namespace test");
        let pid = std::process::id();
        let n = next_id();
        let ns = format!("wp{pid}n{n}");
        // Interface names are at most 15 bytes.
        let host_if = format!("wh{}x{n}", pid % 1_000_000);
        let peer_if = format!("wq{}x{n}", pid % 1_000_000);
        // 10.<200 + pid % 50>.<n>.{1,2}/30: distinct per process and per pair.
        let a = 200 + (pid % 50) as u8;
        let b = (n % 64) as u8 * 4;
        let host_ip = Ipv4Addr::new(10, a, b, 1);
        let peer_ip = Ipv4Addr::new(10, a, b, 2);
        let host_ip6 = Ipv6Addr::new(0xfd77, u16::from(a), u16::from(b), 0, 0, 0, 0, 1);
        let peer_ip6 = Ipv6Addr::new(0xfd77, u16::from(a), u16::from(b), 0, 0, 0, 0, 2);
        // Leftovers of an earlier crashed run with the same names go first.
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let pair = NetPair {
            ns,
            host_if,
            peer_if,
            host_ip,
            peer_ip,
            host_ip6,
            peer_ip6,
        };
        run(Command::new("ip").args(["netns", "add", &pair.ns]));
        run(Command::new("ip").args([
            "link",
            "add",
            &pair.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &pair.peer_if,
            "netns",
            &pair.ns,
        ]));
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("{host_ip}/30"),
            "dev",
            &pair.host_if,
        ]));
        run(Command::new("ip").args([
            "-6",
            "addr",
            "add",
            &format!("{host_ip6}/64"),
            "dev",
            &pair.host_if,
            "nodad",
        ]));
        run(Command::new("ip").args(["link", "set", &pair.host_if, "up"]));
        pair.sh(&format!(
            "ip addr add {peer_ip}/30 dev {p} && ip -6 addr add {peer_ip6}/64 dev {p} nodad \
             && ip link set {p} up && ip link set lo up",
            p = pair.peer_if
        ));
        pair
    }

    /// A command run inside the peer namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Runs a shell script inside the peer namespace; panics if it fails.
    pub fn sh(&self, script: &str) -> String {
        run(self.command("sh").args(["-c", script]))
    }

    /// Delays one direction of every exchange with the peer, so a round trip
    /// from the test takes `delay` (plus up to `jitter`) more.
    ///
    /// TCP is delayed on the peer's *ingress* on purpose. Holding the
    /// peer's own outgoing packets (an OUTPUT rule) keeps them charged to the
    /// sending socket, and Linux then holds back that socket's next small
    /// write until the earlier packet leaves the host (TCP small queues):
    /// a server's response sent just after its HTTP/2 SETTINGS came a whole
    /// extra round trip late, for curl and for us alike. A real network does
    /// not do that; a delay on ingress does not either.
    ///
    /// Datagrams (UDP, ICMP) are delayed on the peer's *egress* instead: the
    /// kernel stamps a packet's arrival before any INPUT rule runs, so a
    /// responder that reads that stamp (our UDP echo peer does, to report its
    /// own turnaround) would otherwise count the line's delay as its own.
    /// Datagram sockets have no small-queue hold-back.
    pub fn delay_line(&self, delay: Duration, jitter: Duration) -> DelayLine {
        DelayLine::start(self, delay, jitter)
    }

    /// Drops each packet the peer sends with probability `p` (0..1).
    pub fn loss(&self, p: f64) {
        self.sh(&format!(
            "iptables -A OUTPUT -o {} -m statistic --mode random --probability {p} -j DROP",
            self.peer_if
        ));
    }

    /// Drops every packet arriving at the peer on `port` (TCP): a black hole.
    pub fn black_hole_tcp(&self, port: u16) {
        self.sh(&format!(
            "iptables -A INPUT -i {} -p tcp --dport {port} -j DROP",
            self.peer_if
        ));
    }

    /// Limits both directions to `rate` with a token bucket on each end of
    /// the link (the host's end goes with the link when the pair drops).
    pub fn rate_both(&self, rate: &str) {
        self.rate_both_queue(rate, "64kb", "50ms");
    }

    /// Both directions limited to `rate`, each token bucket with its
    /// `burst` and a queue that holds a packet at most `latency` (tbf's
    /// limit): a deep one is bufferbloat, a shallow one its cure.
    pub fn rate_both_queue(&self, rate: &str, burst: &str, latency: &str) {
        self.sh(&format!(
            "tc qdisc add dev {} root tbf rate {rate} burst {burst} latency {latency}",
            self.peer_if
        ));
        run(Command::new("tc").args([
            "qdisc",
            "add",
            "dev",
            &self.host_if,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            burst,
            "latency",
            latency,
        ]));
    }

    /// Drops each UDP datagram of `min_len` bytes or more (IP length) that
    /// arrives from the peer with probability `p`: data, not the small
    /// handshakes before it. Dropped on arrival here (the host's raw
    /// PREROUTING, this link only), not on the peer's way out: a DROP in the
    /// sender's OUTPUT fails its `send()` with EPERM, which iperf3 takes
    /// for a fatal error. The rule goes when the guard drops.
    pub fn udp_loss_from_peer(&self, p: f64, min_len: u16) -> HostRule {
        let rule: Vec<String> = [
            "PREROUTING",
            "-i",
            &self.host_if,
            "-p",
            "udp",
            "-m",
            "length",
            "--length",
            &format!("{min_len}:65535"),
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p.to_string(),
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run(Command::new("iptables")
            .args(["-t", "raw", "-A"])
            .args(&rule));
        HostRule { rule }
    }

    /// Limits the peer's sending rate with a token bucket.
    pub fn rate(&self, rate: &str) {
        self.sh(&format!(
            "tc qdisc add dev {} root tbf rate {rate} burst 64kb latency 50ms",
            self.peer_if
        ));
    }
}

/// An iptables rule in the host's raw table, deleted on drop.
pub struct HostRule {
    rule: Vec<String>,
}

impl Drop for HostRule {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-t", "raw", "-D"])
            .args(&self.rule)
            .output();
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// A userspace delay line on NFQUEUE inside a namespace: every packet the
/// rule sends to the queue is released (verdict ACCEPT) `delay` (+ uniform
/// jitter) after it was seen, in order. Two rules feed it (see
/// [`NetPair::delay_line`]): TCP arriving at the peer (filter INPUT) and
/// everything else the peer sends (mangle OUTPUT, so the loss rule in filter
/// OUTPUT still sees every released packet). Removing the guard removes the
/// rules and stops the thread; `--queue-bypass` lets packets through if the
/// thread is gone first.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ns: String,
    /// (command, table, rule) as installed.
    rules: Vec<(&'static str, &'static str, String)>,
}

impl DelayLine {
    fn start(pair: &NetPair, delay: Duration, jitter: Duration) -> DelayLine {
        let queue: u16 = 7;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ns_path = format!("/run/netns/{}", pair.ns);
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let outcome = (|| -> std::io::Result<nfq::Queue> {
                let ns = std::fs::File::open(&ns_path)?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                // Sleep precisely: the default 50 µs timer slack would add up.
                let _ = nix::sys::prctl::set_timerslack(1);
                let mut q = nfq::Queue::open()?;
                q.bind(queue)?;
                q.set_nonblocking(true);
                Ok(q)
            })();
            match outcome {
                Ok(q) => {
                    let _ = ready_tx.send(Ok(()));
                    release_loop(q, delay, jitter, &flag);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            }
        });
        if let Err(e) = ready_rx.recv().expect("delay-line thread died") {
            panic!("cannot start the delay line: {e}");
        }
        let target = format!("-j NFQUEUE --queue-num {queue} --queue-bypass");
        let dev = &pair.peer_if;
        let mut rules = Vec::new();
        // Both families, one queue.
        for cmd in ["iptables", "ip6tables"] {
            rules.push((cmd, "filter", format!("INPUT -i {dev} -p tcp {target}")));
            if cmd == "ip6tables" {
                // Neighbour discovery is the link's own business (ARP, its
                // IPv4 twin, never meets iptables): not delayed, or the
                // first echo to a new neighbour would wait a second line.
                for t in ["neighbour-solicitation", "neighbour-advertisement"] {
                    rules.push((
                        cmd,
                        "mangle",
                        format!("OUTPUT -o {dev} -p icmpv6 --icmpv6-type {t} -j ACCEPT"),
                    ));
                }
            }
            rules.push((cmd, "mangle", format!("OUTPUT -o {dev} ! -p tcp {target}")));
        }
        for (cmd, table, rule) in &rules {
            pair.sh(&format!("{cmd} -t {table} -A {rule}"));
        }
        DelayLine {
            stop,
            thread: Some(thread),
            ns: pair.ns.clone(),
            rules,
        }
    }
}

fn release_loop(mut q: nfq::Queue, delay: Duration, jitter: Duration, stop: &AtomicBool) {
    let mut pending: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    let mut last_due = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            match q.recv() {
                Ok(msg) => {
                    let extra = if jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        // xorshift64: uniform in [0, jitter)
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        jitter.mul_f64((rng >> 11) as f64 / (1u64 << 53) as f64)
                    };
                    // In order: never before the packet ahead of it.
                    let due = (Instant::now() + delay + extra).max(last_due);
                    last_due = due;
                    pending.push_back((due, msg));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        let now = Instant::now();
        while pending
            .front()
            .is_some_and(|(due, _)| stopping || *due <= now)
        {
            if let Some((_, mut msg)) = pending.pop_front() {
                msg.set_verdict(nfq::Verdict::Accept);
                let _ = q.verdict(msg);
            }
        }
        if stopping && pending.is_empty() {
            return;
        }
        let nap = match pending.front() {
            Some((due, _)) => due
                .saturating_duration_since(Instant::now())
                .min(Duration::from_micros(20)),
            None => Duration::from_micros(20),
        };
        std::thread::sleep(nap);
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        for (cmd, table, rule) in &self.rules {
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.ns, cmd, "-t", table, "-D"])
                .args(rule.split_whitespace())
                .output();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
