//! Results: writing them (with their outbox rows and roll-ups), reading
//! them back, retention.

use super::rollups::{roll_up, series_id, DAILY, HOURLY};
use super::*;

impl Store {
    /// Writes results (each with its outbox row and roll-up) in one
    /// transaction. A result whose id is already stored is skipped, so
    /// re-inserting is harmless. Returns how many were new.
    pub fn insert(&mut self, results: &[Measurement]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        // Series ids created in this transaction join the cache only once it commits.
        let mut new_ids = HashMap::new();
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO results (id, test_type, target, resolved_ip, started_at,
                    duration_ms, success, error_kind, error, tier, latency_ms, metrics, network_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut outbox = tx.prepare_cached(
                "INSERT INTO outbox (result_id, enqueued_at, next_attempt_at) VALUES (?1, ?2, ?2)",
            )?;
            let now = micros(&Utc::now());
            for m in results {
                let metrics =
                    serde_json::to_string(&m.metrics).map_err(|e| StoreError::Decode {
                        id: m.id.to_string(),
                        detail: e.to_string(),
                    })?;
                let id = m.id.to_string();
                let n = ins.execute(params![
                    id,
                    m.test_type.as_str(),
                    m.target,
                    m.resolved_ip,
                    micros(&m.started_at),
                    m.duration_ms,
                    m.success,
                    m.error_kind.map(ErrorKind::as_str),
                    m.error,
                    m.tier,
                    m.latency_ms,
                    metrics,
                    m.network_id,
                ])?;
                if n == 0 {
                    continue;
                }
                added += 1;
                outbox.execute(params![id, now])?;
                let sid = series_id(&tx, &self.series_ids, &mut new_ids, m)?;
                for grain in [HOURLY, DAILY] {
                    roll_up(&tx, grain, sid, m)?;
                }
            }
        }
        tx.commit()?;
        self.series_ids.extend(new_ids);
        Ok(added)
    }

