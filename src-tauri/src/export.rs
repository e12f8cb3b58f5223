//! Exporting the history from the window: a new file in the Downloads
//! folder, never one overwritten.

use crate::ipc_types::ExportFormat;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The Downloads folder: the one the desktop names (XDG user dirs, the
/// platform's known folder), else `~/Downloads`.
pub fn export_dir() -> PathBuf {
    match directories::UserDirs::new() {
        Some(u) => u
            .download_dir()
            .map(Path::to_owned)
            .unwrap_or_else(|| u.home_dir().join("Downloads")),
        None => std::env::temp_dir(),
    }
}

/// `waddleperf-YYYYMMDD-HHMMSS.csv` in `dir`, with `-2`, `-3`… when taken.
pub fn export_file(
    dir: &Path,
    format: ExportFormat,
    now: DateTime<Utc>,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ext = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
    };
    let stem = format!("waddleperf-{}", now.format("%Y%m%d-%H%M%S"));
    let mut path = dir.join(format!("{stem}.{ext}"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.{ext}"));
        n += 1;
    }
    Ok(path)
}

/// Writes the export through a temporary file, so a full disk leaves no
/// half file under the final name.
pub fn write_export(
    path: &Path,
    format: ExportFormat,
    rows: &[waddleperf_engine::Measurement],
) -> Result<(), String> {
    let tmp = path.with_extension("part");
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        match format {
            ExportFormat::Csv => waddleperf_engine::export::write_csv(&mut w, rows)?,
            ExportFormat::Json => waddleperf_engine::export::write_json_lines(&mut w, rows)?,
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_files_are_not_overwritten() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let now = Utc::now();
        let a = export_file(dir.path(), ExportFormat::Csv, now)?;
        write_export(&a, ExportFormat::Csv, &[])?;
        let b = export_file(dir.path(), ExportFormat::Csv, now)?;
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2.csv"));
        let text = std::fs::read_to_string(&a)?;
        assert!(text.starts_with("id,started_at,test_type,target"), "{text}");
        Ok(())
    }
}
