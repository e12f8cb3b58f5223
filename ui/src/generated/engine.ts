// Generated from the engine's Rust types by ts-rs: do not edit.
// WADDLEPERF_WRITE_TS=1 cargo test -p waddleperf-engine generated_typescript

export type TestType = "http" | "tcp" | "udp" | "dns" | "icmp" | "traceroute" | "mtu" | "bandwidth" | "ports";

export type ErrorKind = "dns" | "refused" | "timeout" | "unreachable" | "reset" | "tls" | "protocol" | "http" | "io" | "config" | "permission" | "http3_unavailable" | "busy";

export type Hop = { ttl: number, ip?: string | null, name?: string | null, sent: number, received: number, loss_pct: number, min_ms?: number | null, mean_ms?: number | null, max_ms?: number | null, };

export type RedirectHop = { url: string, status_code: number, total_ms: number, };

export type PortState = "open" | "closed" | "filtered";

export type PortResult = { port: number, state: PortState, connect_ms?: number | null, };

export type Metrics = { dns_ms?: number, connect_ms?: number, tls_ms?: number, ttfb_ms?: number, total_ms?: number, status_code?: number, http_version?: string, bytes?: number, 
/**
 * The body was longer than `probe.max_body_bytes` and was cut there
 * (`bytes` is then the limit).
 */
body_truncated?: boolean, throughput_mbps?: number, redirects?: number, redirect_chain?: Array<RedirectHop>, tls_version?: string, cipher?: string, cert_subject?: string, cert_issuer?: string, cert_days_left?: number, ssh_banner?: string, sent?: number, received?: number, loss_pct?: number, min_ms?: number, mean_ms?: number, median_ms?: number, p95_ms?: number, max_ms?: number, stddev_ms?: number, jitter_ms?: number, server?: string, record_type?: string, rcode?: string, 
/**
 * ICMP, traceroute, MTU: the method that sent the echoes (`datagram`,
 * `raw`, `windows_api`).
 */
icmp_method?: string, 
/**
 * DNS A/AAAA: why the system resolver (timed as `dns_ms`) gave no
 * address, when it did not.
 */
system_resolver_error?: string, answers?: Array<string>, hops?: Array<Hop>, reached?: boolean, 
/**
 * Traceroute: what it sent (`icmp`, `tcp`, `udp`).
 */
trace_protocol?: string, 
/**
 * TCP traceroute: how the target's port answered (`open`: SYN-ACK,
 * `closed`: RST).
 */
port_state?: string, ports?: Array<PortResult>, path_mtu?: number, download_mbps?: number, upload_mbps?: number, streams?: number, seconds?: number, loaded_latency_ms?: number, 
/**
 * The median RTT to the server while this machine sent (upload) or
 * received (download).
 */
loaded_latency_up_ms?: number, loaded_latency_down_ms?: number, 
/**
 * Loaded median less the idle one (`latency_ms`): the queue the test
 * filled.
 */
latency_increase_ms?: number, 
/**
 * `A+` … `F` from `latency_increase_ms` (the DSLReports/LibreQoS scale).
 */
bufferbloat_grade?: string, retransmits?: number, 
/**
 * UDP bandwidth: datagrams that arrived after a later one (known where
 * this machine received them).
 */
out_of_order?: number, server_kind?: string, 
/**
 * Responsiveness: round trips per minute under working conditions
 * (the IETF IPPM method), and how much to trust it (`low`, `medium`,
 * `high`).
 */
rpm?: number, rpm_confidence?: string, 
/**
 * Taken behind a captive portal (`netctx::portal`): the figures say
 * what the portal let through, not the network; not an outage.
 */
captive_portal?: boolean, };

export type Interim = { 
/**
 * Seconds measured so far, of `seconds`.
 */
elapsed_s: number, seconds: number, upload_mbps?: number | null, download_mbps?: number | null, loaded_latency_ms?: number | null, };

export type Measurement = { id: string, test_type: TestType, 
/**
 * The target as configured or typed (URL, `host:port`, name…).
 */
target: string, resolved_ip?: string | null, started_at: string, 
/**
 * Wall time of the whole test, milliseconds.
 */
duration_ms: number, success: boolean, error_kind?: ErrorKind | null, error?: string | null, 
/**
 * The AutoPerf tier that ran the test (1 for the regular suite and ad hoc tests).
 */
tier: number, 
/**
 * The one headline latency (HTTP: TTFB; TCP: connect; TLS: connect +
 * handshake; DNS: query; ICMP/UDP: mean RTT).
 */
latency_ms?: number | null, metrics: Metrics, 
/**
 * The network it was measured on (`netctx::network_id`); `None` for
 * results older than network context, or when the OS could not say.
 */
network_id?: string | null, };

