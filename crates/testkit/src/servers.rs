//! Real servers for probe tests, each stopped when its guard drops.

use super::netns::NetPair;
use super::run;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A private CA and a server certificate it issued, made with openssl.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// `sans` like `DNS:localhost`, `IP:127.0.0.1`.
    pub fn new(sans: &[String], days: u32) -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "3650", "-subj", "/CN=WaddlePerf Test CA"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")));
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=waddleperf-test-server/O=WaddlePerf Tests"])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        std::fs::write(
            p("ext.cnf"),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                sans.join(",")
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", &days.to_string()])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(p("ext.cnf"))
            .arg("-out")
            .arg(p("server.pem")));
        TestCa {
            ca_pem: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
            dir,
        }
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: Option<PathBuf>,
}

impl Proc {
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a TCP connect to `addr` succeeds.
pub fn wait_for_port(addr: SocketAddr, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited ({status}) before listening on {addr}:\n{}",
                proc.name,
                proc.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{} did not listen on {addr} within 10 s:\n{}",
        proc.name,
        proc.log_text()
    );
}

/// nginx serving HTTPS (HTTP/1.1 and HTTP/2 by ALPN) and plain HTTP.
///
/// Paths: `/` → 200 "hello from nginx\n"; `/redirect` → 302 to `/`;
/// `/loop` → 302 to itself; `/status/503` → 503; `/files/100k.bin` →
/// 102400 bytes; `/files/2m.bin` → 2000000 bytes.
pub struct Nginx {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// HTTPS without HTTP/2 (ALPN offers http/1.1 only).
    pub https_h1: SocketAddr,
}

pub const NGINX_ROOT_BODY: &str = "hello from nginx\n";
pub const NGINX_FILE_BYTES: u64 = 102_400;
pub const NGINX_BIG_FILE_BYTES: u64 = 2_000_000;

impl Nginx {
    /// Starts nginx on `ip` (loopback or a namespace address) with the CA's
    /// server certificate; inside `ns` when given.
    pub fn start(
        ca: &TestCa,
        ip: &str,
        https_port: u16,
        http_port: u16,
        ns: Option<&NetPair>,
    ) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("www/files")).unwrap();
        std::fs::write(
            d.join("www/files/100k.bin"),
            vec![0x5au8; NGINX_FILE_BYTES as usize],
        )
        .unwrap();
        std::fs::write(
            d.join("www/files/2m.bin"),
            vec![0xa5u8; NGINX_BIG_FILE_BYTES as usize],
        )
        .unwrap();
        let bracket = |ip: &str| {
            if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            }
        };
        let h1_port = super::free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    default_type application/octet-stream;
    absolute_redirect off;
    server {{
        listen {ip}:{https_port} ssl http2;
        listen {ip}:{http_port};
        listen {ip}:{h1_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {d}/www;
        location = / {{ default_type text/plain; return 200 "{body}"; }}
        location = /redirect {{ return 302 /; }}
        location = /loop {{ return 302 /loop; }}
        location = /status/503 {{ return 503; }}
        location /files/ {{ }}
    }}
}}
"#,
            d = d.display(),
            ip = bracket(ip),
            cert = ca.cert.display(),
            key = ca.key.display(),
            body = NGINX_ROOT_BODY.replace('\n', "\\n"),
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = match ns {
            Some(n) => n.command("nginx"),
            None => Command::new("nginx"),
        };
        cmd.arg("-p").arg(d).arg("-c").arg(&conf_path);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("cannot start nginx (is it installed?)");
        let mut proc = Proc {
            child,
            name: "nginx",
            log: Some(d.join("error.log")),
        };
        let ipaddr: std::net::IpAddr = ip.parse().unwrap();
        let https = SocketAddr::new(ipaddr, https_port);
        let http = SocketAddr::new(ipaddr, http_port);
        let https_h1 = SocketAddr::new(ipaddr, h1_port);
        wait_for_port(https, &mut proc);
        wait_for_port(https_h1, &mut proc);
        Nginx {
            proc,
            dir,
            https,
            http,
            https_h1,
        }
    }
}

