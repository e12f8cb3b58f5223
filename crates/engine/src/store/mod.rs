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

mod networks;
mod outbox;
mod results;
mod rollups;
mod state;
use results::{row_to_raw, RawRow, RESULT_COLUMNS};
pub use state::ENROLLMENT;
mod repair;
pub use networks::{clean_label, KnownNetwork, MAX_LABEL_CHARS};
pub use outbox::{DeadLetter, OutboxItem};
pub use repair::{check_file, recover, IntegrityReport, Recovery};

/// `PRAGMA application_id` of a WaddlePerf database ("WPRF").
pub const APPLICATION_ID: i32 = 0x5750_5246;

/// A step of a migration that SQL alone cannot do.
type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// Embedded migrations, applied in order; index + 1 is the schema version.
/// Each is SQL, then optionally a step in Rust in the same transaction.
const MIGRATIONS: &[(&str, Option<Step>)] = &[
    (include_str!("migrations/0001_init.sql"), None),
    (include_str!("migrations/0002_state_events.sql"), None),
    (include_str!("migrations/0003_outbox_attempts.sql"), None),
    (
        include_str!("migrations/0004_http_mode_targets.sql"),
        Some(rollups::mark_if_moved),
    ),
    (
        include_str!("migrations/0005_rpm_rollups.sql"),
        Some(rollups::rebuild_if_marked),
    ),
    (include_str!("migrations/0006_networks.sql"), None),
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
    /// Only results measured on this network (a network id).
    pub network: Option<String>,
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
    /// Only results of this network (a network id): computed from the raw
    /// results.
    pub network: Option<String>,
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Bucket {
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct StoredEvent {
    pub id: i64,
    #[serde(with = "crate::model::rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string"))]
    pub at: DateTime<Utc>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub message: String,
    pub details: serde_json::Value,
}

/// Counts for `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct StoreStats {
    pub results: u64,
    pub outbox_pending: u64,
    pub outbox_dead: u64,
    #[serde(with = "crate::model::opt_rfc3339_utc")]
    #[cfg_attr(test, ts(type = "string | null"))]
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
        for (i, (sql, step)) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let target = i as i32 + 1;
            tx.execute_batch(sql)
                .and_then(|_| step.map_or(Ok(()), |f| f(&tx)))
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

    /// Runs SQLite's own consistency check (`PRAGMA quick_check`).
    pub fn check(&self) -> Result<Vec<String>> {
        self.quick_check(100)
    }
}
