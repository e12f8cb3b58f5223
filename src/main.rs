//! `waddleperf`: the command-line front end of the engine.
//!
//! Exit codes: 0 when the tool did its work (even if tests failed), 1 when it
//! could not (bad configuration, unusable database, unwritable output), 2 for
//! usage errors.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use waddleperf_engine::agent::AgentLock;
use waddleperf_engine::config::Paths;
use waddleperf_engine::export;
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::store::Store;

mod args;
mod commands;
mod daemon;
mod db_cli;
mod open;
mod print;
mod serve;
mod sync_cli;
mod test_args;
mod text;
mod tools_cli;
mod update_cli;

use args::{parse_when, Cli, Command, ExportFormat};
use commands::{config_cmd, info_cmd, run_cmd, write_atomically, Runner, Which};
use open::{load_config, open_existing_store, open_runtime, open_store, tokio_rt};
use print::{print_events, print_status, print_table, print_test};

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

/// `--network`'s network id: `current`, an id, a prefix or a label; a name
/// that matches none is a usage error naming the networks known.
fn network_filter(store: &Store, which: Option<&str>) -> Result<Option<String>> {
    match which {
        None => Ok(None),
        Some(w) => store
            .resolve_network(w)
            .map(Some)
            .map_err(|e| usage(anyhow::Error::new(e).context(format!("--network {w}")))),
    }
}

/// stderr logging of the one-shot commands: errors only unless `-v`, since
/// the command's own output already says what matters (a run's connectivity
/// and tier changes are printed under its table).
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
            let agent = AgentLock::holder(&paths.data_dir);
            let (status, sync) = tokio_rt()?.block_on(async {
                // The agent answers when it runs; else the shared database.
                #[cfg(any(unix, windows))]
                if let Some(mut c) = open::agent(&paths).await {
                    use waddleperf_engine::control::Request;
                    let status = serde_json::from_value(c.call(Request::Status).await?)?;
                    let sync = serde_json::from_value(c.call(Request::Account).await?)?;
                    return Ok::<_, anyhow::Error>((status, sync));
                }
                let cfg = load_config(&paths)?;
                let store = open_existing_store(&paths)?;
                let rt = Runtime::new(store, cfg);
                let syncer = waddleperf_engine::sync::Syncer::new(rt.clone(), &paths.data_dir);
                Ok::<_, anyhow::Error>((rt.status().await?, syncer.status().await?))
            })?;
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
            tokio_rt()?.block_on(async {
                #[cfg(any(unix, windows))]
                if let Some(mut c) = open::agent(&paths).await {
                    use waddleperf_engine::control::Request;
                    c.call(if pause {
                        Request::Pause
                    } else {
                        Request::Resume
                    })
                    .await?;
                    return Ok::<_, anyhow::Error>(());
                }
                let rt = open_runtime(&paths, load_config(&paths)?)?;
                if pause {
                    rt.pause().await?
                } else {
                    rt.resume().await?
                }
                Ok::<(), anyhow::Error>(())
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
        Command::Serve(a) => serve::run(a),
        Command::Doctor { json } => {
            if tools_cli::doctor(json)? {
                Ok(())
            } else {
                bail!("no ICMP method works here: ping, traceroute and path MTU tests will fail (see above)")
            }
        }
        Command::Info { json } => info_cmd(json, &paths),
        Command::Network { action, json } => tools_cli::network(&paths, action, json),
        Command::Diagnose { json, server } => {
            let server = match server {
                Some(s) => {
                    let t = s.trim().to_ascii_lowercase();
                    if !(t.starts_with("http://") || t.starts_with("https://")) {
                        return Err(usage(anyhow::anyhow!(
                            "--server {s}: expected an http:// or https:// URL"
                        )));
                    }
                    Some(s.trim().to_owned())
                }
                None => load_config(&paths)
                    .ok()
                    .and_then(|c| waddleperf_engine::diag::clock_server(&c)),
            };
            let report = tokio_rt()?.block_on(waddleperf_engine::diag::collect(server.as_deref()));
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write!(text::Escaping(&mut out), "{}", report.to_text())?;
            }
            Ok(())
        }
        Command::Update(a) => update_cli::update(&paths, a),
        Command::Run { json, tier, speed } => {
            let cfg = load_config(&paths)?;
            let what = match (speed, tier) {
                (true, _) => Which::Speed,
                (false, Some(t)) => Which::Tier(t),
                (false, None) => Which::Suite,
            };
            tokio_rt()?.block_on(async {
                // A running agent runs it (one writer to the database), shown
                // live here; else this process does.
                #[cfg(any(unix, windows))]
                if let Some(c) = open::agent(&paths).await {
                    return run_cmd(Runner::Agent(c), cfg, json, what).await;
                }
                let rt = open_runtime(&paths, cfg.clone())?;
                run_cmd(Runner::Local(rt), cfg, json, what).await
            })
        }
        Command::Test { kind } => {
            let cfg = load_config(&paths)?;
            let (spec, common) = test_args::spec(kind, &cfg).map_err(usage)?;
            let mut probe = waddleperf_engine::probe::build(spec, 1);
            let live = commands::live_progress(&mut probe, common.json);
            let store = if common.no_store {
                Store::open_in_memory()?
            } else {
                open_store(&paths)?
            };
            let rt = Runtime::new(store, cfg);
            tokio_rt()?.block_on(async {
                let live = live.map(|rx| tokio::spawn(commands::show_progress(rx)));
                let m = rt.test(&probe, !common.no_store).await?;
                if let Some(task) = live {
                    task.abort();
                    eprint!("\r\x1b[K");
                }
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
            let mut query = args.filter.to_query().map_err(usage)?;
            let store = open_existing_store(&paths)?;
            query.network = network_filter(&store, args.filter.network.as_deref())?;
            let results = store.history(&query)?;
            let names = store.network_names()?;
            let mut out = std::io::stdout().lock();
            if args.json {
                export::write_json_lines(&mut out, &results, &names)?;
            } else if args.csv {
                export::write_csv(&mut out, &results, &names)?;
            } else {
                let mut out = text::Escaping(&mut out);
                if let Some(id) = &query.network {
                    let name = names.get(id).map(String::as_str).unwrap_or("not seen yet");
                    writeln!(out, "network {id}: {name}\n")?;
                }
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
            let mut query = filter.to_query().map_err(usage)?;
            let store = open_existing_store(&paths)?;
            query.network = network_filter(&store, filter.network.as_deref())?;
            let results = store.history(&query)?;
            let names = store.network_names()?;
            let write = |w: &mut dyn Write| -> std::io::Result<()> {
                match format {
                    ExportFormat::Csv => export::write_csv(w, &results, &names),
                    ExportFormat::Json => export::write_json_lines(w, &results, &names),
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
