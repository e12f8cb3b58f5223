//! CSV and JSON renderings of results, shared by `history`, `export` and the UI.

use crate::model::{rfc3339_utc, Measurement};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The two renderings a file export can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// The user's Downloads folder: the one the desktop names (XDG user dirs,
/// the platform's known folder), else `~/Downloads`.
pub fn downloads_dir() -> PathBuf {
    match directories::UserDirs::new() {
        Some(u) => u
            .download_dir()
            .map(Path::to_owned)
            .unwrap_or_else(|| u.home_dir().join("Downloads")),
        None => std::env::temp_dir(),
    }
}

/// A new file name in `dir`, `waddleperf-YYYYMMDD-HHMMSS.csv`, with `-2`,
/// `-3`… when taken: an export never overwrites one before it.
pub fn new_file(dir: &Path, format: Format, now: DateTime<Utc>) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let ext = format.extension();
    let stem = format!("waddleperf-{}", now.format("%Y%m%d-%H%M%S"));
    let mut path = dir.join(format!("{stem}.{ext}"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.{ext}"));
        n += 1;
    }
    Ok(path)
}

/// Writes `rows` to `path` through a temporary file, so a full disk leaves
/// no half file under the final name.
pub fn write_file(
    path: &Path,
    format: Format,
    rows: &[Measurement],
    names: &NetworkNames,
) -> io::Result<()> {
    let tmp = path.with_extension("part");
    let result = (|| -> io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = io::BufWriter::new(file);
        match format {
            Format::Csv => write_csv(&mut w, rows, names)?,
            Format::Json => write_json_lines(&mut w, rows, names)?,
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    })
}

/// Columns of the CSV export: the common fields, then every scalar figure
/// under its canonical name. List-valued figures (`answers`, `hops`,
/// `redirect_chain`) are written as JSON text in their column.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "started_at",
    "test_type",
    "target",
    "resolved_ip",
    "success",
    "error_kind",
    "error",
    "tier",
    "duration_ms",
    "latency_ms",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "total_ms",
    "status_code",
    "http_version",
    "bytes",
    "body_truncated",
    "throughput_mbps",
    "redirects",
    "redirect_chain",
    "tls_version",
    "cipher",
    "cert_subject",
    "cert_issuer",
    "cert_days_left",
    "ssh_banner",
    "sent",
    "received",
    "loss_pct",
    "min_ms",
    "mean_ms",
    "median_ms",
    "p95_ms",
    "max_ms",
    "stddev_ms",
    "jitter_ms",
    "server",
    "record_type",
    "rcode",
    "system_resolver_error",
    "answers",
    "hops",
    "reached",
    "path_mtu",
    "icmp_method",
    "download_mbps",
    "upload_mbps",
    "streams",
    "seconds",
    "loaded_latency_ms",
    "loaded_latency_up_ms",
    "loaded_latency_down_ms",
    "latency_increase_ms",
    "bufferbloat_grade",
    "retransmits",
    "out_of_order",
    "server_kind",
    "captive_portal",
    "network_id",
    "network",
];

/// Network names by network id (labels, else descriptions), for the
/// `network` column: [`crate::store::Store::network_names`].
pub type NetworkNames = std::collections::HashMap<String, String>;

/// Writes a header and one row per result.
pub fn write_csv<W: Write>(
    mut w: W,
    results: &[Measurement],
    names: &NetworkNames,
) -> io::Result<()> {
    writeln!(w, "{}", CSV_COLUMNS.join(","))?;
    for m in results {
        let metrics = serde_json::to_value(&m.metrics).unwrap_or(Value::Null);
        let row: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|&col| {
                let v = match col {
                    "id" => m.id.to_string(),
                    "started_at" => rfc3339_utc::format(&m.started_at),
                    "test_type" => m.test_type.to_string(),
                    "target" => m.target.clone(),
                    "resolved_ip" => m.resolved_ip.clone().unwrap_or_default(),
                    "success" => m.success.to_string(),
                    "error_kind" => m.error_kind.map(|k| k.to_string()).unwrap_or_default(),
                    "error" => m.error.clone().unwrap_or_default(),
                    "tier" => m.tier.to_string(),
                    "duration_ms" => m.duration_ms.to_string(),
                    "latency_ms" => m.latency_ms.map(|v| v.to_string()).unwrap_or_default(),
                    "network_id" => m.network_id.clone().unwrap_or_default(),
                    "network" => m
                        .network_id
                        .as_ref()
                        .and_then(|id| names.get(id).cloned())
                        .unwrap_or_default(),
                    other => match metrics.get(other) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    },
                };
                csv_field(&v)
            })
            .collect();
        writeln!(w, "{}", row.join(","))?;
    }
    Ok(())
}

/// Writes one JSON object per line; with the network's name as `network`
/// where it has one.
pub fn write_json_lines<W: Write>(
    mut w: W,
    results: &[Measurement],
    names: &NetworkNames,
) -> io::Result<()> {
    for m in results {
        match m.network_id.as_ref().and_then(|id| names.get(id)) {
            Some(name) => {
                let mut v = serde_json::to_value(m)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("network".into(), Value::String(name.clone()));
                }
                serde_json::to_writer(&mut w, &v)?;
            }
            None => serde_json::to_writer(&mut w, m)?,
        }
        writeln!(w)?;
    }
    Ok(())
}

/// RFC 4180 quoting, and a leading `'` for cells a spreadsheet would run as a
/// formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestType;

    #[test]
    fn export_files_are_new_each_time() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let now = Utc::now();
        let a = new_file(dir.path(), Format::Csv, now)?;
        write_file(&a, Format::Csv, &[], &NetworkNames::new())?;
        let b = new_file(dir.path(), Format::Csv, now)?;
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2.csv"));
        let text = std::fs::read_to_string(&a)?;
        assert!(text.starts_with("id,started_at,test_type,target"), "{text}");
        // A folder that cannot hold the file: an error naming it, no part file.
        let bad = dir.path().join("missing").join("x.json");
        let e = write_file(&bad, Format::Json, &[], &NetworkNames::new())
            .err()
            .map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("missing")), "{e:?}");
        Ok(())
    }

    #[test]
    fn csv_quotes_and_keeps_columns() {
        let mut m = Measurement::begin(TestType::Http, "https://a/?x=1,2");
        m.metrics.status_code = Some(200);
        m.metrics.cert_subject = Some("CN=\"q\"".into());
        m.error = Some("=cmd()".into());
        let mut out = Vec::new();
        write_csv(&mut out, &[m], &NetworkNames::new()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap().split(',').count(), CSV_COLUMNS.len());
        let row = lines.next().unwrap();
        assert!(row.contains("\"https://a/?x=1,2\""));
        assert!(row.contains("\"CN=\"\"q\"\"\""));
        assert!(row.contains("'=cmd()"));
        assert!(row.contains(",200,"));
        assert_eq!(csv_field("-1.5"), "-1.5", "negative numbers stay numbers");
    }
}
