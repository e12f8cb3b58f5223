//! A chain of network namespaces joined by veth pairs, with routing: the
//! test's own namespace, then `routers` routers, then a target host. Link
//! `k` joins node `k-1` (the test for k = 0) and node `k` and carries
//! 10.A.(B+k).0/24, the left end `.1`, the right end `.2`. Each router
//! answers a TTL that runs out with the address of its interface towards
//! the test (`.2` of its left link), so the hops of a traceroute are known
//! in advance: [`Chain::hops`]. Every link carries IPv6 as well, on
//! fd00:A:(B+k)::/64 with the same ends `::1` and `::2`: [`Chain::hops6`].

use super::{next_id, require_root, run};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

pub struct Chain {
    /// Namespaces: routers first, the target last.
    pub nodes: Vec<String>,
    host_if: String,
    a: u8,
    b: u8,
}

impl Chain {
    /// One router that forwards `rate` each way through a token bucket
    /// whose queue holds a packet at most `queue_ms` (plus a 32 kbit burst):
    /// bufferbloat on a router, as on a real path (in the sender's own
    /// qdisc, TCP small queues would keep the queue nearly empty).
    ///
    /// The target sends with CUBIC, the loss-based congestion control most
    /// servers use, which fills a queue until it drops: the bloat these
    /// paths exist to show. BBR (this kernel's default, which a new
    /// namespace inherits) paces to keep queues short by design, so under
    /// it how full the deep queue gets would depend on its probing phase.
    /// A namespace may only default to an algorithm the host allows, so
    /// CUBIC joins the host's allowed list when it is not on it (that list
    /// is a permission: no socket's algorithm changes by it).
    pub fn bloated(rate: &str, queue_ms: f64) -> Chain {
        let allowed = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";
        let list = std::fs::read_to_string(allowed).unwrap_or_default();
        if !list.split_whitespace().any(|a| a == "cubic") {
            run(Command::new("sysctl").args([
                "-qw",
                &format!(
                    "net.ipv4.tcp_allowed_congestion_control={} cubic",
                    list.trim()
                ),
            ]));
        }
        let chain = Chain::new(1, None);
        if let Some(target) = chain.nodes.last() {
            chain.sh(target, "sysctl -qw net.ipv4.tcp_congestion_control=cubic");
        }
        chain.sh(
            &chain.nodes[0],
            &format!(
                "tc qdisc add dev e1 root tbf rate {rate} burst 32kbit latency {queue_ms}ms && \
                 tc qdisc add dev w0 root tbf rate {rate} burst 32kbit latency {queue_ms}ms"
            ),
        );
        chain
    }

