//! WaddlePerf engine: probes, result model, local history, configuration and
//! the runtime handle shared by the CLI and the desktop shell. No GUI code.

pub mod config;
pub mod device;
pub mod export;
pub mod model;
pub mod probe;
pub mod runtime;
pub mod store;
pub mod version;

pub use model::{ErrorKind, Measurement, Metrics, TestType};
