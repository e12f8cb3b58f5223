//! Network context against namespaces the test builds: a client namespace
//! with two Ethernet links to two gateways (known addresses and MACs), its
//! own resolv.conf, and a tun interface. What `waddleperf network` reports
//! is checked against what the test configured and against `ip -j route` /
//! `ip -j neigh` in the same namespace; moving the default route under a
//! running daemon is seen as a network change and starts exactly one run,
//! whose results carry the new network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::cli_home::{wait_for, Home};
use support::netns::NetPair;
use support::run;
use waddleperf_engine::netctx::network_id;

/// The client namespace: link A is the pair's veth (gateway: the test's side
/// at `host_ip`); link B a second veth to the test's namespace.
struct Client {
    pair: NetPair,
    b_host: String,
    b_peer: String,
    b_gw: String,
    b_ip: String,
    mac_a: String,
    mac_b: String,
    resolv_dir: std::path::PathBuf,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.b_host])
            .output();
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

fn client() -> Client {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pair = NetPair::new();
    let n = (std::process::id() % 60) * 4 + k;
    let (b_host, b_peer) = (
        format!("wbh{}x{k}", std::process::id() % 100_000),
        format!("wbp{}x{k}", std::process::id() % 100_000),
    );
    let _ = Command::new("ip").args(["link", "del", &b_host]).output();
    let b_gw = format!("10.251.{}.1", n % 250);
    let b_ip = format!("10.251.{}.2", n % 250);
    // Known gateway MACs (locally administered).
    let (mac_a, mac_b) = (
        "02:57:50:00:00:0a".to_owned(),
        "02:57:50:00:00:0b".to_owned(),
    );
    run(Command::new("ip").args(["link", "set", &pair.host_if, "address", &mac_a]));
    run(Command::new("ip").args([
        "link", "add", &b_host, "address", &mac_b, "type", "veth", "peer", "name", &b_peer,
        "netns", &pair.ns,
    ]));
    run(Command::new("ip").args(["addr", "add", &format!("{b_gw}/30"), "dev", &b_host]));
    run(Command::new("ip").args(["link", "set", &b_host, "up"]));
    pair.sh(&format!(
        "ip addr add {b_ip}/30 dev {b_peer} && ip link set {b_peer} mtu 1400 up && \
         ip route add default via {gw} dev {a} metric 100",
        gw = pair.host_ip,
        a = pair.peer_if
    ));
    // `ip netns exec` mounts this over /etc/resolv.conf inside the namespace.
    let resolv_dir = std::path::PathBuf::from(format!("/etc/netns/{}", pair.ns));
    std::fs::create_dir_all(&resolv_dir).unwrap();
    std::fs::write(
        resolv_dir.join("resolv.conf"),
        "# test\nsearch example.test\nnameserver 10.71.0.53\nnameserver 2001:db8::53\n",
    )
    .unwrap();
    Client {
        pair,
        b_host,
        b_peer,
        b_gw,
        b_ip,
        mac_a,
        mac_b,
        resolv_dir,
    }
}

