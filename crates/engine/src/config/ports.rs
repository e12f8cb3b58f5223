//! `[[suite.ports]]` / `[[tier2.ports]]`: a port check as the config file
//! writes it.

use super::targets::{host, limit};
use super::{ProbeDefaults, ThresholdOverrides};
use crate::kinds::Family;
use crate::spec::{millis, PortsSpec, SpecError};
use serde::{Deserialize, Serialize};

/// A host and the TCP ports it should have open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct PortsTarget {
    pub host: String,
    /// `"22,80,443"`; explicit ranges (`"8000-8003"`) allowed, 64 ports at most.
    pub ports: String,
    /// How long each connect waits before the port counts as filtered
    /// (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_wait_ms: Option<u64>,
    /// Connects at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverrides>,
}

impl PortsTarget {
    pub fn spec(&self, p: &ProbeDefaults) -> Result<PortsSpec, SpecError> {
        let host = host("host", &self.host)?;
        let ports = PortsSpec::parse_ports(&self.ports).map_err(|m| SpecError::new("ports", m))?;
        let mut s = PortsSpec {
            family: self.family,
            timeout: limit(None, p)?,
            ..PortsSpec::new(host, ports)
        };
        if let Some(w) = self.connect_wait_ms {
            s.connect_wait = millis("connect_wait_ms", w)?;
        }
        if let Some(c) = self.concurrency {
            s.concurrency = c;
        }
        s.check()?;
        Ok(s)
    }
}