export type LinkType = "ethernet" | "wifi" | "cellular" | "vpn" | "other";

export type NetworkSharing = "none" | "id" | "everything";

export type NetworkContext = { 
/**
 * The stable network id ([`network_id`]).
 */
network_id: string, 
/**
 * The interface the default route uses.
 */
iface: string, link_type: LinkType, local_ip?: string | null, gateway_ip?: string | null, 
/**
 * The gateway's MAC address (from the neighbour table), where the link
 * has one.
 */
gateway_mac?: string | null, dns_servers: Array<string>, 
/**
 * The default route goes through a tunnel (tun, WireGuard, utun, PPP).
 */
vpn: boolean, 
/**
 * The OS marks the connection metered (`None`: the OS does not say).
 */
metered?: boolean | null, ssid?: string | null, bssid?: string | null, wifi_rssi_dbm?: number | null, wifi_channel?: number | null, wifi_tx_rate_mbps?: number | null, };

export type KnownNetwork = { id: string, 
/**
 * The person's name for it ("Home", "Office").
 */
label?: string | null, first_seen: string, last_seen: string, 
/**
 * Results measured on it.
 */
results: number, 
/**
 * The context as last seen.
 */
context: NetworkContext, };

export type Networks = { 
/**
 * The network now; `None` when there is none (no default route) or the
 * OS cannot say (`error`).
 */
current?: NetworkContext | null, error?: string | null, known: Array<KnownNetwork>, };

export type Health = "ok" | "degraded" | "down";

export type Limit = "max" | "min";

export type Breach = { test_type: TestType, target: string, 
/**
 * The figure (`latency_ms`, `cert_days_left`…) or `success` for a failure.
 */
metric: string, 
/**
 * The measured value (0 for a failure).
 */
value: number, 
/**
 * The threshold it crossed (for a failure, 1: the test should succeed).
 */
threshold: number, 
/**
 * Whether the value must stay `below` or `above` the threshold.
 */
limit: Limit, 
/**
 * For a failure: its error kind and message.
 */
error?: string | null, };

export type Tier3 = "No" | { "Run": Transition } | { "CoolingDown": { until: string, } };

export type EscalationState = { 
/**
 * 1 (tier 1 only) or 2 (tier 2 runs after every tier 1 run).
 */
level: number, 
/**
 * Consecutive tier 1 runs with a breach.
 */
tier1_breach_runs: number, 
/**
 * Consecutive tier 1 runs without one.
 */
tier1_healthy_runs: number, 
/**
 * Consecutive tier 2 runs with a breach.
 */
tier2_breach_runs: number, 
/**
 * When tier 3 last ran (for the cool-down).
 */
tier3_last_run?: string | null, };

export type Transition = { from: number, to: number, 
/**
 * What breached (empty when going back down).
 */
breaches: Array<Breach>, 
/**
 * A sentence for logs, the event list and notifications.
 */
message: string, };

export type TaskFailure = { 
/**
 * Times it failed (each followed by a restart).
 */
failures: number, last_error: string, last_failed_at: string, };

export type RunReason = "start" | "scheduled" | "catch_up" | "on_demand" | "speed_test" | "network_change";

export type RunSummary = { run_id: string, reason: RunReason, started_at: string, finished_at: string, 
/**
 * The tiers that ran, in order.
 */
tiers: Array<number>, 
/**
 * In the order the tiers and their suites list them.
 */
results: Array<Measurement>, 
/**
 * Tier changes this run made.
 */
transitions: Array<Transition>, 
/**
 * The run was cut short by a shutdown; tests not finished were not stored.
 */
interrupted: boolean, 
/**
 * Why results could not be stored (the run itself still completed).
 */
store_error?: string | null, };

export type LastRun = { run_id: string, reason: RunReason, started_at: string, finished_at: string, tiers: Array<number>, total: number, failed: number, };

export type AgentState = { pid: number, next_run: string | null, updated_at: string, };

export type TargetHealth = { test_type: TestType, target: string, health: Health, 
/**
 * Since when it has had this health.
 */
since: string, reason?: string | null, };

export type Connectivity = { 
/**
 * Every tier 1 test failed to reach its target (DNS, unreachable, timeout).
 */
lost: boolean, since?: string | null, };

