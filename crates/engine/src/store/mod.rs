//! The local history: SQLite through rusqlite (bundled), one writer.
//!
//! - Migrations are embedded and applied in order; `PRAGMA user_version` holds
//!   the schema version and `PRAGMA application_id` marks the file as ours, so a
//!   newer-schema or foreign database is refused with a clear error and never
//!   overwritten.
//! - WAL, `synchronous=NORMAL`, `busy_timeout`, `foreign_keys=ON`.
//! - Every result is written with its outbox row and its roll-up updates in one
//!   transaction: a crash leaves either all of them or none.

use crate::model::{ErrorKind, Measurement, Metrics, TestType, CHART_METRICS};
use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod outbox;
mod repair;
pub use outbox::{DeadLetter, OutboxItem};
pub use repair::{check_file, recover, IntegrityReport, Recovery};

/// `PRAGMA application_id` of a WaddlePerf database ("WPRF").
pub const APPLICATION_ID: i32 = 0x5750_5246;

/// Embedded migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_state_events.sql"),
    include_str!("migrations/0003_outbox_attempts.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the database file {path}: {source}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database {path} is corrupt or not a database ({detail}); it was left untouched: `waddleperf db check` tells what is damaged, `waddleperf db recover` copies what can be read into a new file")]
    Corrupt { path: PathBuf, detail: String },
    /// SQLite found damage while reading or writing an open database.
    #[error("the database is corrupt ({0}); nothing more is written to it: `waddleperf db check` tells what is damaged, `waddleperf db recover` copies what can be read into a new file")]
    CorruptData(#[source] rusqlite::Error),
    #[error("the database {path} belongs to another application (application_id {found:#x}); it was left untouched")]
    Foreign { path: PathBuf, found: i32 },
    #[error("the database {path} has schema version {found}, newer than this version of WaddlePerf understands ({supported}); upgrade WaddlePerf — the file was left untouched")]
    NewerSchema {
        path: PathBuf,
        found: i32,
        supported: i32,
    },
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        version: i32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database is full or the disk is out of space: {0}")]
    Full(#[source] rusqlite::Error),
    #[error("disk I/O error on the database (is the disk full, or its directory read-only?): {0}")]
    Io(#[source] rusqlite::Error),
    #[error("database error: {0}")]
    Sql(#[source] rusqlite::Error),
    #[error("stored result {id} cannot be read: {detail}")]
    Decode { id: String, detail: String },
    #[error("invalid query: {0}")]
    Query(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e),
            Some(rusqlite::ErrorCode::SystemIoFailure) => StoreError::Io(e),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StoreError::CorruptData(e)
            }
            _ => StoreError::Sql(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What to read back from the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub target: Option<String>,
    pub test_type: Option<TestType>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keep only the newest `limit` results (still returned oldest first).
    pub limit: Option<usize>,
}

/// A bucketed chart query.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Targets to include; empty means every target.
    pub targets: Vec<String>,
    pub test_type: Option<TestType>,
    /// One of [`CHART_METRICS`].
    pub metric: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Bucket width in seconds. Buckets are aligned to multiples of the width
    /// since the epoch; buckets overlapping `[since, until)` are returned whole.
    pub bucket_secs: i64,
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    #[serde(with = "crate::model::rfc3339_utc")]
    pub start: DateTime<Utc>,
    /// Results in the bucket.
    pub count: u64,
    /// Of which failed.
    pub failed: u64,
    /// Values of the metric in the bucket (results that reported it).
    pub n: u64,
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    /// Mean loss over the bucket's results: a result's own `loss_pct` where it
    /// has one (ICMP, UDP), otherwise 0 for a success and 100 for a failure.
    pub loss_pct: Option<f64>,
}

/// One target's buckets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub target: String,
    pub test_type: TestType,
    pub metric: String,
    pub buckets: Vec<Bucket>,
}

/// An event to log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    /// `escalated`, `deescalated`, `health_changed`, `connectivity_lost`,
    /// `connectivity_restored`, `paused`, `resumed`.
    pub kind: String,
    pub target: Option<String>,
    pub message: String,
    pub details: serde_json::Value,
}

/// A logged event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(with = "crate::model::rfc3339_utc")]
    pub at: DateTime<Utc>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub message: String,
    pub details: serde_json::Value,
}

/// Counts for `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    pub results: u64,
    pub outbox_pending: u64,
    pub outbox_dead: u64,
    #[serde(with = "crate::model::opt_rfc3339_utc")]
    pub newest: Option<DateTime<Utc>>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// `series.id` by (target, test type), filled as series are met.
    series_ids: HashMap<(String, TestType), i64>,
}

fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema
    /// up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        // The history may hold URLs with credentials: the file is the
        // user's alone (SQLite gives its -wal and -shm files the same mode).
        crate::fsutil::create_private_file(path).map_err(|source| StoreError::CreateFile {
            path: path.to_owned(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            series_ids: HashMap::new(),
        };
        store.init().map_err(|e| match e {
            StoreError::Sql(ref inner)
            | StoreError::CorruptData(ref inner)
            | StoreError::Migration {
                source: ref inner, ..
            } if is_corruption(inner) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: inner.to_string(),
            },
            other => other,
        })?;
        // Damage inside a page is not seen until that page is read: check the
        // b-trees once on open, so a damaged file is refused before anything
        // is written to it (about 2 ms per MB, see docs/benchmarks.md).
        let damage = store.quick_check(1)?;
        if let Some(first) = damage.into_iter().next() {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: crate::model::excerpt(first.trim(), 300),
            });
        }
        Ok(store)
    }

    /// An in-memory store (tests, benchmarks, `--no-store` runs).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            series_ids: HashMap::new(),
        };
        store.init()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init(&mut self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        // Reading the header first makes a non-database file fail here. The
        // three reads share one snapshot, so another process migrating the
        // file meanwhile is seen before or after, never half-way.
        let (version, app_id, has_tables) = {
            let tx = self.conn.transaction()?;
            let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let app_id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let has_tables: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            (version, app_id, has_tables)
        };
        if app_id != APPLICATION_ID && (app_id != 0 || has_tables) {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                found: app_id,
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if self.path != Path::new(":memory:") {
            self.wal()?;
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        if version < SCHEMA_VERSION {
            self.migrate()?;
        }
        Ok(())
    }

    /// Switches a new file to WAL (a file already in WAL answers at once).
    /// Changing the journal mode needs the file to itself, and SQLite answers
    /// "busy" without waiting while another connection reads it, as happens
    /// when several processes open a new database together: retried for up
    /// to the busy timeout.
    fn wal(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5 + u64::from(fastrand::u8(..20))));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Applies the missing migrations under the database's write lock, so
    /// that processes opening a new file at once migrate it exactly once:
    /// the one that gets the lock first migrates, the others wait (busy
    /// timeout), then find the schema current and apply nothing.
    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let target = i as i32 + 1;
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "application_id", APPLICATION_ID))
                .and_then(|_| tx.pragma_update(None, "user_version", target))
                .map_err(|source| StoreError::Migration {
                    version: target,
                    source,
                })?;
        }
        tx.commit().map_err(|source| StoreError::Migration {
            version: SCHEMA_VERSION,
            source,
        })
    }

    /// `PRAGMA quick_check(limit)`: what is damaged (empty when nothing).
    fn quick_check(&self, limit: u32) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(&format!("PRAGMA quick_check({limit})"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let msgs: Vec<String> = rows.collect::<Result<_, _>>()?;
        Ok(msgs.into_iter().filter(|m| m != "ok").collect())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i32> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

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
                    duration_ms, success, error_kind, error, tier, latency_ms, metrics)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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

    /// Bucketed aggregates for charts: one [`Series`] per (target, test type).
    /// Whole-hour buckets are answered from the hourly roll-up, finer ones
    /// from the raw results.
    pub fn series(&self, q: &SeriesQuery) -> Result<Vec<Series>> {
        if !CHART_METRICS.contains(&q.metric.as_str()) {
            return Err(StoreError::Query(format!(
                "metric `{}` cannot be charted (one of: {})",
                q.metric,
                CHART_METRICS.join(", ")
            )));
        }
        if q.bucket_secs < 1 {
            return Err(StoreError::Query(
                "bucket width must be at least 1 second".into(),
            ));
        }
        if q.until <= q.since {
            return Err(StoreError::Query("`until` must be after `since`".into()));
        }
        let b = q.bucket_secs;
        let first = q.since.timestamp().div_euclid(b) * b;
        let end = (q.until.timestamp() + b - 1).div_euclid(b) * b;
        // The coarsest roll-up whose unit divides the bucket; raw rows otherwise.
        let grain = [DAILY, HOURLY].into_iter().find(|g| b % g.secs == 0);
        let mut args: Vec<rusqlite::types::Value> = match grain {
            Some(g) => vec![b.into(), (first / g.secs).into(), (end / g.secs).into()],
            None => vec![
                b.into(),
                (first * 1_000_000).into(),
                (end * 1_000_000).into(),
            ],
        };
        let mut filters = String::new();
        if !q.targets.is_empty() {
            let marks: Vec<String> = (0..q.targets.len())
                .map(|i| format!("?{}", args.len() + 1 + i))
                .collect();
            filters.push_str(&format!(" AND s.target IN ({})", marks.join(", ")));
            args.extend(q.targets.iter().map(|t| t.clone().into()));
        }
        if let Some(t) = q.test_type {
            args.push(t.as_str().to_owned().into());
            filters.push_str(&format!(" AND s.test_type = ?{}", args.len()));
        }
        let sql = match grain {
            Some(g) => {
                // `metric` is one of CHART_METRICS (checked above): safe to splice.
                let (n, sum, min, max) = if q.metric == "success" {
                    (
                        "r.count".to_owned(),
                        "(r.count - r.failed)".to_owned(),
                        "NULL".to_owned(),
                        "NULL".to_owned(),
                    )
                } else {
                    let m = &q.metric;
                    (
                        format!("r.{m}_n"),
                        format!("r.{m}_sum"),
                        format!("r.{m}_min"),
                        format!("r.{m}_max"),
                    )
                };
                format!(
                    "SELECT s.target, s.test_type, (r.{unit} * {secs} / ?1) AS bucket,
                        SUM(r.count), SUM(r.failed),
                        SUM({n}), MIN({min}), SUM({sum}) / NULLIF(SUM({n}), 0), MAX({max}),
                        SUM(r.loss_pct_sum) / NULLIF(SUM(r.loss_pct_n), 0)
                     FROM {table} r JOIN series s ON s.id = r.series_id
                     WHERE r.{unit} >= ?2 AND r.{unit} < ?3{filters}
                     GROUP BY r.series_id, bucket
                     ORDER BY s.target, s.test_type, bucket",
                    unit = g.unit,
                    secs = g.secs,
                    table = g.table,
                )
            }
            None => format!(
                "SELECT s.target, s.test_type, (started_at / 1000000 / ?1) AS bucket,
                    COUNT(*), SUM(1 - success),
                    COUNT({value}), MIN({value}), AVG({value}), MAX({value}),
                    AVG({loss})
                 FROM results s
                 WHERE started_at >= ?2 AND started_at < ?3{filters}
                 GROUP BY target, test_type, bucket
                 ORDER BY target, test_type, bucket",
                value = metric_sql(&q.metric),
                loss = metric_sql("loss_pct"),
            ),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out: Vec<Series> = Vec::new();
        while let Some(r) = rows.next()? {
            let target: String = r.get(0)?;
            let tt: String = r.get(1)?;
            let test_type: TestType = tt.parse().map_err(|detail| StoreError::Decode {
                id: target.clone(),
                detail,
            })?;
            let bucket: i64 = r.get(2)?;
            let count: Option<i64> = r.get(3)?;
            let failed: Option<f64> = r.get(4)?;
            let n: Option<i64> = r.get(5)?;
            let bucket = Bucket {
                start: from_micros(bucket * b * 1_000_000),
                count: count.unwrap_or(0).max(0) as u64,
                failed: failed.unwrap_or(0.0).round().max(0.0) as u64,
                n: n.unwrap_or(0).max(0) as u64,
                min: r.get(6)?,
                mean: r.get(7)?,
                max: r.get(8)?,
                loss_pct: r.get(9)?,
            };
            match out.last_mut() {
                Some(s) if s.target == target && s.test_type == test_type => s.buckets.push(bucket),
                _ => out.push(Series {
                    target,
                    test_type,
                    metric: q.metric.clone(),
                    buckets: vec![bucket],
                }),
            }
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

    /// Runs SQLite's own consistency check (`PRAGMA quick_check`).
    pub fn check(&self) -> Result<Vec<String>> {
        self.quick_check(100)
    }
}

/// A roll-up table and the width of its unit.
#[derive(Clone, Copy)]
struct Grain {
    table: &'static str,
    unit: &'static str,
    secs: i64,
}

const HOURLY: Grain = Grain {
    table: "rollup_hourly",
    unit: "hour",
    secs: 3600,
};
const DAILY: Grain = Grain {
    table: "rollup_daily",
    unit: "day",
    secs: 86_400,
};

/// The figures kept in the roll-ups (each has `_n`, `_sum`, `_min`, `_max`
/// columns in the migration), in binding order: the chart figures after
/// `success`, which comes from the result counts.
const ROLLED: &[&str] = CHART_METRICS.split_at(1).1;

/// `INSERT … ON CONFLICT DO UPDATE` adding one result to a roll-up row.
/// Parameters: ?1 series, ?2 unit index, ?3 failed (0/1), then for each
/// figure of [`ROLLED`] its n (0/1) and its value (or NULL).
fn upsert_sql(g: Grain) -> String {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    let mut sets = vec![
        "count = count + 1".to_owned(),
        "failed = failed + excluded.failed".to_owned(),
    ];
    for (i, m) in ROLLED.iter().enumerate() {
        let (n, v) = (4 + 2 * i, 5 + 2 * i);
        cols.push(format!("{m}_n, {m}_sum, {m}_min, {m}_max"));
        vals.push(format!("?{n}, COALESCE(?{v}, 0), ?{v}, ?{v}"));
        sets.push(format!("{m}_n = {m}_n + excluded.{m}_n"));
        sets.push(format!("{m}_sum = {m}_sum + excluded.{m}_sum"));
        // SQLite's MIN/MAX of a NULL is NULL: keep whichever side is known.
        sets.push(format!(
            "{m}_min = MIN(COALESCE({m}_min, excluded.{m}_min), COALESCE(excluded.{m}_min, {m}_min))"
        ));
        sets.push(format!(
            "{m}_max = MAX(COALESCE({m}_max, excluded.{m}_max), COALESCE(excluded.{m}_max, {m}_max))"
        ));
    }
    format!(
        "INSERT INTO {t} (series_id, {u}, count, failed, {cols}) VALUES (?1, ?2, 1, ?3, {vals})
         ON CONFLICT (series_id, {u}) DO UPDATE SET {sets}",
        t = g.table,
        u = g.unit,
        cols = cols.join(", "),
        vals = vals.join(", "),
        sets = sets.join(", "),
    )
}

/// The upsert for a grain, generated once per process.
fn upsert_for(g: Grain) -> &'static str {
    static HOURLY_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static DAILY_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cell = if g.secs == HOURLY.secs {
        &HOURLY_SQL
    } else {
        &DAILY_SQL
    };
    cell.get_or_init(|| upsert_sql(g))
}

/// Adds a result to the roll-up row of its unit.
fn roll_up(tx: &Transaction<'_>, g: Grain, series: i64, m: &Measurement) -> Result<()> {
    let mut stmt = tx.prepare_cached(upsert_for(g))?;
    let values = rolled_values(m);
    let mut args: Vec<rusqlite::types::Value> = Vec::with_capacity(3 + 2 * ROLLED.len());
    args.push(series.into());
    args.push(m.started_at.timestamp().div_euclid(g.secs).into());
    args.push(i64::from(!m.success).into());
    for v in values {
        args.push(i64::from(v.is_some()).into());
        args.push(v.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Real));
    }
    stmt.execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// A result's values for [`ROLLED`], in order; non-finite values are left out.
fn rolled_values(m: &Measurement) -> [Option<f64>; CHART_METRICS.len() - 1] {
    let x = &m.metrics;
    // Effective loss: the result's own figure, else all-or-nothing.
    let loss = x.loss_pct.unwrap_or(if m.success { 0.0 } else { 100.0 });
    [
        m.latency_ms,
        Some(loss),
        x.dns_ms,
        x.connect_ms,
        x.tls_ms,
        x.ttfb_ms,
        x.total_ms,
        x.throughput_mbps,
        x.jitter_ms,
        x.download_mbps,
        x.upload_mbps,
    ]
    .map(|v| v.filter(|v| v.is_finite()))
}

/// The series id of a result's (target, test type), creating it if new.
fn series_id(
    tx: &Transaction<'_>,
    known: &HashMap<(String, TestType), i64>,
    new: &mut HashMap<(String, TestType), i64>,
    m: &Measurement,
) -> Result<i64> {
    let key = (m.target.clone(), m.test_type);
    if let Some(id) = known.get(&key).or_else(|| new.get(&key)) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO series (target, test_type) VALUES (?1, ?2)")?
        .execute(params![m.target, m.test_type.as_str()])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM series WHERE target = ?1 AND test_type = ?2")?
        .query_row(params![m.target, m.test_type.as_str()], |r| r.get(0))?;
    new.insert(key, id);
    Ok(id)
}

/// SQL for a chart metric over a raw `results` row. `metric` is one of
/// [`CHART_METRICS`] (checked by the caller), so it is safe to splice.
fn metric_sql(metric: &str) -> String {
    match metric {
        "latency_ms" => "latency_ms".to_owned(),
        "success" => "success".to_owned(),
        "loss_pct" => {
            "COALESCE(json_extract(metrics, '$.loss_pct'), (1 - success) * 100.0)".to_owned()
        }
        other => format!("json_extract(metrics, '$.{other}')"),
    }
}

/// The `results` columns [`row_to_raw`] reads, in its order.
const RESULT_COLUMNS: &str = "id, test_type, target, resolved_ip, started_at, duration_ms, \
     success, error_kind, error, tier, latency_ms, metrics";

struct RawRow {
    id: String,
    test_type: String,
    target: String,
    resolved_ip: Option<String>,
    started_at: i64,
    duration_ms: f64,
    success: bool,
    error_kind: Option<String>,
    error: Option<String>,
    tier: u8,
    latency_ms: Option<f64>,
    metrics: String,
}

fn row_to_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
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
    })
}

impl RawRow {
    fn decode(self) -> Result<Measurement> {
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
        })
    }
}
