//! WaddlePerf engine: probes, result model, local history, configuration and
//! the runtime handle shared by the CLI and the desktop shell. No GUI code.

pub mod agent;
pub mod autoperf;
pub mod config;
pub mod control;
pub mod defaults;
pub mod device;
pub mod diag;
pub mod export;
pub mod fsutil;
pub mod kinds;
pub mod launch;
pub mod logging;
pub mod model;
pub mod netctx;
pub mod notify;
pub mod plan;
pub mod probe;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod spec;
pub mod store;
pub mod supervise;
pub mod sync;
#[cfg(test)]
mod ts_types;
pub mod update;
pub mod version;

pub use model::{ErrorKind, Measurement, Metrics, TestType};