export type Status = { running: boolean, paused: boolean, targets: number, last_run?: LastRun | null, 
/**
 * The next scheduled run, as the agent (daemon or desktop app) planned it.
 */
agent?: AgentState | null, 
/**
 * The worst health over all targets (`None` before the first run).
 */
health?: Health | null, targets_health: Array<TargetHealth>, autoperf: EscalationState, connectivity: Connectivity, store: StoreStats, 
/**
 * Background tasks that failed (and were restarted) since the agent
 * started.
 */
task_failures?: { [key in string]?: TaskFailure }, 
/**
 * The network the machine is on (`None`: none, or the OS cannot say).
 */
network?: KnownNetwork | null, };

export type PassSummary = { started_at: string, 
/**
 * Uploaded and acknowledged.
 */
delivered: number, 
/**
 * Of those, found already on the server after an ambiguous attempt.
 */
settled: number, 
/**
 * Put off to a later pass (backoff).
 */
deferred: number, 
/**
 * Refused by the server this pass.
 */
dead_lettered: number, 
/**
 * Still waiting after the pass.
 */
remaining: number, 
/**
 * All dead letters after the pass.
 */
dead_total: number, 
/**
 * Why the pass stopped early (server unreachable, 5xx, 429...).
 */
error?: string | null, 
/**
 * No pass before this (backoff).
 */
next_attempt_at: string | null, };

export type Event = { "event": "run_started", run_id: string, started_at: string, reason: RunReason, 
/**
 * Tests of tier 1 (escalation may add more: see `TierStarted`).
 */
total: number, } | { "event": "tier_started", run_id: string, tier: number, 
/**
 * The run's new total number of tests.
 */
total: number, } | { "event": "test_started", run_id: string, tier: number, test_type: TestType, target: string, } | { "event": "result", run_id: string, 
/**
 * 1-based position of this result among the run's tests.
 */
done: number, total: number, result: Measurement, } | { "event": "bandwidth_progress", run_id: string, target: string, interim: Interim, } | { "event": "run_finished", summary: RunSummary, } | { "event": "health_changed", test_type: TestType, target: string, 
/**
 * `None` the first time a target is seen.
 */
from: Health | null, to: Health, 
/**
 * What made it so (a breach or the failure), for `degraded` and `down`.
 */
reason: string | null, } | { "event": "overall_health", health: Health, } | { "event": "escalated", transition: Transition, } | { "event": "deescalated", transition: Transition, } | { "event": "connectivity_lost", message: string, } | { "event": "connectivity_restored", message: string, } | { "event": "paused" } | { "event": "resumed" } | { "event": "sync_started", pending: number, } | { "event": "sync_progress", delivered: number, remaining: number, } | { "event": "sync_finished", summary: PassSummary, } | { "event": "signed_out", message: string, } | { "event": "enrollment_lost", message: string, } | { "event": "task_failed", task: string, message: string, 
/**
 * Restarts so far.
 */
restarts: number, } | { "event": "update_ready", version: string, path: string, } | { "event": "network_changed", from: string | null, network: KnownNetwork | null, } | { "event": "networks_changed" } | { "event": "captive_portal", url: string, location?: string | null, } | { "event": "next_run", at: string | null, };

export type StoreStats = { results: number, outbox_pending: number, outbox_dead: number, newest: string | null, };

export type Bucket = { start: string, 
/**
 * Results in the bucket.
 */
count: number, 
/**
 * Of which failed.
 */
failed: number, 
/**
 * Values of the metric in the bucket (results that reported it).
 */
n: number, min?: number | null, mean?: number | null, max?: number | null, 
/**
 * Mean loss over the bucket's results: a result's own `loss_pct` where it
 * has one (ICMP, UDP), otherwise 0 for a success and 100 for a failure.
 */
loss_pct?: number | null, };

