//! `waddleperf update`: the release manifest (`[update]` in the
//! configuration) checked, and a newer build for this system downloaded
//! into the data folder's `updates/` and its signature verified
//! (docs/install.md#updates). Installing it is the person's step: the
//! command says how.

use crate::open::{load_config, tokio_rt};
use crate::text::Escaping;
use anyhow::Result;
use clap::Args;
use std::io::Write;
use waddleperf_engine::config::Paths;
use waddleperf_engine::update::{self, Checked, Updater};

#[derive(Args, Clone, Default)]
pub struct UpdateArgs {
    /// Only tell whether a newer release exists; download nothing
    #[arg(long)]
    check: bool,
    /// Print the outcome as JSON
    #[arg(long)]
    json: bool,
}

pub fn update(paths: &Paths, a: UpdateArgs) -> Result<()> {
    let cfg = load_config(paths)?;
    let updater = Updater::new(&cfg.update)?;
    let current = waddleperf_engine::version::VERSION;
    let dir = paths.data_dir.join("updates");
    let (checked, path) = tokio_rt()?.block_on(async {
        let checked = updater.check(current).await?;
        let path = match &checked {
            Checked::Available { release, .. } if !a.check => {
                Some(updater.download(release, &dir).await?)
            }
            _ => None,
        };
        Ok::<_, update::UpdateError>((checked, path))
    })?;
    // What the server sent is shown through the escaping writer.
    let mut out = Escaping(std::io::stdout().lock());
    if a.json {
        let mut v = serde_json::to_value(&checked)?;
        if let Some(p) = &path {
            v["path"] = serde_json::json!(p);
        }
        writeln!(out, "{v}")?;
        return Ok(());
    }
    match &checked {
        Checked::UpToDate { current, latest } => {
            writeln!(
                out,
                "WaddlePerf {current} is up to date (the newest release is {latest})."
            )?;
        }
        Checked::Available { current, release } => {
            writeln!(
                out,
                "WaddlePerf {} is available for {} (this is {current}).",
                release.version, release.platform
            )?;
            if let Some(notes) = release.notes.as_deref().filter(|n| !n.trim().is_empty()) {
                writeln!(out, "{notes}")?;
            }
            match &path {
                None => writeln!(out, "`waddleperf update` downloads and verifies it.")?,
                Some(p) => {
                    writeln!(out, "Downloaded and verified: {}", p.display())?;
                    writeln!(out, "{}", install_hint(p))?;
                }
            }
        }
    }
    Ok(())
}

/// How a verified download of this kind is installed.
fn install_hint(p: &std::path::Path) -> String {
    let name = p.display();
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "deb" => format!("Install it: sudo apt-get install {name}"),
        "rpm" => format!("Install it: sudo dnf install {name}"),
        "appimage" => format!(
            "Use it in place of the current AppImage: chmod +x {name}, quit WaddlePerf, then start the new one"
        ),
        "msi" | "exe" => format!("Install it: run {name}"),
        "dmg" => format!("Install it: open {name} and drag WaddlePerf to Applications"),
        _ => format!("Install it from {name}"),
    }
}
