//! Networks: one row per distinct network a result was measured on, with
//! its latest context and the person's label.

use super::*;
use crate::netctx::NetworkContext;

/// The longest label kept (characters).
pub const MAX_LABEL_CHARS: usize = 64;

/// A network seen by this machine.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct KnownNetwork {
    pub id: String,
    /// The person's name for it ("Home", "Office").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub last_seen: DateTime<Utc>,
    /// Results measured on it.
    pub results: u64,
    /// The context as last seen.
    pub context: NetworkContext,
}

impl KnownNetwork {
    /// The label, else a description from the context.
    pub fn name(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| self.context.describe())
    }
}

/// A label as given, checked: trimmed, no control characters, bounded.
pub fn clean_label(label: &str) -> Result<Option<String>> {
    let l = label.trim();
    if l.is_empty() {
        return Ok(None);
    }
    if l.chars().any(char::is_control) {
        return Err(StoreError::Query(
            "a network label cannot hold control characters".into(),
        ));
    }
    if l.chars().count() > MAX_LABEL_CHARS {
        return Err(StoreError::Query(format!(
            "a network label is at most {MAX_LABEL_CHARS} characters"
        )));
    }
    Ok(Some(l.to_owned()))
}

impl Store {
    /// Records that the machine is on `c`'s network at `at`: a new row the
    /// first time, else the latest context and `last_seen`.
    pub fn upsert_network(&mut self, c: &NetworkContext, at: DateTime<Utc>) -> Result<()> {
        let json = serde_json::to_string(c).map_err(|e| StoreError::Decode {
            id: c.network_id.clone(),
            detail: e.to_string(),
        })?;
        self.conn.execute(
            "INSERT INTO networks (id, first_seen, last_seen, context) VALUES (?1, ?2, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET last_seen = MAX(last_seen, ?2), context = ?3",
            params![c.network_id, micros(&at), json],
        )?;
        Ok(())
    }

    /// Every network seen, the most recently seen first.
    pub fn networks(&self) -> Result<Vec<KnownNetwork>> {
        self.read_networks("", &[])
    }

    /// The networks a `WHERE` clause (empty: all) selects.
    fn read_networks(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<KnownNetwork>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT n.id, n.label, n.first_seen, n.last_seen, n.context,
                    (SELECT COUNT(*) FROM results r WHERE r.network_id = n.id)
             FROM networks n {filter} ORDER BY n.last_seen DESC, n.id"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, label, first, last, ctx, n) = row?;
            let context = serde_json::from_str(&ctx).map_err(|e| StoreError::Decode {
                id: id.clone(),
                detail: format!("network context: {e}"),
            })?;
            out.push(KnownNetwork {
                id,
                label,
                first_seen: from_micros(first),
                last_seen: from_micros(last),
                results: n.max(0) as u64,
                context,
            });
        }
        Ok(out)
    }

    /// Each network's name (label, else description) by id.
    pub fn network_names(&self) -> Result<crate::export::NetworkNames> {
        Ok(self
            .networks()?
            .into_iter()
            .map(|n| (n.id.clone(), n.name()))
            .collect())
    }

    /// The network id `which` names: `current` (read from the OS now), an
    /// id or a unique id prefix of at least 4 digits, or a label (any case).
    pub fn resolve_network(&self, which: &str) -> Result<String> {
        let w = which.trim();
        if w.eq_ignore_ascii_case("current") {
            return crate::netctx::capture()
                .map(|c| c.network_id)
                .map_err(|e| StoreError::Query(format!("--network current: {e}")));
        }
        // A whole id is taken as it is, seen here or not (no results then).
        if w.len() == 16 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(w.to_ascii_lowercase());
        }
        let all = self.networks()?;
        let by_label: Vec<_> = all
            .iter()
            .filter(|n| {
                n.label
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(w))
            })
            .collect();
        let by_prefix: Vec<_> = all
            .iter()
            .filter(|n| w.len() >= 4 && n.id.starts_with(&w.to_ascii_lowercase()))
            .collect();
        match (by_label.as_slice(), by_prefix.as_slice()) {
            ([one], _) | ([], [one]) => Ok(one.id.clone()),
            _ => {
                let known: Vec<String> = all
                    .iter()
                    .take(10)
                    .map(|n| format!("{} ({})", n.id, n.name()))
                    .collect();
                Err(StoreError::Query(format!(
                    "no single network is `{w}`: give `current`, a network id or a label{}",
                    if known.is_empty() {
                        "; no network has been recorded yet".to_owned()
                    } else {
                        format!(" (known: {})", known.join(", "))
                    }
                )))
            }
        }
    }

    /// One network by id.
    pub fn network(&self, id: &str) -> Result<Option<KnownNetwork>> {
        Ok(self
            .read_networks("WHERE n.id = ?1", &[&id])?
            .into_iter()
            .next())
    }

    /// Sets (or with an empty label, clears) a network's label; an error
    /// names an unknown id.
    pub fn set_network_label(&mut self, id: &str, label: &str) -> Result<Option<String>> {
        let label = clean_label(label)?;
        let n = self.conn.execute(
            "UPDATE networks SET label = ?2 WHERE id = ?1",
            params![id, label],
        )?;
        if n == 0 {
            return Err(StoreError::Query(format!(
                "no network `{id}` is known (see `waddleperf network list`)"
            )));
        }
        Ok(label)
    }
}
