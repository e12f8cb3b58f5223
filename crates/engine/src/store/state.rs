//! Small state documents (pause, AutoPerf, sync) and the event log.

use super::*;

/// The state document of this device's enrollment (written by sync; while
/// it exists, retention spares results not yet uploaded).
pub const ENROLLMENT: &str = "sync.enrollment";

impl Store {
    /// A state document, or `None` when it was never written.
    pub fn state_get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let raw: Option<String> = self
            .conn
            .query_row("SELECT value FROM state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        raw.map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Decode {
                id: format!("state `{key}`"),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// Writes a state document.
    pub fn state_delete(&mut self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM state WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn state_set<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| StoreError::Decode {
            id: format!("state `{key}`"),
            detail: e.to_string(),
        })?;
        self.conn.execute(
            "INSERT INTO state (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![key, text, micros(&Utc::now())],
        )?;
        Ok(())
    }

    /// Appends events to the event log; returns them with their ids.
    pub fn log_events(&mut self, events: &[NewEvent]) -> Result<Vec<StoredEvent>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(events.len());
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO events (at, kind, target, message, details) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in events {
                let at = e.at.trunc_subsecs(6);
                ins.execute(params![
                    micros(&at),
                    e.kind,
                    e.target,
                    e.message,
                    e.details.to_string()
                ])?;
                out.push(StoredEvent {
                    id: tx.last_insert_rowid(),
                    at,
                    kind: e.kind.clone(),
                    target: e.target.clone(),
                    message: e.message.clone(),
                    details: e.details.clone(),
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Logged events from `since` (inclusive) to `until` (exclusive), oldest
    /// first, at most `limit` of the newest.
    pub fn events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, kind, target, message, details FROM (
                 SELECT * FROM events WHERE at >= ?1 AND at < ?2 ORDER BY at DESC, id DESC LIMIT ?3
             ) ORDER BY at, id",
        )?;
        let rows = stmt.query_map(
            params![
                since.as_ref().map_or(i64::MIN, micros),
                until.as_ref().map_or(i64::MAX, micros),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                let details: String = r.get(5)?;
                Ok(StoredEvent {
                    id: r.get(0)?,
                    at: from_micros(r.get(1)?),
                    kind: r.get(2)?,
                    target: r.get(3)?,
                    message: r.get(4)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