/// OpenSSH's sshd on `ip:port` with a fresh host key.
pub struct Sshd {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Sshd {
    pub fn start(ip: &str, port: u16) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join("host_ed25519")));
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress {ip}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
                 UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
                d = d.display()
            ),
        )
        .unwrap();
        let log = d.join("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start sshd (is openssh-server installed?)");
        let mut proc = Proc {
            child,
            name: "sshd",
            log: Some(log),
        };
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        wait_for_port(addr, &mut proc);
        Sshd { proc, dir, addr }
    }
}

/// A TCP server on loopback that accepts connections and never says a word
/// (optionally it sends `greeting` first and then stays silent).
pub struct SilentServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentServer {
    pub fn start(greeting: &'static [u8]) -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        use std::io::Write;
                        let _ = s.write_all(greeting);
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
                for s in &mut held {
                    let _ = s.set_nonblocking(true);
                    let mut buf = [0u8; 256];
                    let _ = s.read(&mut buf);
                }
            }
        });
        SilentServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// curl's own timings for one GET, in milliseconds (curl's are cumulative
/// from the start; these are converted to separate phases like ours).
#[derive(Debug, Clone, Copy)]
pub struct CurlTimes {
    pub dns_ms: f64,
    pub connect_ms: f64,
    pub tls_ms: f64,
    /// Request sent → first byte (starttransfer − pretransfer).
    pub ttfb_ms: f64,
    pub total_ms: f64,
    pub http_version: f64,
    pub status: u16,
}

pub fn curl(url: &str, ca: Option<&Path>, extra: &[&str]) -> CurlTimes {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "10", "-w"])
        .arg("%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total} %{http_version} %{http_code}")
        .args(extra);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.arg(url);
    let out = run(&mut cmd);
    let v: Vec<f64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    let ms = |s: f64| s * 1000.0;
    let tls_end = if v[2] > 0.0 { v[2] } else { v[1] };
    CurlTimes {
        dns_ms: ms(v[0]),
        connect_ms: ms(v[1] - v[0]),
        tls_ms: ms(tls_end - v[1]),
        ttfb_ms: ms(v[4] - v[3]),
        total_ms: ms(v[5]),
        http_version: v[6],
        status: v[7] as u16,
    }
}

/// Records dnsmasq serves in [`Dnsmasq`], the truth DNS tests check.
pub const DNS_WWW: (&str, &str) = ("www.wp.test", "10.9.8.7");
pub const DNS_ALIAS: &str = "alias.wp.test";
pub const DNS_MX: (&str, &str) = ("wp.test", "10 mail.wp.test.");
pub const DNS_TXT: (&str, &str) = ("wp.test", "\"v=wp1 hello\"");
pub const DNS_SRV: (&str, &str) = ("_echo._udp.wp.test", "1 2 7 echo.wp.test.");
/// A TXT answer larger than 512 bytes (dnsmasq truncates UDP answers there).
pub const DNS_BIG_TXT: &str = "big.wp.test";
pub const DNS_BIG_TXT_STRINGS: usize = 4;

/// dnsmasq answering for `wp.test` (names not configured are NXDOMAIN,
/// nothing is forwarded), UDP and TCP on `ip:port`, inside `ns` when given.
pub struct Dnsmasq {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Dnsmasq {
    pub fn start(ip: &str, port: u16, ns: Option<&NetPair>) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dnsmasq.log");
        let big: Vec<String> = (0..DNS_BIG_TXT_STRINGS)
            .map(|i| char::from(b'a' + i as u8).to_string().repeat(200))
            .collect();
        let mut cmd = match ns {
            Some(n) => n.command("dnsmasq"),
            None => Command::new("dnsmasq"),
        };
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--local=/wp.test/",
            "--edns-packet-max=512",
        ])
        .arg(format!("--listen-address={ip}"))
        .arg(format!("--port={port}"))
        .arg(format!("--log-facility={}", log.display()))
        .arg(format!("--host-record={},{}", DNS_WWW.0, DNS_WWW.1))
        .arg(format!("--cname={DNS_ALIAS},{}", DNS_WWW.0))
        .arg("--mx-host=wp.test,mail.wp.test,10")
        .arg("--txt-record=wp.test,v=wp1 hello")
        .arg("--srv-host=_echo._udp.wp.test,echo.wp.test,7,1,2")
        .arg(format!("--txt-record={DNS_BIG_TXT},{}", big.join(",")))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .expect("cannot start dnsmasq (is dnsmasq-base installed?)");
        let mut proc = Proc {
            child,
            name: "dnsmasq",
            log: Some(log),
        };
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        // Ready once it answers over TCP (it listens on UDP first).
        wait_for_port(addr, &mut proc);
        Dnsmasq { proc, dir, addr }
    }
}