    /// Results matching `q`, oldest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<Measurement>> {
        let mut sql = format!("SELECT {RESULT_COLUMNS} FROM results WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(t) = &q.target {
            sql.push_str(" AND target = ?");
            args.push(t.clone().into());
        }
        if let Some(t) = q.test_type {
            sql.push_str(" AND test_type = ?");
            args.push(t.as_str().to_owned().into());
        }
        if let Some(n) = &q.network {
            sql.push_str(" AND network_id = ?");
            args.push(n.clone().into());
        }
        if let Some(s) = q.since {
            sql.push_str(" AND started_at >= ?");
            args.push(micros(&s).into());
        }
        if let Some(u) = q.until {
            sql.push_str(" AND started_at < ?");
            args.push(micros(&u).into());
        }
        sql.push_str(" ORDER BY started_at DESC, id DESC");
        if let Some(l) = q.limit {
            sql.push_str(" LIMIT ?");
            args.push((l.min(i64::MAX as usize) as i64).into());
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_raw)?;
        let mut out = Vec::new();
        for raw in rows {
            out.push(raw?.decode()?);
        }
        out.reverse();
        Ok(out)
    }

    /// The newest `n` results, oldest first.
    pub fn recent(&self, n: usize) -> Result<Vec<Measurement>> {
        self.history(&HistoryQuery {
            limit: Some(n),
            ..Default::default()
        })
    }

    /// One result by id.
    pub fn get(&self, id: &uuid::Uuid) -> Result<Option<Measurement>> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {RESULT_COLUMNS} FROM results WHERE id = ?1"),
                [id.to_string()],
                row_to_raw,
            )
            .optional()?;
        raw.map(RawRow::decode).transpose()
    }

    /// Distinct (target, test type) pairs that have results, for pickers.
    pub fn targets(&self) -> Result<Vec<(String, TestType)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT target, test_type FROM results ORDER BY test_type, target")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (target, tt) = row?;
            let tt = tt.parse().map_err(|detail| StoreError::Decode {
                id: target.clone(),
                detail,
            })?;
            out.push((target, tt));
        }
        Ok(out)
    }

    /// Deletes results that started before `cutoff` (their outbox rows go with
    /// them) and keeps the roll-up exact: whole hours before the cutoff are
    /// dropped, the hour the cutoff falls in is recomputed from what remains.
    ///
    /// `spare_unsent`: results still waiting in the outbox (not yet on the
    /// server) are kept until they are delivered; set while the device is
    /// enrolled, so retention never loses a result before it syncs.
    pub fn purge_older_than(&mut self, cutoff: DateTime<Utc>, spare_unsent: bool) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM results WHERE started_at < ?1 AND (?2 = 0 OR id NOT IN
                 (SELECT result_id FROM outbox WHERE state = 'pending'))",
            params![micros(&cutoff), spare_unsent],
        )?;
        tx.execute("DELETE FROM events WHERE at < ?1", [micros(&cutoff)])?;
        let mut new_ids = HashMap::new();
        for grain in [HOURLY, DAILY] {
            let index = cutoff.timestamp().div_euclid(grain.secs);
            tx.execute(
                &format!("DELETE FROM {} WHERE {} <= ?1", grain.table, grain.unit),
                [index],
            )?;
            // Rebuild the unit the cut-off falls in from the results left in it.
            let mut sel = tx.prepare(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE started_at >= ?1 AND started_at < ?2"
            ))?;
            let rows = sel.query_map(
                [
                    index * grain.secs * 1_000_000,
                    (index + 1) * grain.secs * 1_000_000,
                ],
                row_to_raw,
            )?;
            for raw in rows {
                let m = raw?.decode()?;
                let sid = series_id(&tx, &self.series_ids, &mut new_ids, &m)?;
                roll_up(&tx, grain, sid, &m)?;
            }
        }
        tx.commit()?;
        self.series_ids.extend(new_ids);
        Ok(deleted)
    }

    /// Applies a retention of `days`.
    pub fn apply_retention(&mut self, days: u32, spare_unsent: bool) -> Result<usize> {
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
        self.purge_older_than(cutoff, spare_unsent)
    }

    pub fn stats(&self) -> Result<StoreStats> {
        let (results, newest): (i64, Option<i64>) =
            self.conn
                .query_row("SELECT COUNT(*), MAX(started_at) FROM results", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let (pending, dead): (i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(StoreStats {
            results: results.max(0) as u64,
            outbox_pending: pending.max(0) as u64,
            outbox_dead: dead.max(0) as u64,
            newest: newest.map(from_micros),
        })
    }
}

/// The `results` columns [`row_to_raw`] reads, in its order.
pub(super) const RESULT_COLUMNS: &str =
    "id, test_type, target, resolved_ip, started_at, duration_ms, \
     success, error_kind, error, tier, latency_ms, metrics, network_id";

pub(super) struct RawRow {
    pub(super) id: String,
    pub(super) test_type: String,
    pub(super) target: String,
    pub(super) resolved_ip: Option<String>,
    pub(super) started_at: i64,
    pub(super) duration_ms: f64,
    pub(super) success: bool,
    pub(super) error_kind: Option<String>,
    pub(super) error: Option<String>,
    pub(super) tier: u8,
    pub(super) latency_ms: Option<f64>,
    pub(super) metrics: String,
    pub(super) network_id: Option<String>,
}

pub(super) fn row_to_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        test_type: r.get(1)?,
        target: r.get(2)?,
        resolved_ip: r.get(3)?,
        started_at: r.get(4)?,
        duration_ms: r.get(5)?,
        success: r.get(6)?,
        error_kind: r.get(7)?,
        error: r.get(8)?,
        tier: r.get(9)?,
        latency_ms: r.get(10)?,
        metrics: r.get(11)?,
        network_id: r.get(12)?,
    })
}

impl RawRow {
    pub(super) fn decode(self) -> Result<Measurement> {
        let bad = |detail: String| StoreError::Decode {
            id: self.id.clone(),
            detail,
        };
        let id = uuid::Uuid::parse_str(&self.id).map_err(|e| bad(e.to_string()))?;
        let test_type = self.test_type.parse().map_err(bad)?;
        let error_kind = self
            .error_kind
            .as_deref()
            .map(str::parse::<ErrorKind>)
            .transpose()
            .map_err(bad)?;
        let metrics: Metrics =
            serde_json::from_str(&self.metrics).map_err(|e| bad(format!("metrics: {e}")))?;
        Ok(Measurement {
            id,
            test_type,
            target: self.target,
            resolved_ip: self.resolved_ip,
            started_at: from_micros(self.started_at),
            duration_ms: self.duration_ms,
            success: self.success,
            error_kind,
            error: self.error,
            tier: self.tier,
            latency_ms: self.latency_ms,
            metrics,
            network_id: self.network_id,
        })
    }
}
