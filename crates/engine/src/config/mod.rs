//! Typed configuration, stored as TOML in the platform config directory.
//!
//! Defaults live in one place ([`crate::defaults`], and [`DEFAULT_TOML`],
//! which parses to [`Config::default`]); unknown keys are errors, not silently
//! ignored; every validation error names the key (and the line, when it came
//! from a file). Each suite entry becomes a typed [`crate::spec::TestSpec`]
//! in one place (`targets.rs`); [`crate::plan`] turns a config into the
//! probes of each tier.

mod default_toml;
mod error;
mod paths;
mod ports;
mod sections;
mod targets;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::kinds::{Family, HttpMode, TcpMode};
pub use default_toml::DEFAULT_TOML;
pub use error::{ConfigError, MAX_CONFIG_BYTES};
pub use paths::Paths;
pub use sections::*;
pub use targets::*;
pub use validate::LOG_LEVELS;

use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;
use validate::line_of;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub schedule: Schedule,
    pub store: StoreConfig,
    pub probe: ProbeDefaults,
    pub autoperf: AutoPerf,
    pub notifications: Notifications,
    pub log: LogConfig,
    pub sync: SyncConfig,
    pub update: UpdateConfig,
    pub network: NetworkConfig,
    pub suite: Suite,
    /// Tier 2 suite; `None` derives it from the tier 1 suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier2: Option<Suite>,
    /// Tier 3 suite; `None` derives it from the tier 1 suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier3: Option<Suite>,
}

impl Default for Config {
    fn default() -> Self {
        fn span<T>(v: T) -> Spanned<T> {
            Spanned::new(0..0, v)
        }
        Config {
            schedule: Schedule::default(),
            store: StoreConfig::default(),
            probe: ProbeDefaults::default(),
            autoperf: AutoPerf::default(),
            notifications: Notifications::default(),
            log: LogConfig::default(),
            sync: SyncConfig::default(),
            update: UpdateConfig::default(),
            network: NetworkConfig::default(),
            tier2: None,
            tier3: None,
            suite: Suite {
                http: vec![
                    span(HttpTarget::new("https://www.google.com/")),
                    span(HttpTarget::new("https://www.cloudflare.com/")),
                ],
                tcp: vec![
                    span(TcpTarget::new("1.1.1.1:443", TcpMode::Raw)),
                    span(TcpTarget::new("www.cloudflare.com:443", TcpMode::Tls)),
                ],
                dns: vec![span(DnsTarget::new("www.google.com"))],
                icmp: vec![span(IcmpTarget::new("1.1.1.1"))],
                ..Suite::default()
            },
        }
    }
}

impl Config {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // One format for every error: `file:line: what`, as validation says.
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let mut message = e.message().trim_end().to_owned();
            // Name the key of that line unless the message does already.
            let key = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().trim_matches('"'))
                .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
            if let Some(k) = key {
                message = format!("`{k}`: {message}");
            }
            ConfigError::Syntax {
                path: origin.to_owned(),
                line,
                message,
            }
        })?;
        cfg.validate(origin, Some(text))?;
        Ok(cfg)
    }

    /// Loads `path`; a file that does not exist yields the defaults. At most
    /// [`MAX_CONFIG_BYTES`] are read (`--config /dev/zero` ends at once).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(read(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                limit: MAX_CONFIG_BYTES / 1024,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Number of targets in the suite.
    pub fn target_count(&self) -> usize {
        self.suite.len()
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}
