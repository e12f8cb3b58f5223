//! `waddleperf`: the command-line front end of the engine.
//!
//! Exit codes: 0 when the tool did its work (even if tests failed), 1 when it
//! could not (bad configuration, unusable database, unwritable output), 2 for
//! usage errors.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use waddleperf_engine::agent::AgentLock;
use waddleperf_engine::config::{Config, Paths, DEFAULT_TOML};
use waddleperf_engine::device::DeviceInfo;
use waddleperf_engine::export;
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::runtime::{Runtime, Status};
use waddleperf_engine::store::StoredEvent;

mod daemon;
mod db_cli;
mod sync_cli;
mod test_args;
use test_args::TestKind;
mod text;
mod tools_cli;
use waddleperf_engine::store::{HistoryQuery, Store};
use waddleperf_engine::version;

#[derive(Parser)]
#[command(
    name = "waddleperf",
    version = version::VERSION,
    long_version = version_string(),
    about = "Measures the network experience between this machine and the services it uses",
    propagate_version = true
)]
struct Cli {
    /// Configuration file [default: the platform config directory]
    #[arg(long, global = true, env = "WADDLEPERF_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database file [default: the platform data directory]
    #[arg(long, global = true, env = "WADDLEPERF_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    /// Directory for the daemon's log files [default: the platform log directory]
    #[arg(long, global = true, env = "WADDLEPERF_LOG_DIR", value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); WADDLEPERF_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

fn version_string() -> &'static str {
    Box::leak(version::long_version().into_boxed_str())
}

#[derive(Subcommand)]
enum Command {
    /// Run the configured suite once (AutoPerf may add tiers 2 and 3), store
    /// and print the results
    Run {
        /// Print results as JSON lines instead of a table
        #[arg(long)]
        json: bool,
        /// Run only this AutoPerf tier's suite (no escalation, health unchanged)
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3), value_name = "1|2|3")]
        tier: Option<u8>,
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
    /// Serve test peers for other machines' tests (until SIGINT/SIGTERM)
    Serve {
        /// Answer UDP echo tests on this port (0 picks a free one and prints it)
        #[arg(long, value_name = "PORT")]
        udp_echo: Option<u16>,
        /// Address to listen on (0.0.0.0 or :: for every interface)
        #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
        bind: std::net::IpAddr,
    },
    /// Check what this machine allows: ICMP methods for ping, traceroute and
    /// path MTU (and how to enable the unprivileged one), the DNS server
    Doctor {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone, Default)]
struct HistoryFilter {
    /// Only this target (as shown in results)
    #[arg(long)]
    target: Option<String>,
    /// Only this test type
    #[arg(long = "type", value_name = "TYPE")]
    test_type: Option<TestType>,
    /// Only results newer than this: a duration (90m, 24h, 7d, 4w) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only results older than this: a duration ago or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Only the newest N results
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Args)]
struct HistoryArgs {
    #[command(flatten)]
    filter: HistoryFilter,
    /// JSON lines
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row
    #[arg(long)]
    csv: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Csv,
    Json,
}

#[derive(Subcommand)]
enum ConfigAction {
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed the pipe (`| head`): it has what it wanted.
        Err(e) if text::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "waddleperf: {}", text::error_line(&e));
            ExitCode::from(if e.is::<UsageError>() { 2 } else { 1 })
        }
    }
}

/// stderr logging of the one-shot commands: errors only unless `-v`, since
/// the command's own output already says what matters (a run's connectivity
/// and tier changes are printed under its table).
/// A value on the command line that cannot be used (a bad target, time,
/// timeout or CA file): exit 2, the same as clap's own usage errors, so
/// scripts tell "the command was wrong" (2) from "it could not do its job"
/// (1).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct UsageError(#[from] anyhow::Error);

fn usage(e: anyhow::Error) -> anyhow::Error {
    UsageError(e).into()
}