    /// `routers` routers, then a target. `narrow` = (link index, MTU) sets
    /// one link's MTU on both ends.
    pub fn new(routers: usize, narrow: Option<(usize, u32)>) -> Chain {
        require_root("a network-namespace chain");
        let pid = std::process::id();
        let n = next_id() % 30;
        let a = 150 + (pid % 50) as u8;
        let b = (n * 8) as u8;
        let nodes: Vec<String> = (0..=routers).map(|i| format!("wp{pid}c{n}r{i}")).collect();
        let host_if = format!("wc{}x{n}", pid % 100_000);
        for ns in &nodes {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let chain = Chain {
            nodes,
            host_if,
            a,
            b,
        };
        for ns in &chain.nodes {
            run(Command::new("ip").args(["netns", "add", ns]));
            // Routers answer every expired TTL: Linux's default limit of about
            // one ICMP error per second per destination (after a burst of 6)
            // would turn back-to-back test runs into "loss" at the routers.
            chain.sh(
                ns,
                "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv4.icmp_ratelimit=0 \
                 && sysctl -qw net.ipv6.conf.all.forwarding=1 && sysctl -qw net.ipv6.icmp.ratelimit=0 \
                 && sysctl -qw net.ipv6.conf.default.accept_dad=0 && sysctl -qw net.ipv6.conf.all.accept_dad=0",
            );
        }
        let last = chain.nodes.len() - 1;
        // Link 0: the test's namespace to the first node.
        run(Command::new("ip").args([
            "link",
            "add",
            &chain.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "w0",
            "netns",
            &chain.nodes[0],
        ]));
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("{}/24", chain.left(0)),
            "dev",
            &chain.host_if,
        ]));
        // No duplicate address detection (`accept_dad=0` here and in every
        // node, `nodad` on each address): while a link-local address is
        // still tentative, neighbour discovery fails and the first seconds'
        // packets beyond the first router are lost.
        run(Command::new("sysctl").args([
            "-qw",
            &format!("net.ipv6.conf.{}.accept_dad=0", chain.host_if),
        ]));
        run(Command::new("ip").args([
            "-6",
            "addr",
            "add",
            &format!("{}/64", chain.left6(0)),
            "dev",
            &chain.host_if,
            "nodad",
        ]));
        run(Command::new("ip").args(["link", "set", &chain.host_if, "up"]));
        chain.sh(
            &chain.nodes[0],
            &format!(
                "ip addr add {}/24 dev w0 && ip -6 addr add {}/64 dev w0 nodad && ip link set w0 up",
                chain.right(0),
                chain.right6(0)
            ),
        );
        // Link k: node k-1 (`e{k}`) to node k (`w{k}`).
        for k in 1..=last {
            chain.sh(
                &chain.nodes[k - 1],
                &format!(
                    "ip link add e{k} type veth peer name w{k} netns {next} && \
                     ip addr add {l}/24 dev e{k} && ip -6 addr add {l6}/64 dev e{k} nodad && \
                     ip link set e{k} up",
                    next = chain.nodes[k],
                    l = chain.left(k),
                    l6 = chain.left6(k)
                ),
            );
            chain.sh(
                &chain.nodes[k],
                &format!(
                    "ip addr add {}/24 dev w{k} && ip -6 addr add {}/64 dev w{k} nodad && \
                     ip link set w{k} up",
                    chain.right(k),
                    chain.right6(k)
                ),
            );
        }
        if let Some((k, mtu)) = narrow {
            if k == 0 {
                run(Command::new("ip").args([
                    "link",
                    "set",
                    &chain.host_if,
                    "mtu",
                    &mtu.to_string(),
                ]));
            } else {
                chain.sh(&chain.nodes[k - 1], &format!("ip link set e{k} mtu {mtu}"));
            }
            chain.sh(&chain.nodes[k], &format!("ip link set w{k} mtu {mtu}"));
        }
        // Routes: the test reaches every link through node 0; each node
        // sends forward by default and back through its left neighbour.
        for k in 1..=last {
            run(Command::new("ip").args([
                "route",
                "add",
                &chain.subnet(k),
                "via",
                &chain.right(0).to_string(),
            ]));
            run(Command::new("ip").args([
                "-6",
                "route",
                "add",
                &chain.subnet6(k),
                "via",
                &chain.right6(0).to_string(),
            ]));
        }
        for (i, ns) in chain.nodes.iter().enumerate() {
            let mut script = Vec::new();
            if i < last {
                script.push(format!("ip route add default via {}", chain.right(i + 1)));
                script.push(format!(
                    "ip -6 route add default via {}",
                    chain.right6(i + 1)
                ));
            } else {
                script.push(format!("ip route add default via {}", chain.left(i)));
                script.push(format!("ip -6 route add default via {}", chain.left6(i)));
            }
            if i < last {
                for j in 0..i {
                    script.push(format!(
                        "ip route add {} via {}",
                        chain.subnet(j),
                        chain.left(i)
                    ));
                    script.push(format!(
                        "ip -6 route add {} via {}",
                        chain.subnet6(j),
                        chain.left6(i)
                    ));
                }
            }
            if !script.is_empty() {
                chain.sh(ns, &script.join(" && "));
            }
        }
        chain
    }

    fn subnet(&self, k: usize) -> String {
        format!("10.{}.{}.0/24", self.a, self.b as usize + k)
    }

    fn subnet6(&self, k: usize) -> String {
        format!("{}/64", self.v6(k, 0))
    }

    fn v6(&self, k: usize, end: u16) -> Ipv6Addr {
        Ipv6Addr::new(
            0xfd00,
            u16::from(self.a),
            u16::from(self.b) + k as u16,
            0,
            0,
            0,
            0,
            end,
        )
    }

    /// Link `k`'s IPv6 left end.
    pub fn left6(&self, k: usize) -> Ipv6Addr {
        self.v6(k, 1)
    }

    /// Link `k`'s IPv6 right end (node `k`'s address towards the test).
    pub fn right6(&self, k: usize) -> Ipv6Addr {
        self.v6(k, 2)
    }

    /// The target's IPv6 address.
    pub fn target6(&self) -> Ipv6Addr {
        self.right6(self.nodes.len() - 1)
    }

    /// The IPv6 addresses a traceroute must find, in order.
    pub fn hops6(&self) -> Vec<Ipv6Addr> {
        (0..self.nodes.len()).map(|k| self.right6(k)).collect()
    }

    /// The left end (towards the test) of link `k`.
    pub fn left(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b + k as u8, 1)
    }

    /// The right end of link `k`: node `k`'s address towards the test.
    pub fn right(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b + k as u8, 2)
    }

    /// The target's address.
    pub fn target(&self) -> Ipv4Addr {
        self.right(self.nodes.len() - 1)
    }

    /// The addresses a traceroute must find, in order (routers, then the target).
    pub fn hops(&self) -> Vec<Ipv4Addr> {
        (0..self.nodes.len()).map(|k| self.right(k)).collect()
    }

    /// Runs a shell script in namespace `ns`; panics if it fails.
    pub fn sh(&self, ns: &str, script: &str) -> String {
        run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", script]))
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for ns in &self.nodes {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// Opens unprivileged ICMP sockets to every group in the test's namespace
/// (`net.ipv4.ping_group_range`) and restores the old range on drop.
pub struct PingGroupRange {
    old: String,
}

const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

impl PingGroupRange {
    pub fn allow_all() -> PingGroupRange {
        let old = std::fs::read_to_string(PING_GROUP_RANGE).unwrap();
        std::fs::write(PING_GROUP_RANGE, "0 2147483647").unwrap();
        PingGroupRange {
            old: old.trim().to_owned(),
        }
    }
}

impl Drop for PingGroupRange {
    fn drop(&mut self) {
        let _ = std::fs::write(PING_GROUP_RANGE, &self.old);
    }
}
