//! `waddleperf db check` and `waddleperf db recover` (part of the CLI
//! binary): what is damaged in the history, and a new history made of what
//! can still be read.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use waddleperf_engine::agent::AgentLock;
use waddleperf_engine::config::Paths;
use waddleperf_engine::store;

#[derive(Subcommand)]
pub enum DbAction {
    /// Check every page and index of the database (read only); exits 1 when
    /// it is damaged
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Copy what can be read of a damaged database into a new file: results
    /// with their upload state, settings and sync state, events
    Recover {
        /// The new database [default: beside the old one, named after the
        /// time]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Then put the recovered file in the old one's place; the damaged
        /// file is kept beside it as `<name>.damaged-<time>` (needs the agent
        /// stopped)
        #[arg(long, conflicts_with = "output")]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(paths: &Paths, action: DbAction) -> Result<()> {
    let db = &paths.db_file;
    if !db.exists() {
        bail!(
            "{} does not exist: there is no history to check",
            db.display()
        );
    }
    let mut out = std::io::stdout().lock();
    match action {
        DbAction::Check { json } => {
            let r = store::check_file(db)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &r)?;
                writeln!(out)?;
            } else if r.ok {
                writeln!(out, "{}: ok", db.display())?;
            } else {
                writeln!(out, "{}: DAMAGED", db.display())?;
                for p in &r.problems {
                    writeln!(out, "  {}", crate::text::escape(p))?;
                }
                writeln!(
                    out,
                    "`waddleperf db recover --replace` copies what can be read into a new file and keeps this one beside it"
                )?;
            }
            if !r.ok {
                bail!("the database {} is damaged", db.display());
            }
            Ok(())
        }
        DbAction::Recover {
            output,
            replace,
            json,
        } => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let dst = output.unwrap_or_else(|| sibling(db, &format!("recovered-{stamp}")));
            // The agent must not write to either file meanwhile.
            let _lock = if replace {
                Some(AgentLock::acquire(&paths.data_dir).context(
                    "stop the agent (the desktop app or `waddleperf daemon`) before --replace",
                )?)
            } else {
                None
            };
            let rec = store::recover(db, &dst)?;
            let mut kept = None;
            if replace {
                let aside = sibling(db, &format!("damaged-{stamp}"));
                std::fs::rename(db, &aside)
                    .with_context(|| format!("cannot move {} aside", db.display()))?;
                for ext in ["-wal", "-shm"] {
                    let side = with_suffix(db, ext);
                    if side.exists() {
                        let _ = std::fs::rename(&side, with_suffix(&aside, ext));
                    }
                }
                std::fs::rename(&dst, db)
                    .with_context(|| format!("cannot move {} into place", dst.display()))?;
                kept = Some(aside);
            }
            if json {
                let mut v = serde_json::to_value(&rec)?;
                if let Some(k) = &kept {
                    v["output"] = serde_json::json!(db);
                    v["damaged_kept_at"] = serde_json::json!(k);
                }
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(
                out,
                "recovered {} result(s) ({} waiting to upload, {} refused, {} delivered, {} with an unknown upload outcome that the next sync settles), {} settings and sync entries, {} events",
                rec.results, rec.pending, rec.dead, rec.delivered, rec.outcome_unknown, rec.state_keys, rec.events
            )?;
            if rec.damaged_ranges > 0 || rec.undecodable > 0 {
                writeln!(
                    out,
                    "skipped {} damaged range(s) and {} unreadable row(s)",
                    rec.damaged_ranges, rec.undecodable
                )?;
            }
            match kept {
                Some(k) => writeln!(
                    out,
                    "{} is now the recovered history; the damaged file is kept at {}",
                    db.display(),
                    k.display()
                )?,
                None => writeln!(
                    out,
                    "written to {}: to use it, stop the agent and move it to {} (or run `waddleperf db recover --replace`)",
                    dst.display(),
                    db.display()
                )?,
            }
            Ok(())
        }
    }
}

/// `dir/name.db` → `dir/name.<tag>.db`.
fn sibling(db: &Path, tag: &str) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "waddleperf".into());
    let ext = db
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    db.with_file_name(format!("{stem}.{tag}{ext}"))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