/// What `dig` said: the answers' data and the query time it printed.
pub struct Dig {
    pub answers: Vec<String>,
    pub status: String,
    pub query_ms: f64,
}

/// `dig @server name type`, once, no retries.
pub fn dig(server: SocketAddr, name: &str, rtype: &str) -> Dig {
    let out = run(Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([
            "+tries=1",
            "+time=3",
            "+noall",
            "+answer",
            "+comments",
            "+stats",
        ])
        .args([name, rtype]));
    let mut d = Dig {
        answers: Vec::new(),
        status: String::new(),
        query_ms: f64::NAN,
    };
    for line in out.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or_default().to_owned();
        } else if let Some(rest) = line.strip_prefix(";; Query time: ") {
            d.query_ms = rest.split_whitespace().next().unwrap().parse().unwrap();
        } else if !line.starts_with(';') && !line.trim().is_empty() {
            // name ttl class type data...
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 5 {
                d.answers.push(f[4..].join(" "));
            }
        }
    }
    d
}

/// caddy serving HTTPS over HTTP/1.1, HTTP/2 and HTTP/3 (QUIC) with the
/// test CA's certificate, on `ip:port` inside `ns`; `/` answers
/// [`CADDY_BODY`] and advertises HTTP/3 in `Alt-Svc`.
pub struct Caddy {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

pub const CADDY_BODY: &str = "hello from caddy";

impl Caddy {
    pub fn start(ca: &TestCa, ip: &str, port: u16, ns: &NetPair) -> Caddy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let conf = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tdefault_sni {ip}\n\tservers {{\n\t\tprotocols h1 h2 h3\n\t}}\n}}\n\
             https://{ip}:{port} {{\n\ttls {cert} {key}\n\trespond \"{CADDY_BODY}\" 200\n}}\n",
            cert = ca.cert.display(),
            key = ca.key.display(),
        );
        let conf_path = d.join("Caddyfile");
        std::fs::write(&conf_path, conf).unwrap();
        let log = d.join("caddy.log");
        let mut cmd = ns.command("caddy");
        cmd.args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf_path)
            .env("HOME", d)
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("cannot start caddy (is it installed?)");
        let mut proc = Proc {
            child,
            name: "caddy",
            log: Some(log),
        };
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        wait_for_port(addr, &mut proc);
        // The QUIC listener starts beside the TCP one: wait until its UDP
        // socket is bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let bound = ns
                .command("ss")
                .args(["-Hlun", &format!("sport = :{port}")])
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
                .unwrap_or(false);
            if bound {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "caddy's QUIC listener on {addr} did not bind within 10 s:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Caddy { proc, dir, addr }
    }
}

/// `waddleperf serve --udp-echo` inside `ns` on `ip:port`.
pub fn udp_echo_peer(ip: &str, port: u16, ns: &NetPair) -> Proc {
    let mut cmd = ns.command(super::waddleperf_bin().to_str().unwrap());
    cmd.args(["serve", "--udp-echo", &port.to_string(), "--bind", ip])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("cannot start waddleperf serve");
    // Ready when it says so.
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.contains("UDP echo listening on"), "serve said: {line}");
    Proc {
        child,
        name: "waddleperf serve --udp-echo",
        log: None,
    }
}
