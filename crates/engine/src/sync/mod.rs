//! Sync to the WaddlePerf unified API (`shared/reference/unified-api.md`):
//! the typed client of the contract, the upload body, where the tokens live,
//! and the outbox worker. The local database is the truth; the server is a
//! copy that catches up.

pub mod api;
pub mod payload;
pub mod secrets;
pub mod state;
pub mod worker;

pub use worker::{PassSummary, SyncError, SyncStatus, Syncer};
