//! The settings a person edits in the desktop app (targets per test type,
//! schedule, thresholds, notifications, retention), as one plain document
//! that crosses IPC as JSON. Applying it validates with the configuration's
//! own rules (errors name the key, e.g. `suite.http[1].url`), and saving
//! writes the configuration file atomically, so a crash never leaves half a
//! file. Settings the document does not carry (sync, logs, tier suites) are
//! kept from the configuration in effect.

use crate::config::{
    AutoPerf, BandwidthTarget, Config, ConfigError, DnsTarget, HttpTarget, IcmpTarget, MtuTarget,
    Notifications, PortsTarget, ProbeDefaults, Schedule, StoreConfig, TcpTarget, TraceTarget,
    UdpTarget,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;

/// The editable part of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct Settings {
    pub schedule: Schedule,
    pub autoperf: AutoPerf,
    pub notifications: Notifications,
    pub probe: ProbeDefaults,
    pub store: StoreConfig,
    /// Tier 1 HTTP targets.
    pub http: Vec<HttpTarget>,
    /// Tier 1 TCP, TLS and SSH targets.
    pub tcp: Vec<TcpTarget>,
    /// Tier 1 DNS queries, UDP echo peers, ping hosts, traces and path MTU
    /// hosts (absent in a document: none).
    #[serde(default)]
    pub dns: Vec<DnsTarget>,
    #[serde(default)]
    pub udp: Vec<UdpTarget>,
    #[serde(default)]
    pub icmp: Vec<IcmpTarget>,
    #[serde(default)]
    pub traceroute: Vec<TraceTarget>,
    #[serde(default)]
    pub mtu: Vec<MtuTarget>,
    /// Bandwidth servers (run when AutoPerf escalates, and on demand).
    #[serde(default)]
    pub bandwidth: Vec<BandwidthTarget>,
    /// Port checks: a host and the TCP ports it should have open.
    #[serde(default)]
    pub ports: Vec<PortsTarget>,
    /// What uploads say about the network (`[sync] network_context`).
    #[serde(default)]
    pub network_sharing: crate::config::NetworkSharing,
}

/// Every target of a list with its main field trimmed, as the suite keeps it.
fn spanned<T: Clone>(list: &[T], trim: impl Fn(&mut T)) -> Vec<Spanned<T>> {
    list.iter()
        .map(|t| {
            let mut t = t.clone();
            trim(&mut t);
            Spanned::new(0..0, t)
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot write the configuration file {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            schedule: cfg.schedule.clone(),
            autoperf: cfg.autoperf.clone(),
            notifications: cfg.notifications.clone(),
            probe: cfg.probe.clone(),
            store: cfg.store.clone(),
            http: cfg.suite.http.iter().map(|t| t.get_ref().clone()).collect(),
            tcp: cfg.suite.tcp.iter().map(|t| t.get_ref().clone()).collect(),
            dns: cfg.suite.dns.iter().map(|t| t.get_ref().clone()).collect(),
            udp: cfg.suite.udp.iter().map(|t| t.get_ref().clone()).collect(),
            icmp: cfg.suite.icmp.iter().map(|t| t.get_ref().clone()).collect(),
            traceroute: cfg
                .suite
                .traceroute
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            mtu: cfg.suite.mtu.iter().map(|t| t.get_ref().clone()).collect(),
            bandwidth: cfg
                .suite
                .bandwidth
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            ports: cfg
                .suite
                .ports
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            network_sharing: cfg.sync.network_context,
        }
    }

    /// `base` with these settings in place, validated by the configuration's
    /// rules; `origin` names the file in error messages. Text fields are
    /// trimmed (a pasted URL with a trailing space is what was meant).
    pub fn apply(&self, base: &Config, origin: &str) -> Result<Config, ConfigError> {
        let mut cfg = base.clone();
        cfg.schedule = self.schedule.clone();
        cfg.autoperf = self.autoperf.clone();
        cfg.notifications = self.notifications.clone();
        cfg.probe = self.probe.clone();
        cfg.store = self.store.clone();
        cfg.sync.network_context = self.network_sharing;
        cfg.suite.http = self
            .http
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.url = t.url.trim().to_owned();
                Spanned::new(0..0, t)
            })
            .collect();
        cfg.suite.tcp = self
            .tcp
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.target = t.target.trim().to_owned();
                Spanned::new(0..0, t)
            })
            .collect();
        cfg.suite.dns = spanned(&self.dns, |t| {
            t.name = t.name.trim().to_owned();
            t.server = t
                .server
                .take()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
        });
        cfg.suite.udp = spanned(&self.udp, |t| t.target = t.target.trim().to_owned());
        cfg.suite.icmp = spanned(&self.icmp, |t| t.host = t.host.trim().to_owned());
        cfg.suite.traceroute = spanned(&self.traceroute, |t| t.host = t.host.trim().to_owned());
        cfg.suite.mtu = spanned(&self.mtu, |t| t.host = t.host.trim().to_owned());
        cfg.suite.bandwidth = spanned(&self.bandwidth, |t| t.server = t.server.trim().to_owned());
        cfg.suite.ports = spanned(&self.ports, |t| {
            t.host = t.host.trim().to_owned();
            t.ports = t.ports.trim().to_owned();
        });
        cfg.validate(origin, None)?;
        Ok(cfg)
    }
}

