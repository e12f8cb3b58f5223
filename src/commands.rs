//! The commands that are more than a call into the engine: `run`, `info`
//! and `config`.

use crate::args::ConfigAction;
use crate::open::load_config;
use crate::print::print_table;
use crate::text;
use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Write};
use std::path::Path;
use waddleperf_engine::config::{Config, Paths, DEFAULT_TOML};
use waddleperf_engine::device::DeviceInfo;
use waddleperf_engine::model::Interim;
use waddleperf_engine::probe::bandwidth::Progress;
use waddleperf_engine::probe::{loaded, AnyProbe};
use waddleperf_engine::runtime::{Event, Runtime};
use waddleperf_engine::{export, version};

/// What `waddleperf run` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Tier 1, and tiers 2 and 3 when AutoPerf escalates.
    Suite,
    /// One tier's suite alone.
    Tier(u8),
    /// The bandwidth servers, download then upload.
    Speed,
}

/// Who runs the tests: this process's own runtime, or the agent that owns
/// the database (its run shown live through the control socket).
pub(crate) enum Runner {
    Local(Runtime),
    #[cfg(any(unix, windows))]
    Agent(waddleperf_engine::control::Client),
}

/// A runtime event shown on stderr while a run goes.
fn show_event(ev: &Event) {
    match ev {
        Event::Result {
            done,
            total,
            result,
            ..
        } => eprint!(
            "\r\x1b[K[{done}/{total}] {} {}",
            result.test_type,
            text::escape(&result.target)
        ),
        Event::BandwidthProgress {
            target, interim, ..
        } => eprint!("\r\x1b[K{}", live_line(target, interim)),
        _ => {}
    }
}

pub(crate) async fn run_cmd(runner: Runner, cfg: Config, json: bool, which: Which) -> Result<()> {
    if cfg.target_count() == 0 && which != Which::Speed {
        bail!("the suite is empty: add targets under [suite] in the configuration");
    }
    let interactive = !json && std::io::stderr().is_terminal();
    let (summary, progress) = match runner {
        Runner::Local(rt) => {
            let mut events = rt.subscribe();
            let progress = tokio::spawn(async move {
                while let Ok(ev) = events.recv().await {
                    if interactive {
                        show_event(&ev);
                    }
                }
            });
            let summary = match which {
                Which::Tier(t) => rt.run_tier(t).await?,
                Which::Suite => rt.run_now().await?,
                Which::Speed => rt.speed_test().await?,
            };
            (summary, Some(progress))
        }
        #[cfg(any(unix, windows))]
        Runner::Agent(mut c) => {
            use waddleperf_engine::control::Request;
            c.call(Request::Subscribe).await?;
            let req = match which {
                Which::Tier(tier) => Request::RunTier { tier },
                Which::Suite => Request::RunNow,
                Which::Speed => Request::SpeedTest,
            };
            let v = c
                .call_with_events(req, |e| {
                    if interactive {
                        if let Ok(ev) = serde_json::from_value::<Event>(e) {
                            show_event(&ev);
                        }
                    }
                })
                .await?;
            let summary: waddleperf_engine::runtime::RunSummary = serde_json::from_value(v)
                .context("the agent's run summary is not one this program reads")?;
            (std::sync::Arc::new(summary), None)
        }
    };
    if let Some(p) = progress {
        p.abort();
    }
    if interactive {
        eprint!("\r\x1b[K");
    }
    let mut out = std::io::stdout().lock();
    if json {
        export::write_json_lines(&mut out, &summary.results, &Default::default())?;
    } else {
        let mut out = text::Escaping(&mut out);
        print_table(&mut out, &summary.results)?;
        for tr in &summary.transitions {
            writeln!(out, "\nAutoPerf: {}", tr.message)?;
        }
        for m in &summary.results {
            if let (Some(g), Some(inc)) =
                (&m.metrics.bufferbloat_grade, m.metrics.latency_increase_ms)
            {
                writeln!(
                    out,
                    "\n{}: bufferbloat grade {g} (+{inc:.0} ms under load): {}",
                    m.target,
                    loaded::grade_words(g)
                )?;
            }
            if let Some(rpm) = m.metrics.rpm {
                writeln!(
                    out,
                    "{}: {rpm:.0} RPM ({} confidence): {}",
                    m.target,
                    m.metrics.rpm_confidence.as_deref().unwrap_or("?"),
                    waddleperf_engine::probe::speedtest::rpm::rpm_words(rpm)
                )?;
            }
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

/// A bandwidth test run from a terminal tells how it is going: its live
/// figures, for [`show_progress`] (not with `--json`, nor when stderr is
/// not a terminal).
pub(crate) fn live_progress(
    probe: &mut AnyProbe,
    json: bool,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<Interim>> {
    let AnyProbe::Bandwidth(b) = probe else {
        return None;
    };
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    b.progress = Some(Progress(tx));
    Some(rx)
}

/// Prints each live figure over the last, on stderr.
pub(crate) async fn show_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<Interim>) {
    while let Some(i) = rx.recv().await {
        eprint!("\r\x1b[K{}", live_line("", &i).trim_start());
    }
}

/// One line of a bandwidth test's live progress.
fn live_line(target: &str, i: &Interim) -> String {
    let mut parts = Vec::new();
    if let Some(d) = i.download_mbps {
        parts.push(format!("download {d:.1} Mbit/s"));
    }
    if let Some(u) = i.upload_mbps {
        parts.push(format!("upload {u:.1} Mbit/s"));
    }
    if let Some(l) = i.loaded_latency_ms {
        parts.push(format!("latency {l:.0} ms"));
    }
    format!(
        "{} {} ({:.0}/{} s)",
        text::escape(target),
        parts.join(", "),
        i.elapsed_s,
        i.seconds
    )
}

pub(crate) fn info_cmd(json: bool, paths: &Paths) -> Result<()> {
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

pub(crate) fn config_cmd(action: ConfigAction, paths: &Paths) -> Result<()> {
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
pub(crate) fn write_atomically(
    path: &Path,
    access: waddleperf_engine::fsutil::Access,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    waddleperf_engine::fsutil::write_atomically(path, access, f)
        .with_context(|| format!("cannot write {}", path.display()))
}
