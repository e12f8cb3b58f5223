//! Damage: checking a database file without changing it, and copying what
//! can still be read out of a damaged one into a new, whole database.
//!
//! Recovery reads the damaged file read-only. Results are read in rowid order;
//! where SQLite reports damage the reader skips forward to the first rowid
//! it can reach again (found by doubling, then bisecting), so one damaged page
//! costs the rows on it and no more. Each result keeps its upload state: a
//! pending or dead outbox row is copied as it was; a result whose outbox
//! lookup succeeded and found nothing had been delivered; one whose lookup
//! failed is queued as "outcome unknown", which the sync worker settles by
//! reading back, so nothing is sent twice. Roll-ups are rebuilt from the
//! recovered results; settings and sync state (`state`) and the event log are
//! copied where readable.

use super::{RawRow, Result, Store, StoreError, RESULT_COLUMNS};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `PRAGMA integrity_check` says of a file.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityReport {
    pub path: PathBuf,
    pub ok: bool,
    /// SQLite's findings (at most 100), empty when whole.
    pub problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i32>,
}

/// What a recovery copied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    pub output: PathBuf,
    /// Results copied.
    pub results: u64,
    /// Rows that were reached but could not be decoded.
    pub undecodable: u64,
    /// Places where damage made the reader skip forward.
    pub damaged_ranges: u64,
    /// Of the copied results: still waiting to upload, refused (dead),
    /// delivered already, and with an upload outcome that could not be read
    /// (queued, settled by reading back).
    pub pending: u64,
    pub dead: u64,
    pub delivered: u64,
    pub outcome_unknown: u64,
    pub state_keys: u64,
    pub events: u64,
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Checks every page and index of the file at `path`; never writes to it.
pub fn check_file(path: &Path) -> Result<IntegrityReport> {
    if !path.exists() {
        return Err(StoreError::Query(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let conn = open_read_only(path)?;
    let mut report = IntegrityReport {
        path: path.to_owned(),
        ok: false,
        problems: Vec::new(),
        schema_version: None,
    };
    match conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i32>(0)) {
        Ok(v) => report.schema_version = Some(v),
        Err(e) => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
    }
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA integrity_check(100)")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        });
    match found {
        Ok(rows) => report.problems = rows.into_iter().filter(|r| r != "ok").collect(),
        Err(e) => report.problems.push(e.to_string()),
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// Whether a seek to the first row of `table` at or after `rowid` works.
fn reachable(conn: &Connection, table: &str, rowid: i64) -> bool {
    conn.query_row(
        &format!("SELECT rowid FROM {table} WHERE rowid >= ?1 ORDER BY rowid LIMIT 1"),
        [rowid],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .is_ok()
}

/// The first rowid after the damage met at `from` from which reading works
/// again (`None`: nothing further can be reached).
fn skip_damage(conn: &Connection, table: &str, from: i64, last: Option<i64>) -> Option<i64> {
    let end = last.unwrap_or(i64::MAX);
    let (mut bad, mut step) = (from, 1i64);
    let good = loop {
        let probe = bad.saturating_add(step);
        if probe > end {
            return None;
        }
        if reachable(conn, table, probe) {
            break probe;
        }
        bad = probe;
        step = step.saturating_mul(2);
    };
    // Bisect between the last unreachable rowid and the reachable one.
    let (mut lo, mut hi) = (bad, good);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reachable(conn, table, mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Reads every reachable row of a rowid table in order, handing each to `f`.
/// Returns how many damaged ranges were skipped.
fn scan<F>(conn: &Connection, table: &str, columns: &str, mut f: F) -> u64
where
    F: FnMut(&rusqlite::Row<'_>),
{
    let last: Option<i64> = conn
        .query_row(&format!("SELECT max(rowid) FROM {table}"), [], |r| r.get(0))
        .ok()
        .flatten();
    let sql = format!("SELECT rowid, {columns} FROM {table} WHERE rowid >= ?1 ORDER BY rowid");
    let mut next = i64::MIN;
    let mut damaged = 0;
    loop {
        let outcome = conn.prepare(&sql).and_then(|mut stmt| {
            let mut rows = stmt.query([next])?;
            while let Some(row) = rows.next()? {
                let rowid: i64 = row.get(0)?;
                f(row);
                next = rowid.saturating_add(1);
            }
            Ok(())
        });
        match outcome {
            Ok(()) => return damaged,
            Err(_) => {
                damaged += 1;
                match skip_damage(conn, table, next, last) {
                    Some(n) => next = n,
                    None => return damaged,
                }
            }
        }
    }
}

/// Copies what can be read of the database at `src` into a new database at
/// `dst` (which must not exist). `src` is only read.
pub fn recover(src: &Path, dst: &Path) -> Result<Recovery> {
    if dst.exists() {
        return Err(StoreError::Query(format!(
            "{} exists already: choose a new file for the recovered history",
            dst.display()
        )));
    }
    let old = open_read_only(src)?;
    let mut new = Store::open(dst)?;
    let mut rec = Recovery {
        output: dst.to_owned(),
        ..Recovery::default()
    };

    // Results, in batches, each with its roll-ups.
    let mut batch = Vec::new();
    let mut insert_error = None;
    let (mut copied, mut undecodable) = (0u64, 0u64);
    // A file from before schema version 6 has no network column.
    let columns = if old
        .prepare("SELECT network_id FROM results LIMIT 0")
        .is_ok()
    {
        RESULT_COLUMNS.to_owned()
    } else {
        RESULT_COLUMNS.replace(", network_id", ", NULL")
    };
    let damaged = scan(&old, "results", &columns, |row| {
        // Column 0 is the rowid; the result's columns follow.
        let raw = (|| {
            Ok::<_, rusqlite::Error>(RawRow {
                id: row.get(1)?,
                test_type: row.get(2)?,
                target: row.get(3)?,
                resolved_ip: row.get(4)?,
                started_at: row.get(5)?,
                duration_ms: row.get(6)?,
                success: row.get(7)?,
                error_kind: row.get(8)?,
                error: row.get(9)?,
                tier: row.get(10)?,
                latency_ms: row.get(11)?,
                metrics: row.get(12)?,
                network_id: row.get(13)?,
            })
        })();
        match raw.ok().and_then(|r| r.decode().ok()) {
            Some(m) => batch.push(m),
            None => undecodable += 1,
        }
        if batch.len() >= 500 && insert_error.is_none() {
            if let Err(e) = new.insert(&batch) {
                insert_error = Some(e);
            }
            copied += batch.len() as u64;
            batch.clear();
        }
    });
    if let Some(e) = insert_error {
        return Err(e);
    }
    new.insert(&batch)?;
    rec.results = copied + batch.len() as u64;
    rec.undecodable = undecodable;
    rec.damaged_ranges += damaged;

    // Upload state, result by result.
    let ids: Vec<String> = {
        let mut s = new.conn.prepare("SELECT id FROM results")?;
        let rows = s.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let tx = new.conn.transaction()?;
    {
        let mut look = old.prepare(
            "SELECT enqueued_at, attempts, next_attempt_at, last_error, state, uncertain \
             FROM outbox WHERE result_id = ?1",
        );
        let mut set = tx.prepare(
            "UPDATE outbox SET enqueued_at = ?2, attempts = ?3, next_attempt_at = ?4, \
             last_error = ?5, state = ?6, uncertain = ?7 WHERE result_id = ?1",
        )?;
        let mut unknown = tx.prepare("UPDATE outbox SET uncertain = 1 WHERE result_id = ?1")?;
        let mut delivered = tx.prepare("DELETE FROM outbox WHERE result_id = ?1")?;
        for id in &ids {
            // Err: the lookup itself met damage, so the outcome is unknown.
            let found = match look.as_mut() {
                Ok(stmt) => stmt
                    .query_row([id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })
                    .optional()
                    .map_err(drop),
                Err(_) => Err(()),
            };
            match found {
                Ok(Some((enq, attempts, next, err, state, uncertain))) => {
                    set.execute(rusqlite::params![
                        id, enq, attempts, next, err, state, uncertain
                    ])?;
                    if state == "dead" {
                        rec.dead += 1;
                    } else {
                        rec.pending += 1;
                    }
                }
                Ok(None) => {
                    delivered.execute([id])?;
                    rec.delivered += 1;
                }
                Err(_) => {
                    unknown.execute([id])?;
                    rec.outcome_unknown += 1;
                }
            }
        }
    }
    tx.commit()?;

    // The networks and their labels, where readable.
    if let Ok(mut s) = old.prepare("SELECT id, label, first_seen, last_seen, context FROM networks")
    {
        if let Ok(mut rows) = s.query([]) {
            while let Ok(Some(r)) = rows.next() {
                let row: rusqlite::Result<(String, Option<String>, i64, i64, String)> =
                    (|| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))();
                if let Ok((id, label, first, last, ctx)) = row {
                    new.conn.execute(
                        "INSERT OR REPLACE INTO networks (id, label, first_seen, last_seen, context)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        rusqlite::params![id, label, first, last, ctx],
                    )?;
                }
            }
        }
    }

    // Settings and sync state, and the event log, where readable.
    if let Ok(mut s) = old.prepare("SELECT key, value, updated_at FROM state") {
        if let Ok(mut rows) = s.query([]) {
            while let Ok(Some(r)) = rows.next() {
                let row: rusqlite::Result<(String, String, i64)> =
                    (|| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))();
                if let Ok((k, v, at)) = row {
                    new.conn.execute(
                        "INSERT OR REPLACE INTO state (key, value, updated_at) VALUES (?1, ?2, ?3)",
                        rusqlite::params![k, v, at],
                    )?;
                    rec.state_keys += 1;
                }
            }
        }
    }
    let mut events = Vec::new();
    let damaged = scan(&old, "events", "at, kind, target, message, details", |r| {
        let row: rusqlite::Result<(i64, String, Option<String>, String, String)> =
            (|| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))();
        if let Ok(e) = row {
            events.push(e);
        }
    });
    rec.damaged_ranges += damaged;
    let tx = new.conn.transaction()?;
    for (at, kind, target, message, details) in &events {
        tx.execute(
            "INSERT INTO events (at, kind, target, message, details) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![at, kind, target, message, details],
        )?;
    }
    tx.commit()?;
    rec.events = events.len() as u64;
    Ok(rec)
}