/// Writes `cfg` to `path` as TOML: a temporary file in the same directory,
/// flushed to disk, then renamed over the old one; readable by the user alone.
pub fn save_config(path: &Path, cfg: &Config) -> Result<(), SaveError> {
    let text = format!(
        "# WaddlePerf configuration, saved by the desktop app.\n\
         # Reference: docs/configuration.md\n\n{}",
        cfg.to_toml()
    );
    crate::fsutil::write_atomically(path, crate::fsutil::Access::Private, |w| {
        w.write_all(text.as_bytes())
    })
    .map_err(|source| SaveError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpMode, TcpMode};

    #[test]
    fn round_trips_through_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("config.toml");
        let base = Config::default();
        let mut s = Settings::from_config(&base);
        s.schedule.interval_minutes = 15;
        s.http = vec![HttpTarget {
            mode: HttpMode::Http2,
            ..HttpTarget::new("  https://example.net/health ")
        }];
        s.tcp.push(TcpTarget::new("example.net:22", TcpMode::Ssh));
        let cfg = s.apply(&base, "settings")?;
        save_config(&path, &cfg)?;
        let back = Config::load(&path)?;
        assert_eq!(back, cfg);
        assert_eq!(
            back.suite.http[0].get_ref().url,
            "https://example.net/health"
        );
        assert_eq!(Settings::from_config(&back).schedule.interval_minutes, 15);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        Ok(())
    }

    #[test]
    fn every_target_type_round_trips_and_a_document_without_them_has_none() {
        let base = Config::default();
        let mut s = Settings::from_config(&base);
        assert_eq!(s.icmp.len(), 1);
        assert_eq!(s.dns.len(), 1);
        s.dns[0].server = Some("  ".into());
        s.mtu.push(MtuTarget {
            host: " example.net ".into(),
            max: Some(1500),
            reply_wait_ms: None,
            timeout_ms: None,
            family: None,
            thresholds: None,
        });
        let cfg = s.apply(&base, "x").unwrap();
        assert_eq!(cfg.suite.mtu[0].get_ref().host, "example.net");
        assert_eq!(
            cfg.suite.dns[0].get_ref().server,
            None,
            "a blank server is the system's"
        );
        assert_eq!(Settings::from_config(&cfg).mtu[0].max, Some(1500));
        let mut doc = serde_json::to_value(Settings::from_config(&base)).unwrap();
        for k in ["dns", "udp", "icmp", "traceroute", "mtu", "ports"] {
            doc.as_object_mut().unwrap().remove(k);
        }
        let older: Settings = serde_json::from_value(doc).unwrap();
        assert!(older.icmp.is_empty() && older.dns.is_empty());
        let e = {
            let mut bad = Settings::from_config(&base);
            bad.icmp[0].host = "no such host!".into();
            bad.apply(&base, "x").unwrap_err()
        };
        assert_eq!(e.key(), Some("suite.icmp[0].host"));
    }

    #[test]
    fn errors_name_the_key() {
        let base = Config::default();
        let mut s = Settings::from_config(&base);
        s.http[1].url = "ftp://example.net/".into();
        let e = s.apply(&base, "settings").err();
        assert_eq!(e.as_ref().and_then(|e| e.key()), Some("suite.http[1].url"));

        let mut s = Settings::from_config(&base);
        s.schedule.interval_minutes = 0;
        let e = s.apply(&base, "settings").err();
        assert_eq!(
            e.as_ref().and_then(|e| e.key()),
            Some("schedule.interval_minutes")
        );

        let mut s = Settings::from_config(&base);
        s.autoperf.thresholds.loss_pct = 140.0;
        let e = s.apply(&base, "settings").err();
        assert_eq!(
            e.as_ref().and_then(|e| e.key()),
            Some("autoperf.thresholds.loss_pct")
        );
    }

    #[test]
    fn keeps_what_it_does_not_carry() -> Result<(), ConfigError> {
        let mut base = Config::default();
        base.sync.interval_minutes = 5;
        base.log.level = "debug".into();
        let s = Settings::from_config(&base);
        let cfg = s.apply(&base, "settings")?;
        assert_eq!(cfg.sync.interval_minutes, 5);
        assert_eq!(cfg.log.level, "debug");
        Ok(())
    }
}
