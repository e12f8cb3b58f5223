//! Sync to the WaddlePerf unified API (`shared/reference/unified-api.md`):
//! the typed client of the contract and the upload body. The local database
//! is the truth; the server is a copy that catches up.

pub mod api;
pub mod payload;
