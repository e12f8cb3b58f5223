//! A port check's spec: the host, the ports as the user wrote them (a list
//! with explicit ranges, bounded), and how long and how many at once.

use super::SpecError;
use crate::defaults as d;
use crate::kinds::Family;
use std::time::Duration;

/// A port check: a TCP connect to each of `ports` on `host`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortsSpec {
    pub host: String,
    /// Each port once, in the order written.
    pub ports: Vec<u16>,
    /// How long each connect waits before its port counts as filtered.
    pub connect_wait: Duration,
    /// Connects at once.
    pub concurrency: usize,
    pub family: Option<Family>,
    /// How long the test may run beyond its connects.
    pub timeout: Duration,
}

impl PortsSpec {
    pub fn new(host: impl Into<String>, ports: Vec<u16>) -> PortsSpec {
        PortsSpec {
            host: host.into(),
            ports,
            connect_wait: Duration::from_millis(d::PORTS_CONNECT_WAIT_MS),
            concurrency: d::PORTS_CONCURRENCY,
            family: None,
            timeout: Duration::from_millis(d::TIMEOUT_MS),
        }
    }

    /// Parses a port list as written: `22,80,443`, with explicit ranges
    /// (`8000-8003`) allowed; each port once, at most [`d::PORTS_MAX`].
    pub fn parse_ports(s: &str) -> Result<Vec<u16>, String> {
        let mut out: Vec<u16> = Vec::new();
        let one = |t: &str| -> Result<u16, String> {
            let t = t.trim();
            match t.parse::<u16>() {
                Ok(p) if p > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
                _ => Err(format!(
                    "`{}` is not a port (1 to 65535)",
                    crate::model::excerpt(t, 20)
                )),
            }
        };
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err("an empty entry in the port list (write e.g. 22,80,443)".into());
            }
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => (one(part)?, one(part)?),
            };
            if lo > hi {
                return Err(format!("the range {part} runs backwards"));
            }
            for p in lo..=hi {
                if !out.contains(&p) {
                    out.push(p);
                }
                if out.len() > d::PORTS_MAX {
                    return Err(format!(
                        "more than {} ports: a port check tests the few a service needs, \
                         it is not a scanner",
                        d::PORTS_MAX
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The list as written back: `22,80,443`.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn check(&self) -> Result<(), SpecError> {
        if self.ports.is_empty() {
            return Err(SpecError::new("ports", "no port to check"));
        }
        if self.ports.len() > d::PORTS_MAX {
            return Err(SpecError::new(
                "ports",
                format!("at most {} ports", d::PORTS_MAX),
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(SpecError::new(
                "concurrency",
                "from 1 to 64 connects at once",
            ));
        }
        Ok(())
    }
}

/// A port check: the host, then its ports (`example.com:22,80,443`,
/// `[2001:db8::1]:443`).
pub fn ports_id(s: &PortsSpec) -> String {
    let host = s.host.trim();
    if host.contains(':') {
        format!("[{host}]:{}", s.ports_text())
    } else {
        format!("{host}:{}", s.ports_text())
    }
}