fn init_logging(verbose: u8) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(waddleperf_engine::logging::stderr_filter(verbose, "error"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn real_main(cli: Cli) -> Result<()> {
    let paths = Paths::resolve(cli.config.clone(), cli.db.clone(), cli.log_dir.clone());
    if !matches!(cli.command, Command::Daemon { .. }) {
        init_logging(cli.verbose);
    }
    match cli.command {
        Command::Daemon { grace } => daemon::run(&paths, cli.verbose, Duration::from_secs(grace)),
        Command::Status { json } => {
            let cfg = load_config(&paths)?;
            let store = open_existing_store(&paths)?;
            let rt = Runtime::new(store, cfg);
            let syncer = waddleperf_engine::sync::Syncer::new(rt.clone(), &paths.data_dir);
            let (status, sync) = tokio_rt()?.block_on(async {
                Ok::<_, anyhow::Error>((rt.status().await?, syncer.status().await?))
            })?;
            let agent = AgentLock::holder(&paths.data_dir);
            let mut out = std::io::stdout().lock();
            if json {
                let mut v = serde_json::to_value(&status)?;
                v["agent_running"] = serde_json::json!(agent.is_some());
                v["sync"] = serde_json::to_value(&sync)?;
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
            } else {
                let mut out = text::Escaping(&mut out);
                print_status(&mut out, &status, agent, Utc::now())?;
                sync_cli::print_status(&mut out, &sync)?;
            }
            Ok(())
        }
        Command::Pause | Command::Resume => {
            let pause = matches!(cli.command, Command::Pause);
            let cfg = load_config(&paths)?;
            let rt = open_runtime(&paths, cfg)?;
            tokio_rt()?.block_on(async {
                if pause {
                    rt.pause().await
                } else {
                    rt.resume().await
                }
            })?;
            let mut out = std::io::stdout().lock();
            if pause {
                writeln!(out, "monitoring paused: scheduled runs are skipped until `waddleperf resume` (on-demand runs still work)")?;
            } else {
                writeln!(out, "monitoring resumed")?;
            }
            Ok(())
        }
        Command::Events { since, limit, json } => {
            let since = since
                .as_deref()
                .map(|s| parse_when(s, Utc::now()).with_context(|| format!("--since {s}")))
                .transpose()
                .map_err(usage)?;
            let store = open_existing_store(&paths)?;
            let events = store.events(since, None, limit)?;
            let mut out = std::io::stdout().lock();
            if json {
                for e in &events {
                    serde_json::to_writer(&mut out, e)?;
                    writeln!(out)?;
                }
            } else {
                print_events(&mut text::Escaping(&mut out), &events)?;
            }
            Ok(())
        }
        Command::Login(a) => sync_cli::login(&paths, a),
        Command::Logout => sync_cli::logout(&paths),
        Command::Enroll(a) => sync_cli::enroll(&paths, a),
        Command::Sync(a) => sync_cli::sync(&paths, a),
        Command::Config { action } => config_cmd(action, &paths),
        Command::Db { action } => db_cli::run(&paths, action),
        Command::Serve { udp_echo, bind } => tools_cli::serve(udp_echo, bind),
        Command::Doctor { json } => {
            if tools_cli::doctor(json)? {
                Ok(())
            } else {
                bail!("no ICMP method works here: ping, traceroute and path MTU tests will fail (see above)")
            }
        }
        Command::Info { json } => info_cmd(json, &paths),
        Command::Run { json, tier } => {
            let cfg = load_config(&paths)?;
            let rt = open_runtime(&paths, cfg)?;
            tokio_rt()?.block_on(run_cmd(rt, json, tier))
        }
        Command::Test { kind } => {
            let cfg = load_config(&paths)?;
            let (spec, common) = test_args::spec(kind, &cfg).map_err(usage)?;
            let probe = waddleperf_engine::probe::build(spec, 1);
            let store = if common.no_store {
                Store::open_in_memory()?
            } else {
                open_store(&paths)?
            };
            let rt = Runtime::new(store, cfg);
            tokio_rt()?.block_on(async {
                let m = rt.test(&probe, !common.no_store).await?;
                let mut out = std::io::stdout().lock();
                if common.json {
                    serde_json::to_writer_pretty(&mut out, &m)?;
                    writeln!(out)?;
                } else {
                    print_test(&mut text::Escaping(&mut out), &m)?;
                }
                Ok(())
            })
        }
        Command::History(args) => {
            // Arguments first: a bad flag is reported as such, whatever the database.
            let query = args.filter.to_query().map_err(usage)?;
            let store = open_existing_store(&paths)?;
            let results = store.history(&query)?;
            let mut out = std::io::stdout().lock();
            if args.json {
                export::write_json_lines(&mut out, &results)?;
            } else if args.csv {
                export::write_csv(&mut out, &results)?;
            } else {
                let mut out = text::Escaping(&mut out);
                print_table(&mut out, &results)?;
                // AutoPerf tier changes in the same window.
                let tiers: Vec<_> = store
                    .events(query.since, query.until, 50)?
                    .into_iter()
                    .filter(|e| e.kind == "escalated" || e.kind == "deescalated")
                    .collect();
                if !tiers.is_empty() {
                    writeln!(out, "\nAutoPerf:")?;
                    print_events(&mut out, &tiers)?;
                }
            }
            Ok(())
        }
        Command::Export {
            filter,
            format,
            output,
        } => {
            let query = filter.to_query().map_err(usage)?;
            let store = open_existing_store(&paths)?;
            let results = store.history(&query)?;
            let write = |w: &mut dyn Write| -> std::io::Result<()> {
                match format {
                    ExportFormat::Csv => export::write_csv(w, &results),
                    ExportFormat::Json => export::write_json_lines(w, &results),
                }
            };
            match output {
                Some(path) => {
                    write_atomically(&path, waddleperf_engine::fsutil::Access::Default, |f| {
                        write(f)
                    })?;
                    eprintln!("wrote {} results to {}", results.len(), path.display());
                }
                None => write(&mut std::io::stdout().lock())?,
            }
            Ok(())
        }
    }
}

pub(crate) fn tokio_rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn load_config(paths: &Paths) -> Result<Config> {
    Ok(Config::load(&paths.config_file)?)
}

pub(crate) fn open_store(paths: &Paths) -> Result<Store> {
    Store::open(&paths.db_file).with_context(|| format!("database {}", paths.db_file.display()))
}

/// Reading commands do not create a database where there is none: on a
/// fresh install they read an empty history (nothing is wrong, exit 0).
pub(crate) fn open_existing_store(paths: &Paths) -> Result<Store> {
    if !paths.db_file.exists() {
        return Ok(Store::open_in_memory()?);
    }
    open_store(paths)
}

pub(crate) fn open_runtime(paths: &Paths, cfg: Config) -> Result<Runtime> {
    Ok(Runtime::new(open_store(paths)?, cfg))
}

async fn run_cmd(rt: Runtime, json: bool, tier: Option<u8>) -> Result<()> {
    let cfg = rt.config();
    if cfg.target_count() == 0 {
        bail!("the suite is empty: add targets under [suite] in the configuration");
    }
    let mut events = rt.subscribe();
    let interactive = !json && std::io::stderr().is_terminal();
    let progress = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if let waddleperf_engine::runtime::Event::Result {
                done,
                total,
                result,
                ..
            } = ev
            {
                if interactive {
                    eprint!(
                        "\r\x1b[K[{done}/{total}] {} {}",
                        result.test_type,
                        text::escape(&result.target)
                    );
                }
            }
        }
    });
    let summary = match tier {
        Some(t) => rt.run_tier(t).await?,
        None => rt.run_now().await?,
    };
    progress.abort();
    if interactive {
        eprint!("\r\x1b[K");
    }
    let mut out = std::io::stdout().lock();
    if json {
        export::write_json_lines(&mut out, &summary.results)?;
    } else {
        let mut out = text::Escaping(&mut out);
        print_table(&mut out, &summary.results)?;
        for tr in &summary.transitions {
            writeln!(out, "\nAutoPerf: {}", tr.message)?;
        }
        let tiers: Vec<String> = summary.tiers.iter().map(u8::to_string).collect();
        writeln!(
            out,
            "\n{} tests, {} failed, tier {}, run {}",
            summary.results.len(),
            summary.failed(),
            tiers.join("+"),
            summary.run_id
        )?;
    }
    if let Some(e) = &summary.store_error {
        bail!("results were measured but not stored: {e}");
    }
    Ok(())
}

