//! The configuration file `waddleperf config init` writes.

/// The configuration file written by `waddleperf config init`. It parses to
/// exactly [`Config::default`] (a unit test holds the two together).
pub const DEFAULT_TOML: &str = r#"# WaddlePerf configuration.
# Every key is optional: what is left out takes the default shown here.
# `waddleperf config validate` checks this file; `waddleperf config show` prints
# the configuration in effect.

[schedule]
# Minutes between runs of the suite (the background runtime uses this).
interval_minutes = 60
# Run the suite once as soon as the monitor starts.
run_on_start = true
# Each device runs at its own fixed offset into the interval (derived from the
# device id) so that a fleet does not test at the same second. Set a number of
# seconds (less than the interval) to pin it instead.
# offset_seconds = 0
# Latency tests run at most this many at a time inside a run (bandwidth tests
# always run alone).
concurrency = 4

[store]
# Results older than this many days are deleted.
retention_days = 365

[probe]
# Time limit of a test in milliseconds, the same for every test type: how
# long it may run beyond its planned pacing (for HTTP, TCP and DNS, the whole
# test). An HTTP, TCP or DNS target may set its own timeout_ms.
timeout_ms = 10000
# HTTP redirects followed before giving up.
max_redirects = 10
# HTTP bodies are read to the end up to this many bytes, then cut off.
max_body_bytes = 10485760

[autoperf]
# AutoPerf: when tier 1 results cross a threshold in this many consecutive
# runs, tier 2 runs (and keeps running each time while escalated); when tier 2
# results also cross theirs that many runs in a row, tier 3 runs once, then not
# again until the cool-down has passed.
enabled = true
escalate_after = 2
# Consecutive healthy tier 1 runs before going back to tier 1 only.
deescalate_after = 3
tier3_cooldown_minutes = 360
# Megabytes AutoPerf's bandwidth tests may move in a day (local time); then
# escalations skip them until midnight. 0: AutoPerf never runs them.
bandwidth_budget_mb = 2000

[autoperf.thresholds]
# Tier 1 -> 2 (and a target's health: crossing one makes it "degraded", a failed
# test makes it "down").
# latency_ms: the headline latency of TCP connect, ICMP and UDP tests.
latency_ms = 100.0
loss_pct = 5.0
http_total_ms = 2000.0
dns_ms = 1000.0
# Tier 2 -> 3.
throughput_mbps = 10.0
jitter_ms = 50.0
hops = 20.0
cert_days_left = 7.0
# A target may override any of these: thresholds = { latency_ms = 250.0 }

[notifications]
# Desktop notifications when a target's health changes or AutoPerf escalates;
# never for every run.
enabled = true
# At most one notification per target (or per escalation) in this many minutes.
min_interval_minutes = 30

[log]
# Log files (the daemon and the desktop app): one per day, kept this many days.
retention_days = 14
# error, warn, info, debug or trace (WADDLEPERF_LOG overrides).
level = "info"

[sync]
# Upload every result to the WaddlePerf unified API once signed in
# (`waddleperf login`) and enrolled (`waddleperf enroll`). Results are kept
# locally first; the server is a copy that catches up.
enabled = true
# The server `waddleperf login` uses when --server is not given.
# server = "https://perf.example.com"
# Extra trusted roots (PEM) for a private server.
# ca_file = "/etc/ssl/private-ca.pem"
# Minutes between passes that retry and send the heartbeat.
interval_minutes = 15
# After a run, wait a random 0..this many seconds before uploading.
spread_seconds = 60
# Uploads in flight at once.
concurrency = 2
# Retries back off exponentially (with full jitter) up to this many minutes.
backoff_max_minutes = 60
# Sign-in tokens: "auto" (the OS keychain, or a 0600 file where there is none),
# "keychain" or "file".
secret_store = "auto"
# What each uploaded result says about the network it was measured on:
# "none", "id" (the network id: a hash that groups results by network without
# naming it) or "everything" (interface, addresses, gateway and its MAC, DNS
# servers, VPN, SSID, BSSID and Wi-Fi figures, the label). See docs/sync.md.
network_context = "id"

