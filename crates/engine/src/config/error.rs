//! Configuration errors: each names the file, the line and the key.

use std::path::PathBuf;

/// Where a configuration problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key the configuration does not have.
    #[error("{}", fmt_syntax(.path, .line, .message))]
    Syntax {
        path: String,
        line: Option<usize>,
        message: String,
    },
    #[error("config file {path} is larger than {limit} KiB: not a WaddlePerf configuration")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}", fmt_invalid(.path, .line, .key, .message))]
    Invalid {
        path: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// The most of a configuration file that is read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// An error message fit to show: values it quotes (between backticks) are
/// cut to 80 characters, the whole to 1,000, so a 10 MB value gives a short
/// error that still names the key and the line.
fn bounded(message: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > 80 {
            out.extend(part.chars().take(80));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    crate::model::excerpt(&out, 1000)
}

fn fmt_syntax(path: &str, line: &Option<usize>, message: &str) -> String {
    let message = bounded(message);
    match line {
        Some(l) => format!("{path}:{l}: {message}"),
        None => format!("{path}: {message}"),
    }
}

fn fmt_invalid(path: &str, line: &Option<usize>, key: &str, message: &str) -> String {
    let message = bounded(message);
    match line {
        Some(l) => format!("{path}:{l}: `{key}`: {message}"),
        None => format!("{path}: `{key}`: {message}"),
    }
}

impl ConfigError {
    /// The key a validation error is about (for UIs that highlight a field).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// What is wrong, without the file's name (for a UI that shows it next
    /// to the field), bounded like the whole message.
    pub fn field_message(&self) -> String {
        match self {
            ConfigError::Invalid { message, .. } => bounded(message),
            other => other.to_string(),
        }
    }
}