impl HistoryFilter {
    fn to_query(&self) -> Result<HistoryQuery> {
        let now = Utc::now();
        Ok(HistoryQuery {
            target: self.target.clone(),
            test_type: self.test_type,
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
fn parse_when(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
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

fn print_table(out: &mut dyn Write, results: &[Measurement]) -> std::io::Result<()> {
    if results.is_empty() {
        return writeln!(out, "no results");
    }
    let tw = results
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 48);
    writeln!(
        out,
        "{:<20}  {:<5}  {:<tw$}  {:<14}  {:>10}  DETAILS",
        "TIME (UTC)", "TYPE", "TARGET", "RESULT", "LATENCY"
    )?;
    for r in results {
        let status = if r.success {
            "ok".to_owned()
        } else {
            format!("FAIL {}", r.error_kind.map(|k| k.as_str()).unwrap_or("?"))
        };
        let latency = r
            .latency_ms
            .map(|l| format!("{l:.1} ms"))
            .unwrap_or_else(|| "-".into());
        let mut target: String = r.target.chars().take(tw).collect();
        if r.target.chars().count() > tw {
            target.pop();
            target.push('…');
        }
        writeln!(
            out,
            "{:<20}  {:<5}  {:<tw$}  {:<14}  {:>10}  {}",
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.test_type.as_str(),
            target,
            status,
            latency,
            r.summary()
        )?;
    }
    Ok(())
}

fn print_test(out: &mut dyn Write, m: &Measurement) -> std::io::Result<()> {
    let verdict = if m.success { "ok" } else { "FAILED" };
    writeln!(out, "{} {}: {verdict}", m.test_type, m.target)?;
    if let (Some(k), Some(e)) = (m.error_kind, &m.error) {
        writeln!(out, "  error        {k}: {e}")?;
    }
    if let Some(ip) = &m.resolved_ip {
        writeln!(out, "  address      {ip}")?;
    }
    let metrics = serde_json::to_value(&m.metrics).unwrap_or_default();
    if let Some(obj) = metrics.as_object() {
        for (k, v) in obj {
            if k == "hops" {
                continue;
            }
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if k.ends_with("_ms") => {
                    format!("{:.3} ms", n.as_f64().unwrap_or_default())
                }
                other => other.to_string(),
            };
            writeln!(out, "  {k:<12} {shown}")?;
        }
    }
    if let Some(l) = m.latency_ms {
        writeln!(out, "  latency_ms   {l:.3} ms")?;
    }
    writeln!(out, "  duration_ms  {:.3} ms", m.duration_ms)?;
    if let Some(hops) = &m.metrics.hops {
        writeln!(
            out,
            "  {:>3}  {:<40}  {:>5}  {:>6}  {:>9}  {:>9}  {:>9}",
            "TTL", "ADDRESS", "SENT", "LOSS", "MIN", "MEAN", "MAX"
        )?;
        let f = |v: Option<f64>| v.map_or("*".to_owned(), |v| format!("{v:.3}"));
        for h in hops {
            let who = match (&h.ip, &h.name) {
                (Some(ip), Some(n)) => format!("{n} ({ip})"),
                (Some(ip), None) => ip.clone(),
                _ => "*".into(),
            };
            writeln!(
                out,
                "  {:>3}  {:<40}  {:>5}  {:>5.1}%  {:>9}  {:>9}  {:>9}",
                h.ttl,
                who,
                h.sent,
                h.loss_pct,
                f(h.min_ms),
                f(h.mean_ms),
                f(h.max_ms)
            )?;
        }
    }
    Ok(())
}

pub(crate) fn when(t: &DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn ago(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = now - *t;
    let (n, unit, dir) = if d.num_seconds() >= 0 {
        (d.num_seconds(), "ago", true)
    } else {
        (-d.num_seconds(), "from now", false)
    };
    let span = match n {
        0..=89 => format!("{n} s"),
        90..=5399 => format!("{} min", (n + 30) / 60),
        5400..=129_599 => format!("{:.1} h", n as f64 / 3600.0),
        _ => format!("{:.1} d", n as f64 / 86_400.0),
    };
    if dir {
        format!("{span} {unit}")
    } else {
        format!("in {span}")
    }
}

fn print_status(
    out: &mut dyn Write,
    s: &Status,
    agent: Option<Option<u32>>,
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    match (agent, &s.agent) {
        (Some(pid), a) => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let next = match a.as_ref().and_then(|a| a.next_run) {
                Some(t) => format!(", next run {} ({})", when(&t), ago(&t, now)),
                None => String::new(),
            };
            writeln!(out, "agent         running{pid}{next}")?;
        }
        (None, _) => writeln!(
            out,
            "agent         not running (start `waddleperf daemon` or the desktop app)"
        )?,
    }
    writeln!(
        out,
        "monitoring    {}",
        if s.paused {
            "paused (`waddleperf resume` to resume)"
        } else {
            "active"
        }
    )?;
    match &s.last_run {
        Some(l) => {
            let tiers: Vec<String> = l.tiers.iter().map(u8::to_string).collect();
            writeln!(
                out,
                "last run      {} ({}), {:?}, tier {}, {} tests, {} failed",
                when(&l.finished_at),
                ago(&l.finished_at, now),
                l.reason,
                tiers.join("+"),
                l.total,
                l.failed
            )?
        }
        None => writeln!(out, "last run      never")?,
    }
    match s.health {
        Some(h) => writeln!(out, "health        {h}")?,
        None => writeln!(out, "health        unknown (no run yet)")?,
    }
    for t in &s.targets_health {
        let reason = t
            .reason
            .as_deref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<9} {:<5} {}{reason}",
            t.health.as_str(),
            t.test_type.as_str(),
            t.target
        )?;
    }
    let mut tier = format!("tier {}", s.autoperf.level);
    if s.autoperf.level > 1 {
        tier.push_str(" (escalated)");
    }
    if let Some(t3) = &s.autoperf.tier3_last_run {
        tier.push_str(&format!(", tier 3 last ran {}", when(t3)));
    }
    writeln!(out, "autoperf      {tier}")?;
    if s.connectivity.lost {
        let since = s
            .connectivity
            .since
            .map(|t| format!(" since {}", when(&t)))
            .unwrap_or_default();
        writeln!(out, "connectivity  lost{since}")?;
    } else {
        writeln!(out, "connectivity  ok")?;
    }
    for (name, f) in &s.task_failures {
        writeln!(
            out,
            "task          {name} FAILED {} time(s), restarted; last {}: {}",
            f.failures,
            when(&f.last_failed_at),
            f.last_error
        )?;
    }
    writeln!(
        out,
        "results       {} stored; {} waiting to sync, {} refused (dead letters)",
        s.store.results, s.store.outbox_pending, s.store.outbox_dead
    )
}

fn print_events(out: &mut dyn Write, events: &[StoredEvent]) -> std::io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no events");
    }
    for e in events {
        writeln!(out, "{}  {:<21} {}", when(&e.at), e.kind, e.message)?;
    }
    Ok(())
}

