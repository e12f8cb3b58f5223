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
use waddleperf_engine::runtime::Runtime;
use waddleperf_engine::{export, version};

pub(crate) async fn run_cmd(rt: Runtime, json: bool, tier: Option<u8>) -> Result<()> {
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
