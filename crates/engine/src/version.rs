//! Version and build stamp (see `build.rs`).

/// `0.1.0`
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Build number: UTC build time as `YYYYMMDDHHMM`.
pub const BUILD_NUMBER: &str = env!("WADDLEPERF_BUILD_NUMBER");
/// Short git commit, or `unknown` outside a checkout.
pub const GIT_COMMIT: &str = env!("WADDLEPERF_GIT_COMMIT");
/// RFC 3339 build time.
pub const BUILD_DATE: &str = env!("WADDLEPERF_BUILD_DATE");

static CLIENT: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names the program for the server (User-Agent, result metadata):
/// `waddleperf` for the CLI and daemon, `waddleperf-desktop` for the app.
/// Set once at start; later calls are ignored.
pub fn set_client(name: &'static str) {
    let _ = CLIENT.set(name);
}

/// The program's name for the server (default `waddleperf`).
pub fn client() -> &'static str {
    CLIENT.get().copied().unwrap_or("waddleperf")
}

/// `0.1.0+202611220315 (commit abc123def456, built 2026-11-22T03:15:09Z)`
pub fn long_version() -> String {
    format!("{VERSION}+{BUILD_NUMBER} (commit {GIT_COMMIT}, built {BUILD_DATE})")
}