fn info_cmd(json: bool, paths: &Paths) -> Result<()> {
    let dev = DeviceInfo::detect();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "version": version::VERSION,
            "build": version::BUILD_NUMBER,
            "commit": version::GIT_COMMIT,
            "built": version::BUILD_DATE,
            "device": dev,
            "paths": paths,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(out, "WaddlePerf {}", version::long_version())?;
        writeln!(out, "hostname   {}", dev.hostname)?;
        writeln!(out, "os         {} {}", dev.os, dev.os_version)?;
        writeln!(out, "arch       {}", dev.arch)?;
        writeln!(out, "device id  {} (from {})", dev.device_id, dev.id_source)?;
        writeln!(out, "{paths}")?;
    }
    Ok(())
}

fn config_cmd(action: ConfigAction, paths: &Paths) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        ConfigAction::Path => {
            writeln!(out, "{paths}")?;
            Ok(())
        }
        ConfigAction::Show => {
            let cfg = load_config(paths)?;
            if !paths.config_file.exists() {
                writeln!(
                    out,
                    "# {} does not exist: these are the defaults",
                    paths.config_file.display()
                )?;
            }
            write!(out, "{}", cfg.to_toml())?;
            Ok(())
        }
        ConfigAction::Validate { path } => {
            // No file where the configuration lives is fine: the defaults
            // apply. A file named on the command line must exist.
            if path.is_none() && !paths.config_file.exists() {
                writeln!(
                    out,
                    "{}: no file, the defaults are in effect ({} targets)",
                    paths.config_file.display(),
                    Config::default().target_count()
                )?;
                return Ok(());
            }
            let p = path.unwrap_or_else(|| paths.config_file.clone());
            if !p.exists() {
                bail!("{} does not exist", p.display());
            }
            let cfg = Config::load(&p)?;
            writeln!(out, "{}: ok ({} targets)", p.display(), cfg.target_count())?;
            for (key, note) in cfg.deprecations() {
                writeln!(out, "note: {key}: {note}")?;
            }
            Ok(())
        }
        ConfigAction::Init { force } => {
            let p = &paths.config_file;
            if p.exists() && !force {
                bail!("{} already exists (use --force to overwrite)", p.display());
            }
            write_atomically(p, waddleperf_engine::fsutil::Access::Private, |f| {
                f.write_all(DEFAULT_TOML.as_bytes())
            })?;
            writeln!(out, "wrote {}", p.display())?;
            Ok(())
        }
    }
}

/// Writes a whole file through a temporary one renamed into place, so a full
/// disk or a crash never leaves a half-written file.
fn write_atomically(
    path: &Path,
    access: waddleperf_engine::fsutil::Access,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    waddleperf_engine::fsutil::write_atomically(path, access, f)
        .with_context(|| format!("cannot write {}", path.display()))
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