[network]
# Before each run, one plain HTTP request (no cookies, nothing about this
# machine) to this URL: any other answer than the expected one means a
# captive portal (hotel or airport Wi-Fi asking to sign in). Results taken
# behind one are marked and do not count as outages; you are told once.
captive_portal_check = true
captive_portal_url = "http://detectportal.firefox.com/success.txt"
# The first line of the body when nothing is in the way; "" expects an
# empty 204 No Content (generate_204-style URLs).
captive_portal_expect = "success"
# Bandwidth tests are skipped on a connection the OS marks metered (a
# phone's hotspot, a capped plan) unless this is true. A speed test you
# start yourself always runs.
allow_metered = false

[update]
# Releases: the agent checks this manifest (Tauri's static updater format)
# every check_hours, downloads a newer build for this system and verifies its
# minisign signature with public_key before keeping it. Empty: no checks.
manifest_url = ""
# The minisign public key the releases are signed with ("RW…", or the key
# file base64-encoded as `tauri signer generate` prints it).
public_key = ""
# Extra trusted roots (PEM) for a private update server.
# ca_file = "/etc/ssl/private-ca.pem"
check_hours = 24

# The suite: targets per test type. A file with no [suite] at all uses this
# default suite; a file with any [[suite.*]] entry replaces it whole.
# HTTP(S): mode = "auto" (ALPN negotiates HTTP/2 or 1.1), "http1" or "http2".
# `insecure = true` turns certificate checks off for that target only;
# `ca_file` adds a PEM bundle of extra trusted roots for that target.
[[suite.http]]
url = "https://www.google.com/"

[[suite.http]]
url = "https://www.cloudflare.com/"

# TCP: mode = "raw" (connect time), "tls" (connect + handshake, certificate)
# or "ssh" (connect + the server's SSH- banner).
[[suite.tcp]]
target = "1.1.1.1:443"

[[suite.tcp]]
target = "www.cloudflare.com:443"
mode = "tls"

# ICMP ping: count echoes interval_ms apart, size bytes of payload, each waiting
# reply_wait_ms (default 2000) for its reply; family = "ipv4" or "ipv6" pins one.
[[suite.icmp]]
host = "1.1.1.1"

# DNS: a query of `type` (A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV; default
# A) to `server` ("host[:port]"; default: the system's name server), over UDP
# with TCP when the answer is truncated (`tcp = true` asks over TCP).
[[suite.dns]]
name = "www.google.com"

# More test types (none by default):
# [[suite.udp]]         target = "host:port" of a UDP echo peer
#                       (`waddleperf serve --udp-echo PORT`); count, interval_ms, size,
#                       reply_wait_ms (2000)
# [[suite.traceroute]]  host; max_hops (30), rounds (1; more is MTR), interval_ms,
#                       reply_wait_ms (1000), names = false skips reverse names
# [[suite.mtu]]         host; max (largest packet size tried, 9000), reply_wait_ms (1000)
# (reply_wait_ms was called timeout_ms before; the old name is still read.)
# HTTP mode = "http3" measures over QUIC; "auto" follows an Alt-Svc offer of HTTP/3.

# Tier 2 and tier 3 suites have the same shape ([[tier2.http]], [[tier2.icmp]],
# [[tier3.traceroute]], ...). Left out, they are derived from the suite:
# tier 2 checks the TLS of every HTTPS host and TLS target, pings every ICMP
# host 50 times and traces the route to it (3 rounds); tier 3 runs every HTTP
# target over both HTTP/1.1 and HTTP/2 (each its own series: the target id
# ends in " http1" or " http2"), a 100-round MTR to every ICMP host, plus tier 2.
"#;
