//! The command line: every command, its flags and their help.

use crate::test_args::TestKind;
use crate::{db_cli, sync_cli};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use waddleperf_engine::model::TestType;
use waddleperf_engine::store::HistoryQuery;
use waddleperf_engine::version;

#[derive(Parser)]
#[command(
    name = "waddleperf",
    version = version::VERSION,
    long_version = version_string(),
    about = "Measures the network experience between this machine and the services it uses",
    propagate_version = true
)]
pub(crate) struct Cli {
    /// Configuration file [default: the platform config directory]
    #[arg(long, global = true, env = "WADDLEPERF_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Database file [default: the platform data directory]
    #[arg(long, global = true, env = "WADDLEPERF_DB", value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
    /// Directory for the daemon's log files [default: the platform log directory]
    #[arg(long, global = true, env = "WADDLEPERF_LOG_DIR", value_name = "DIR")]
    pub(crate) log_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); WADDLEPERF_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

pub(crate) fn version_string() -> &'static str {
    Box::leak(version::long_version().into_boxed_str())
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the configured suite once (AutoPerf may add tiers 2 and 3), store
    /// and print the results
    Run {
        /// Print results as JSON lines instead of a table
        #[arg(long)]
        json: bool,
        /// Run only this AutoPerf tier's suite (no escalation, health unchanged)
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3), value_name = "1|2|3")]
        tier: Option<u8>,
        /// A speed test instead: each configured bandwidth server, download
        /// then upload, with live progress and the bufferbloat grade
        #[arg(long, conflicts_with = "tier")]
        speed: bool,
    },
    /// Run the monitor headless: the suite on its schedule, AutoPerf,
    /// notifications, log files; stops cleanly on SIGINT/SIGTERM, reloads the
    /// configuration on SIGHUP
    Daemon {
        /// Seconds a run in progress may take to finish when stopping
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        grace: u64,
    },
    /// Show the monitor's state: agent, last and next run, health per target,
    /// AutoPerf tier, backlog
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Pause scheduled runs (kept across restarts; on-demand runs still work)
    Pause,
    /// Resume scheduled runs
    Resume,
    /// Show logged events: escalations, health changes, connectivity, pause
    Events {
        /// Only events from this time on: 90m, 24h, 7d, or an RFC 3339 time
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many (the newest)
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Run one test now
    Test {
        #[command(subcommand)]
        kind: TestKind,
    },
    /// Show stored results
    History(HistoryArgs),
    /// Write stored results to a file (or stdout) as CSV or JSON lines
    Export {
        #[command(flatten)]
        filter: HistoryFilter,
        /// Output format
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Output file [default: stdout]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show this device's identity, version and paths
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Sign in to the WaddlePerf server (the session goes to the system
    /// keychain; the password is never stored)
    Login(sync_cli::LoginArgs),
    /// Sign out: the server ends the session, the tokens are forgotten here
    /// (results keep queueing)
    Logout,
    /// Enroll this device in an organization, once
    Enroll(sync_cli::EnrollArgs),
    /// Upload waiting results now (one pass) and print a summary; list and
    /// retry dead letters
    Sync(sync_cli::SyncArgs),
    /// Check the history database for damage, or recover what can be read
    Db {
        #[command(subcommand)]
        action: db_cli::DbAction,
    },
    /// Create, show or check the configuration
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Serve test peers for other machines' tests (until SIGINT/SIGTERM):
    /// the HTTP peer (WaddlePerf speed test, LibreSpeed, responsiveness) and,
    /// when asked, a UDP echo responder
    Serve(ServeArgs),
    /// Check the release manifest (`[update]`) for a newer WaddlePerf, and
    /// download and verify it
    Update(crate::update_cli::UpdateArgs),
    /// The network this machine is on (interface, kind, gateway, DNS, Wi-Fi,
    /// VPN) and the networks seen before, with their labels
    Network {
        #[command(subcommand)]
        action: Option<NetworkAction>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// System diagnostics to copy into a support ticket: OS, uptime, load,
    /// memory, the network, interfaces (addresses, MTU, speed, errors),
    /// routes, DNS, proxy settings, the clock against a server, ICMP
    Diagnose {
        #[arg(long)]
        json: bool,
        /// Compare the clock with this server's Date header [default: the
        /// sync server, else the first HTTP target]
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Check what this machine allows: ICMP methods for ping, traceroute and
    /// path MTU (and how to enable the unprivileged one), the DNS server
    Doctor {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone, Default)]
pub(crate) struct HistoryFilter {
    /// Only this target (as shown in results)
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Only this test type
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) test_type: Option<TestType>,
    /// Only results newer than this: a duration (90m, 24h, 7d, 4w) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Only results older than this: a duration ago or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// Only the newest N results
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Only results measured on this network: `current`, a network id (or
    /// its first digits) or a label (see `waddleperf network list`)
    #[arg(long, value_name = "current|ID|LABEL")]
    pub(crate) network: Option<String>,
}

#[derive(Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) filter: HistoryFilter,
    /// JSON lines
    #[arg(long, conflicts_with = "csv")]
    pub(crate) json: bool,
    /// CSV with a header row
    #[arg(long)]
    pub(crate) csv: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
    Json,
}

#[derive(Subcommand, Clone)]
pub(crate) enum NetworkAction {
    /// The network now, read from the OS (the default)
    Show,
    /// Every network results were measured on, the most recent first
    List,
    /// Name a network ("Home", "Office"); an empty name clears it
    Label {
        /// `current`, a network id (or its first digits) or its present label
        network: String,
        /// The new name (at most 64 characters)
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigAction {
    /// Write a commented default configuration file
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Print the configuration in effect
    Show,
    /// Check a configuration file [default: the one in use]
    Validate { path: Option<PathBuf> },
    /// Print where the configuration and the database live
    Path,
}

impl HistoryFilter {
    pub(crate) fn to_query(&self) -> Result<HistoryQuery> {
        let now = Utc::now();
        Ok(HistoryQuery {
            target: self.target.clone(),
            test_type: self.test_type,
            // Resolved against the store by the command (`--network`).
            network: None,
            since: self
                .since
                .as_deref()
                .map(|s| parse_when(s, now).with_context(|| format!("--since {s}")))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| parse_when(s, now).with_context(|| format!("--until {s}")))
                .transpose()?,
            limit: self.limit,
        })
    }
}

/// `90m`, `24h`, `7d`, `4w`, `30s` ago, or an RFC 3339 time.
pub(crate) fn parse_when(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let s = s.trim();
    let rfc3339 = DateTime::parse_from_rfc3339(s);
    if let Ok(t) = rfc3339 {
        return Ok(t.with_timezone(&Utc));
    }
    // `2026-13-45T…` is a time, wrongly written: say so, not "unknown unit".
    if s.len() > 4 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit) && s.as_bytes()[4] == b'-' {
        let e = rfc3339.err().map(|e| e.to_string()).unwrap_or_default();
        bail!("not a valid RFC 3339 time such as 2026-11-22T01:42:00Z ({e})");
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        bail!("expected a duration like 24h or 7d, or an RFC 3339 time");
    }
    let too_long =
        || anyhow::anyhow!("a duration that long reaches before any date this tool can show");
    let n: i64 = num.parse().map_err(|_| too_long())?;
    let d = match unit {
        "s" => ChronoDuration::try_seconds(n),
        "m" | "min" => ChronoDuration::try_minutes(n),
        "h" => ChronoDuration::try_hours(n),
        "d" => ChronoDuration::try_days(n),
        "w" => ChronoDuration::try_weeks(n),
        "y" => n.checked_mul(365).and_then(ChronoDuration::try_days),
        _ => bail!("unknown unit `{unit}` (use s, m, h, d, w or y)"),
    };
    d.and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(too_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_parses_durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_when("24h", now).unwrap(),
            now - ChronoDuration::hours(24)
        );
        assert_eq!(
            parse_when("7d", now).unwrap(),
            now - ChronoDuration::days(7)
        );
        assert_eq!(
            parse_when("90m", now).unwrap(),
            now - ChronoDuration::minutes(90)
        );
        assert_eq!(
            parse_when("2026-11-01T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_when("yesterday", now).is_err());
        assert!(parse_when("3q", now)
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any duration or time, however large or malformed: a time or a
        /// clear error, never a panic.
        #[test]
        fn when_never_panics(s in "[0-9]{0,30}[a-z]{0,4}|[0-9T:\\-Z+.]{0,35}|.{0,40}") {
            let now = Utc::now();
            match parse_when(&s, now) {
                Ok(t) => proptest::prop_assert!(t <= now || s.contains('T') || s.contains('-')),
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// `waddleperf serve`: what to serve, where, and its limits.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Serve the HTTP peer on this port (0 picks a free one and prints it)
    /// [default: 8080 when --udp-echo is not given]
    #[arg(long, value_name = "PORT")]
    pub http: Option<u16>,
    /// Answer UDP echo tests on this port (0 picks a free one and prints it)
    #[arg(long, value_name = "PORT")]
    pub udp_echo: Option<u16>,
    /// Address to listen on (0.0.0.0 or :: for every interface)
    #[arg(long, alias = "bind", default_value = "127.0.0.1", value_name = "ADDR")]
    pub listen: std::net::IpAddr,
    /// Most connections served at once; more are answered 503
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Longest single download or upload, in seconds
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_seconds: u64,
    /// Largest single upload, in MiB
    #[arg(long, default_value_t = 16384, value_name = "MIB")]
    pub max_upload_mib: u64,
    /// Seconds a client may send or take nothing before its connection is
    /// closed
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub idle_seconds: u64,
}