/// `home`'s waddleperf command, run inside the namespace.
fn in_ns(ns: &str, home: &Home, args: &[&str]) -> Command {
    let inner = home.cmd(args);
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(inner.get_program());
    c.args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn network_json(c: &Client, home: &Home) -> serde_json::Value {
    let out = run(&mut in_ns(&c.pair.ns, home, &["network", "--json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn default_route(c: &Client) -> serde_json::Value {
    let out = c.pair.sh("ip -j route show default");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

const CONFIG: &str = "[schedule]\ninterval_minutes = 1440\nrun_on_start = false\n\n\
                      [[suite.tcp]]\ntarget = \"127.0.0.1:9\"\n";

#[test]
fn the_context_matches_the_namespace_and_ip_route() {
    let c = client();
    let home = Home::new(CONFIG);
    let v = network_json(&c, &home);
    let route = default_route(&c);
    // The reference: iproute2 in the same namespace.
    assert_eq!(route["dev"], c.pair.peer_if.as_str());
    assert_eq!(route["gateway"], c.pair.host_ip.to_string());
    assert_eq!(v["iface"], c.pair.peer_if.as_str(), "{v}");
    assert_eq!(v["link_type"], "ethernet", "{v}");
    assert_eq!(v["local_ip"], c.pair.peer_ip.to_string(), "{v}");
    assert_eq!(v["gateway_ip"], c.pair.host_ip.to_string(), "{v}");
    assert_eq!(v["gateway_mac"], c.mac_a.as_str(), "{v}");
    assert_eq!(
        v["dns_servers"],
        serde_json::json!(["10.71.0.53", "2001:db8::53"]),
        "{v}"
    );
    assert_eq!(v["vpn"], false);
    assert!(v.get("ssid").is_none(), "no Wi-Fi here: {v}");
    let neigh: serde_json::Value =
        serde_json::from_str(&c.pair.sh(&format!("ip -j neigh show {}", c.pair.host_ip))).unwrap();
    assert_eq!(neigh[0]["lladdr"], c.mac_a.as_str(), "ip neigh agrees");
    let id_a = network_id(Some(&c.mac_a), None, Some(&c.pair.host_ip.to_string()), "");
    assert_eq!(v["network_id"], id_a.as_str());
    // The same network read again has the same id.
    assert_eq!(network_json(&c, &home)["network_id"], id_a.as_str());

    // A lower-metric default route through link B wins.
    c.pair.sh(&format!(
        "ip route add default via {} dev {} metric 50",
        c.b_gw, c.b_peer
    ));
    let v = network_json(&c, &home);
    assert_eq!(default_route(&c)["dev"], c.b_peer.as_str());
    assert_eq!(v["iface"], c.b_peer.as_str(), "{v}");
    assert_eq!(v["local_ip"], c.b_ip.as_str());
    assert_eq!(v["gateway_mac"], c.mac_b.as_str(), "{v}");
    assert_eq!(
        v["network_id"],
        network_id(Some(&c.mac_b), None, Some(&c.b_gw), "").as_str()
    );

    // A tun interface as the default route: a VPN, no gateway, no MAC.
    let tun = format!("wt{}", std::process::id() % 100_000);
    c.pair.sh(&format!(
        "ip tuntap add {tun} mode tun && ip link set {tun} up && \
         ip addr add 10.99.7.2/32 dev {tun} && ip route add default dev {tun} metric 10"
    ));
    let v = network_json(&c, &home);
    assert_eq!(default_route(&c)["dev"], tun.as_str());
    assert_eq!(v["iface"], tun.as_str(), "{v}");
    assert_eq!(v["link_type"], "vpn", "{v}");
    assert_eq!(v["vpn"], true);
    assert_eq!(v["local_ip"], "10.99.7.2");
    assert!(
        v.get("gateway_ip").is_none() && v.get("gateway_mac").is_none(),
        "{v}"
    );
    let text = String::from_utf8_lossy(
        &in_ns(&c.pair.ns, &home, &["network"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        text.contains(&format!("interface     {tun} (vpn)")),
        "{text}"
    );
    assert!(text.contains("vpn           yes"), "{text}");

    // Every network read is listed; one can be named and found by its name.
    let list: serde_json::Value =
        serde_json::from_str(&home.ok(&["network", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    home.ok(&["network", "label", &id_a[..6], "Office"]);
    let list: serde_json::Value =
        serde_json::from_str(&home.ok(&["network", "list", "--json"])).unwrap();
    let office = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id_a.as_str())
        .unwrap();
    assert_eq!(office["label"], "Office");
    let bad = home.wp(&["history", "--network", "Nowhere"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no single network is `Nowhere`"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let long = "x".repeat(65);
    let bad = home.wp(&["network", "label", "Office", &long]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at most 64 characters"));
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn lines(home: &Home, args: &[&str]) -> Vec<serde_json::Value> {
    home.ok(args)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn moving_the_default_route_starts_one_run_on_the_new_network() {
    let c = client();
    let home = Home::new(CONFIG);
    std::fs::create_dir_all(home.root.join("logs")).unwrap();
    let err = std::fs::File::create(home.root.join("daemon.txt")).unwrap();
    let _d = Daemon(
        in_ns(&c.pair.ns, &home, &["daemon", "--grace", "1"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap(),
    );
    let id_a = network_id(Some(&c.mac_a), None, Some(&c.pair.host_ip.to_string()), "");
    let id_b = network_id(Some(&c.mac_b), None, Some(&c.b_gw), "");
    // The daemon records the network it starts on, without a run.
    wait_for(
        "the daemon to record network A",
        Duration::from_secs(20),
        || {
            home.wp(&["network", "list", "--json"])
                .stdout
                .windows(16)
                .any(|w| w == id_a.as_bytes())
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lines(&home, &["history", "--json"]).is_empty(),
        "no run yet"
    );

    // Move the default route to gateway B.
    c.pair.sh(&format!(
        "ip route replace default via {} dev {} metric 100",
        c.b_gw, c.b_peer
    ));
    wait_for("a run on network B", Duration::from_secs(30), || {
        !lines(&home, &["history", "--json", "--network", &id_b]).is_empty()
    });
    // Settle past the debounce: still exactly one run (one TCP result).
    std::thread::sleep(Duration::from_secs(5));
    let on_b = lines(&home, &["history", "--json", "--network", &id_b]);
    assert_eq!(on_b.len(), 1, "exactly one run: {on_b:?}\n{}", log(&home));
    assert_eq!(on_b[0]["network_id"], id_b.as_str());
    assert!(lines(&home, &["history", "--json", "--network", &id_a]).is_empty());
    let status = home.status_json();
    assert_eq!(status["last_run"]["reason"], "network_change", "{status}");
    assert_eq!(status["network"]["id"], id_b.as_str(), "{status}");
    let events = home.ok(&["events", "--json"]);
    let moves: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"network_changed\""))
        .collect();
    assert_eq!(
        moves.len(),
        1,
        "the move is logged once (starting is not a move): {events}"
    );
    assert!(
        moves[0].contains(&id_a) && moves[0].contains(&id_b),
        "{}",
        moves[0]
    );
    // The export carries the network.
    let csv = home.ok(&["export", "--network", &id_b]);
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(",network_id,network"), "{header}");
    assert!(csv.lines().nth(1).unwrap().contains(&id_b), "{csv}");
}

fn log(home: &Home) -> String {
    std::fs::read_to_string(home.root.join("daemon.txt")).unwrap_or_default()
}

/// An HTTP server (in the test's namespace) whose `Date` header runs an hour
/// ahead: the clock check's known truth.
const AHEAD_SERVER: &str = "\
import http.server, socketserver, sys, time, email.utils
class H(http.server.BaseHTTPRequestHandler):
    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(time.time() + 3600, usegmt=True)
    def do_HEAD(self):
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
";

#[test]
fn diagnostics_match_the_namespace() {
    let c = client();
    let home = Home::new(CONFIG);
    let port = support::free_port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-c",
            AHEAD_SERVER,
            &c.pair.host_ip.to_string(),
            &port.to_string(),
        ])
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from((c.pair.host_ip, port));
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the Date server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://{addr}/");
    let out = run(
        in_ns(&c.pair.ns, &home, &["diagnose", "--json", "--server", &url])
            .env("HTTPS_PROXY", "http://alice:s3cret@proxy.test:3128"),
    );
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for section in [
        "system",
        "network",
        "interfaces",
        "routes",
        "dns",
        "proxy",
        "clock",
        "icmp",
    ] {
        assert!(v[section].get("ok").is_some(), "{section}: {}", v[section]);
    }
    let sys = &v["system"]["ok"];
    assert!(
        sys["cpus"].as_u64().unwrap() >= 1 && sys["uptime_s"].as_u64().is_some(),
        "{sys}"
    );
    assert!(sys["memory_total_mb"].as_u64().unwrap() > 0);
    assert!(sys["load"].as_array().map(Vec::len) == Some(3));
    // The namespace's interfaces, as configured.
    let ifaces = v["interfaces"]["ok"].as_array().unwrap();
    let find = |name: &str| ifaces.iter().find(|i| i["name"] == name).cloned().unwrap();
    let a = find(&c.pair.peer_if);
    assert_eq!(a["up"], true);
    assert_eq!(a["mtu"], 1500);
    assert!(
        a["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| *x == format!("{}/30", c.pair.peer_ip)),
        "{a}"
    );
    assert!(a["counters"]["rx_bytes"].as_u64().is_some(), "{a}");
    let b = find(&c.b_peer);
    assert_eq!(b["mtu"], 1400);
    assert_eq!(b["link_type"], "ethernet");
    assert!(b["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| *x == format!("{}/30", c.b_ip)));
    // Routes as `ip -j route` lists them.
    let routes = v["routes"]["ok"].as_array().unwrap();
    assert!(
        routes.iter().any(|r| r["destination"] == "default"
            && r["gateway"] == c.pair.host_ip.to_string()
            && r["iface"] == c.pair.peer_if.as_str()
            && r["metric"] == 100),
        "{routes:?}"
    );
    let b_net = c
        .b_gw
        .rsplit_once('.')
        .map(|(p, _)| format!("{p}.0/30"))
        .unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == b_net.as_str() && r["iface"] == c.b_peer.as_str()),
        "{routes:?}"
    );
    let ip_routes: serde_json::Value =
        serde_json::from_str(&c.pair.sh("ip -j -4 route show table main")).unwrap();
    let v4 = routes
        .iter()
        .filter(|r| !r["destination"].as_str().unwrap_or("").contains(':'))
        .count();
    let v4_default_v6 = routes
        .iter()
        .filter(|r| {
            r["destination"] == "default" && r["gateway"].as_str().is_some_and(|g| g.contains(':'))
        })
        .count();
    assert_eq!(
        v4 - v4_default_v6,
        ip_routes.as_array().unwrap().len(),
        "as many IPv4 routes as ip route: {routes:?} vs {ip_routes}"
    );
    // DNS from the namespace's resolv.conf, with its search domain.
    assert_eq!(
        v["dns"]["ok"]["servers"],
        serde_json::json!(["10.71.0.53", "2001:db8::53"])
    );
    assert_eq!(
        v["dns"]["ok"]["search"],
        serde_json::json!(["example.test"])
    );
    // The proxy is named, its password is not.
    let proxy = &v["proxy"]["ok"];
    assert!(
        proxy.to_string().contains("http://***@proxy.test:3128"),
        "{proxy}"
    );
    assert!(!out.contains("s3cret"), "the password leaked");
    // The clock: an hour behind the server, within the stated uncertainty.
    let clock = &v["clock"]["ok"];
    let offset = clock["offset_s"].as_f64().unwrap();
    let within = clock["uncertainty_s"].as_f64().unwrap();
    assert!((offset - 3600.0).abs() <= within + 0.05, "{clock}");
    assert!(within < 1.0, "{clock}");
    // ICMP: the same methods doctor reports.
    assert!(!v["icmp"]["ok"].as_array().unwrap().is_empty());
    // The text report has every section; with the server gone, the clock says why.
    let text = run(in_ns(&c.pair.ns, &home, &["diagnose", "--server", &url])
        .env("HTTPS_PROXY", "http://alice:s3cret@proxy.test:3128"));
    for s in [
        "\nSystem\n",
        "\nNetwork\n",
        "\nInterfaces\n",
        "\nRoutes\n",
        "\nDNS\n",
        "\nProxy\n",
        "\nClock\n",
        "\nICMP\n",
    ] {
        assert!(text.contains(s), "{s:?} missing:\n{text}");
    }
    assert!(
        text.contains("unavailable: ") && text.contains("Clock\n  unavailable"),
        "the server is gone by now: {text}"
    );
    let bad = home.wp(&["diagnose", "--server", "ftp://x"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A captive-portal double: every request is redirected to its login page
/// (`portal`), or answered `204 No Content` (`clear`).
const PORTAL_SERVER: &str = "\
import http.server, socketserver, sys
mode = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if mode == 'portal':
            self.send_response(302)
            self.send_header('Location', 'http://%s:%s/login?orig=x' % (sys.argv[1], sys.argv[2]))
            self.send_header('Content-Length', '0')
        else:
            self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn portal_server(ip: &str, mode: &str) -> (Killed, u16) {
    let port = support::free_port();
    let child = Command::new("python3")
        .args(["-c", PORTAL_SERVER, ip, &port.to_string(), mode])
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the portal double did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), port)
}

#[test]
fn a_captive_portal_is_detected_told_once_and_not_an_outage() {
    let c = client();
    let gw = c.pair.host_ip.to_string();
    let (_portal, portal_port) = portal_server(&gw, "portal");
    let (_clear, clear_port) = portal_server(&gw, "clear");
    let closed = support::free_port();
    let config = |port: u16| {
        format!(
            "[schedule]\ninterval_minutes = 1440\nrun_on_start = false\n\n\
             [network]\ncaptive_portal_url = \"http://{gw}:{port}/generate_204\"\n\
             captive_portal_expect = \"\"\n\n\
             [[suite.tcp]]\ntarget = \"{gw}:{closed}\"\n"
        )
    };
    let home = Home::new(&config(portal_port));
    let runs = |home: &Home| -> Vec<serde_json::Value> {
        let out = run(&mut in_ns(&c.pair.ns, home, &["run", "--json"]));
        out.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    for _ in 0..2 {
        let results = runs(&home);
        assert!(!results.is_empty());
        for r in &results {
            assert_eq!(r["success"], false, "the port is closed: {r}");
            assert_eq!(r["metrics"]["captive_portal"], true, "marked: {r}");
        }
    }
    // Not an outage: no health went down, connectivity was not lost.
    let status = home.status_json();
    assert!(status.get("health").is_none(), "{status}");
    assert_eq!(status["connectivity"]["lost"], false, "{status}");
    let events = home.ok(&["events", "--json"]);
    let told: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"captive_portal\""))
        .collect();
    assert_eq!(told.len(), 1, "told once over two runs: {events}");
    assert!(
        told[0].contains(&format!("http://{gw}:{portal_port}/login")),
        "{}",
        told[0]
    );
    assert!(
        !events.contains("health_changed") && !events.contains("connectivity_lost"),
        "{events}"
    );
    // The export marks them too.
    let csv = home.ok(&["export"]);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "captive_portal").unwrap();
    assert_eq!(
        csv.lines().nth(1).unwrap().split(',').nth(col),
        Some("true")
    );

    // The same failure without a portal is an outage, unmarked.
    let home = Home::new(&config(clear_port));
    for r in runs(&home) {
        assert!(r["metrics"].get("captive_portal").is_none(), "{r}");
    }
    let status = home.status_json();
    assert_eq!(status["health"], "down", "{status}");
}
