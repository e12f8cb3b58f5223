//! The outbox: one row per result still to be uploaded, drained by the sync
//! worker. Delivered rows are deleted, so nothing is sent twice; refused ones
//! become dead letters, visible and retryable; every attempt is marked
//! `uncertain` before it starts, so an attempt cut short by a crash or a
//! dropped connection is known to be ambiguous afterwards.

use super::{from_micros, micros, row_to_raw, Result, Store, RESULT_COLUMNS};
use crate::model::Measurement;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use uuid::Uuid;

/// A result due for upload.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub result: Measurement,
    /// Attempts made before this one.
    pub attempts: u32,
    /// An earlier attempt may have reached the server (no answer came).
    pub uncertain: bool,
}

/// A result the server refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub result_id: Uuid,
    pub test_type: String,
    pub target: String,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub started_at: DateTime<Utc>,
    pub attempts: u32,
    /// The server's message.
    pub error: String,
}

impl Store {
    /// Pending rows whose next attempt is due at `now`, oldest result first.
    pub fn outbox_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS}, o.attempts, o.uncertain FROM outbox o
             JOIN results r ON r.id = o.result_id
             WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
             ORDER BY r.started_at, r.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![micros(&now), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((row_to_raw(r)?, r.get::<_, i64>(13)?, r.get::<_, bool>(14)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (raw, attempts, uncertain) = row?;
            out.push(OutboxItem {
                result: raw.decode()?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                uncertain,
            });
        }
        Ok(out)
    }

    /// The earliest next attempt among pending rows (`None`: nothing pending).
    pub fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<i64> = self.conn.query_row(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(t.map(from_micros))
    }

    /// Marks an attempt as started (written before the request goes out).
    pub fn outbox_attempt(&mut self, id: &Uuid) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, uncertain = 1 WHERE result_id = ?1",
            [id.to_string()],
        )?;
        Ok(())
    }

    /// The server has the result: the row goes.
    pub fn outbox_delivered(&mut self, id: &Uuid) -> Result<()> {
        self.conn
            .execute("DELETE FROM outbox WHERE result_id = ?1", [id.to_string()])?;
        Ok(())
    }

    /// Tries again at `next`. `uncertain`: whether the attempt may have
    /// reached the server.
    pub fn outbox_defer(
        &mut self,
        id: &Uuid,
        next: DateTime<Utc>,
        error: &str,
        uncertain: bool,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3, uncertain = ?4
             WHERE result_id = ?1",
            params![id.to_string(), micros(&next), error, uncertain],
        )?;
        Ok(())
    }

    /// The server refused the result: a dead letter with its message.
    pub fn outbox_dead(&mut self, id: &Uuid, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'dead', last_error = ?2, uncertain = 0 WHERE result_id = ?1",
            params![id.to_string(), error],
        )?;
        Ok(())
    }

    /// The dead letters, oldest result first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.test_type, r.target, r.started_at, o.attempts, COALESCE(o.last_error, '')
             FROM outbox o JOIN results r ON r.id = o.result_id
             WHERE o.state = 'dead' ORDER BY r.started_at, r.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, test_type, target, started, attempts, error) = row?;
            out.push(DeadLetter {
                result_id: Uuid::parse_str(&id).map_err(|e| super::StoreError::Decode {
                    id: id.clone(),
                    detail: e.to_string(),
                })?,
                test_type,
                target,
                started_at: from_micros(started),
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                error,
            });
        }
        Ok(out)
    }

    /// Puts dead letters back in the queue (all of them, or those listed);
    /// returns how many.
    pub fn retry_dead(&mut self, ids: Option<&[Uuid]>, now: DateTime<Utc>) -> Result<usize> {
        let sql = "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1
                   WHERE state = 'dead'";
        match ids {
            None => Ok(self.conn.execute(sql, [micros(&now)])?),
            Some(ids) => {
                let tx = self.conn.transaction()?;
                let mut n = 0;
                {
                    let mut stmt = tx.prepare(&format!("{sql} AND result_id = ?2"))?;
                    for id in ids {
                        n += stmt.execute(params![micros(&now), id.to_string()])?;
                    }
                }
                tx.commit()?;
                Ok(n)
            }
        }
    }
}