export type Series = { target: string, test_type: TestType, metric: string, buckets: Array<Bucket>, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

export type StoredEvent = { id: number, at: string, kind: string, target?: string | null, message: string, details: JsonValue, };

export type SecretStoreKind = "keychain" | "file";

export type SignedOut = { at: string, reason: string, };

export type Account = { server: string, username: string, user_id: number, 
/**
 * The keychain (or file) entry holding the tokens.
 */
secret_key: string, secret_store: SecretStoreKind, 
/**
 * Why the tokens are in the 0600 file (the keychain's failure).
 */
secret_note?: string | null, signed_in_at: string, 
/**
 * Set when the session ended on the server's side (refresh refused):
 * results keep queueing until the person signs in again.
 */
signed_out?: SignedOut | null, };

export type Lost = { at: string, reason: string, };

export type Enrolled = { server: string, id: number, 
/**
 * The server's 32-hex serial of the device.
 */
device_id: string, organization_id: number, device_name: string, enrolled_at: string, 
/**
 * Set when the server says the device no longer exists (deleted by an
 * administrator): results keep queueing, none is sent or dead-lettered,
 * until the person enrolls again (`enroll --force`).
 */
lost?: Lost | null, };

export type Progress = { last_pass_at?: string | null, 
/**
 * The last pass that reached the server and finished.
 */
last_success_at?: string | null, last_error?: string | null, 
/**
 * Passes in a row that could not reach the server (drives the backoff).
 */
failures: number, 
/**
 * No pass before this (backoff, `Retry-After`).
 */
not_before?: string | null, delivered_total: number, };

export type SyncStatus = { enabled: boolean, account?: Account | null, 
/**
 * Where the fallback file is, when the tokens are there.
 */
secrets_file?: string | null, enrollment?: Enrolled | null, progress: Progress, pending: number, dead: number, };

export type HttpMode = "auto" | "http1" | "http2" | "http3";

export type TcpMode = "raw" | "tls" | "ssh";

export type Family = "ipv4" | "ipv6";

export type BandwidthKind = "iperf3" | "waddleperf" | "librespeed" | "rpm";

export type Direction = "upload" | "download" | "bidir";

export type TraceProtocol = "icmp" | "tcp" | "udp";

export type PortsTarget = { host: string, 
/**
 * `"22,80,443"`; explicit ranges (`"8000-8003"`) allowed, 64 ports at most.
 */
ports: string, 
/**
 * How long each connect waits before the port counts as filtered
 * (default 2000).
 */
connect_wait_ms?: number | null, 
/**
 * Connects at once (default 8).
 */
concurrency?: number | null, family?: Family | null, thresholds?: ThresholdOverrides | null, };

export type Thresholds = { 
/**
 * Above: headline latency of TCP connect, ICMP and UDP tests.
 */
latency_ms: number, 
/**
 * Above: loss of sampled tests.
 */
loss_pct: number, 
/**
 * Above: HTTP total time.
 */
http_total_ms: number, 
/**
 * Above: DNS query time.
 */
dns_ms: number, 
/**
 * Below: bandwidth test download or upload.
 */
throughput_mbps: number, 
/**
 * Above: jitter of sampled tests.
 */
jitter_ms: number, 
/**
 * Above: traceroute hop count.
 */
hops: number, 
/**
 * Below: days before a TLS certificate expires.
 */
cert_days_left: number, };

export type ThresholdOverrides = { latency_ms?: number | null, loss_pct?: number | null, http_total_ms?: number | null, dns_ms?: number | null, throughput_mbps?: number | null, jitter_ms?: number | null, hops?: number | null, cert_days_left?: number | null, };

export type Schedule = { interval_minutes: number, run_on_start: boolean, 
/**
 * Fixed offset into the interval; `None` derives one from the device id.
 */
offset_seconds?: number | null, concurrency: number, };

export type AutoPerf = { enabled: boolean, escalate_after: number, deescalate_after: number, tier3_cooldown_minutes: number, 
/**
 * Megabytes (10^6 bytes) AutoPerf's bandwidth tests may move in a day
 * (local time); once used up, escalations skip them until midnight. 0:
 * AutoPerf never runs them (a speed test or `test bandwidth` still does).
 */
bandwidth_budget_mb: number, thresholds: Thresholds, };

export type Notifications = { enabled: boolean, min_interval_minutes: number, };

export type ProbeDefaults = { timeout_ms: number, max_redirects: number, max_body_bytes: number, };

export type StoreConfig = { retention_days: number, };

export type HttpTarget = { url: string, mode: HttpMode, insecure: boolean, ca_file?: string | null, timeout_ms?: number | null, thresholds?: ThresholdOverrides | null, };

export type TcpTarget = { 
/**
 * `host:port` (`[v6]:port` for IPv6 literals).
 */
target: string, mode: TcpMode, 
/**
 * TLS only: the name to send as SNI and verify (default: the host).
 */
server_name?: string | null, insecure: boolean, ca_file?: string | null, timeout_ms?: number | null, thresholds?: ThresholdOverrides | null, };

export type DnsTarget = { 
/**
 * The name to look up (for PTR, an address may be given).
 */
name: string, 
/**
 * `host[:port]` of the server; default: the system's name server.
 */
server?: string | null, 
/**
 * A, AAAA, CNAME, MX, NS, TXT, SOA, PTR or SRV (default A).
 */
type?: string | null, 
/**
 * Ask over TCP from the start.
 */
tcp: boolean, timeout_ms?: number | null, thresholds?: ThresholdOverrides | null, };

export type UdpTarget = { 
/**
 * `host:port` of the echo peer.
 */
target: string, count?: number | null, interval_ms?: number | null, 
/**
 * Datagram payload bytes (12 to 65000; default 64).
 */
size?: number | null, 
/**
 * How long each datagram waits for its echo (default 2000).
 */
reply_wait_ms?: number | null, 
/**
 * The old name of `reply_wait_ms`, still read (`config validate` notes it).
 */
timeout_ms?: number | null, family?: Family | null, thresholds?: ThresholdOverrides | null, };

export type IcmpTarget = { host: string, count?: number | null, interval_ms?: number | null, 
/**
 * ICMP payload bytes (0 to 65000; default 56).
 */
size?: number | null, 
/**
 * How long each echo waits for its reply (default 2000).
 */
reply_wait_ms?: number | null, 
/**
 * The old name of `reply_wait_ms`, still read (`config validate` notes it).
 */
timeout_ms?: number | null, family?: Family | null, thresholds?: ThresholdOverrides | null, };

export type TraceTarget = { host: string, max_hops?: number | null, rounds?: number | null, interval_ms?: number | null, 
/**
 * How long each probe waits (default 1000).
 */
reply_wait_ms?: number | null, 
/**
 * The old name of `reply_wait_ms`, still read (`config validate` notes it).
 */
timeout_ms?: number | null, 
/**
 * Look up reverse names of the hops (default true).
 */
names?: boolean | null, 
/**
 * `icmp` (default), or `tcp` / `udp` to `port`.
 */
protocol?: TraceProtocol | null, 
/**
 * The TCP or UDP port (default 443 for TCP, 33434 for UDP).
 */
port?: number | null, family?: Family | null, thresholds?: ThresholdOverrides | null, };

export type MtuTarget = { host: string, 
/**
 * The largest packet size tried (default 9000).
 */
max?: number | null, 
/**
 * How long each probe waits (default 1000).
 */
reply_wait_ms?: number | null, 
/**
 * The old name of `reply_wait_ms`, still read (`config validate` notes it).
 */
timeout_ms?: number | null, family?: Family | null, thresholds?: ThresholdOverrides | null, };

export type BandwidthTarget = { 
/**
 * iperf3: `host[:port]` (port 5201 by default); the HTTP kinds: the
 * server's base URL (`http://peer.lan:8080/`).
 */
server: string, kind: BandwidthKind, direction: Direction, 
/**
 * Parallel TCP streams (default 4).
 */
streams?: number | null, 
/**
 * Seconds measured (default 10).
 */
seconds?: number | null, 
/**
 * Seconds of TCP slow start left out first (default 1).
 */
omit?: number | null, 
/**
 * UDP instead of TCP, at `bitrate`.
 */
udp: boolean, 
/**
 * UDP: bits per second per stream, e.g. `"50M"` (default 1M).
 */
bitrate?: string | null, thresholds?: ThresholdOverrides | null, };

export type Settings = { schedule: Schedule, autoperf: AutoPerf, notifications: Notifications, probe: ProbeDefaults, store: StoreConfig, 
/**
 * Tier 1 HTTP targets.
 */
http: Array<HttpTarget>, 
/**
 * Tier 1 TCP, TLS and SSH targets.
 */
tcp: Array<TcpTarget>, 
/**
 * Tier 1 DNS queries, UDP echo peers, ping hosts, traces and path MTU
 * hosts (absent in a document: none).
 */
dns: Array<DnsTarget>, udp: Array<UdpTarget>, icmp: Array<IcmpTarget>, traceroute: Array<TraceTarget>, mtu: Array<MtuTarget>, 
/**
 * Bandwidth servers (run when AutoPerf escalates, and on demand).
 */
bandwidth: Array<BandwidthTarget>, 
/**
 * Port checks: a host and the TCP ports it should have open.
 */
ports: Array<PortsTarget>, 
/**
 * What uploads say about the network (`[sync] network_context`).
 */
network_sharing: NetworkSharing, };
