//! Typed configuration, stored as TOML in the platform config directory.
//!
//! Defaults live in one place ([`DEFAULT_TOML`], which parses to
//! [`Config::default`]); unknown keys are errors, not silently ignored; every
//! validation error names the key (and the line, when it came from a file).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The configuration file written by `waddleperf config init`. It parses to
/// exactly [`Config::default`] (a unit test holds the two together).
pub const DEFAULT_TOML: &str = r#"# WaddlePerf configuration.
# Every key is optional: what is left out takes the default shown here.
# `waddleperf config validate` checks this file; `waddleperf config show` prints
# the configuration in effect.

[schedule]
# Minutes between runs of the suite (the background runtime uses this).
interval_minutes = 60
# Run the suite once as soon as the monitor starts.
run_on_start = true

[store]
# Results older than this many days are deleted.
retention_days = 365

[probe]
# Default per-test timeout in milliseconds (a target may set its own).
timeout_ms = 10000
# HTTP redirects followed before giving up.
max_redirects = 10
# HTTP bodies are read to the end up to this many bytes, then cut off.
max_body_bytes = 10485760

# The suite: targets per test type. A file with no [suite] at all uses this
# default suite; a file with any [[suite.*]] entry replaces it whole.
# HTTP(S): mode = "auto" (ALPN negotiates HTTP/2 or 1.1), "http1" or "http2".
# `insecure = true` turns certificate checks off for that target only;
# `ca_file` adds a PEM bundle of extra trusted roots for that target.
[[suite.http]]
url = "https://www.google.com/"

[[suite.http]]
url = "https://www.cloudflare.com/"

# TCP: mode = "raw" (connect time), "tls" (connect + handshake, certificate)
# or "ssh" (connect + the server's SSH- banner).
[[suite.tcp]]
target = "1.1.1.1:443"

[[suite.tcp]]
target = "www.cloudflare.com:443"
mode = "tls"
"#;

/// Where a configuration problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{}", fmt_invalid(.path, .line, .key, .message))]
    Invalid {
        path: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

fn fmt_invalid(path: &str, line: &Option<usize>, key: &str, message: &str) -> String {
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub schedule: Schedule,
    pub store: StoreConfig,
    pub probe: ProbeDefaults,
    pub suite: Suite,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub interval_minutes: u32,
    pub run_on_start: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeDefaults {
    pub timeout_ms: u64,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Suite {
    pub http: Vec<Spanned<HttpTarget>>,
    pub tcp: Vec<Spanned<TcpTarget>>,
}

/// How the HTTP probe picks a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMode {
    /// HTTPS: offer `h2` and `http/1.1` over ALPN and use what the server picks.
    /// Plain HTTP: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (over TLS via ALPN; over plain HTTP with prior knowledge).
    Http2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTarget {
    pub url: String,
    #[serde(default)]
    pub mode: HttpMode,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// What the TCP probe does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpMode {
    #[default]
    Raw,
    Tls,
    Ssh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpTarget {
    /// `host:port` (`[v6]:port` for IPv6 literals).
    pub target: String,
    #[serde(default)]
    pub mode: TcpMode,
    /// TLS only: the name to send as SNI and verify (default: the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval_minutes: 60,
            run_on_start: true,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_days: 365,
        }
    }
}

impl Default for ProbeDefaults {
    fn default() -> Self {
        ProbeDefaults {
            timeout_ms: 10_000,
            max_redirects: 10,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
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
            suite: Suite {
                http: vec![
                    span(HttpTarget::new("https://www.google.com/")),
                    span(HttpTarget::new("https://www.cloudflare.com/")),
                ],
                tcp: vec![
                    span(TcpTarget::new("1.1.1.1:443", TcpMode::Raw)),
                    span(TcpTarget::new("www.cloudflare.com:443", TcpMode::Tls)),
                ],
            },
        }
    }
}

impl HttpTarget {
    pub fn new(url: impl Into<String>) -> Self {
        HttpTarget {
            url: url.into(),
            mode: HttpMode::Auto,
            insecure: false,
            ca_file: None,
            timeout_ms: None,
        }
    }
}

impl TcpTarget {
    pub fn new(target: impl Into<String>, mode: TcpMode) -> Self {
        TcpTarget {
            target: target.into(),
            mode,
            server_name: None,
            insecure: false,
            ca_file: None,
            timeout_ms: None,
        }
    }
}

/// Splits `host:port` / `[v6]:port` into host and port, with an error that
/// says what is wrong.
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: missing `]` after the IPv6 address"))?;
        let p = after
            .strip_prefix(':')
            .ok_or_else(|| format!("`{s}`: expected `[address]:port`"))?;
        (h, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}`: expected host:port (e.g. example.com:443)"))?;
        if h.contains(':') {
            return Err(format!(
                "`{s}`: write IPv6 addresses in brackets, e.g. [2001:db8::1]:443"
            ));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(format!("`{s}`: the host is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("`{s}`: `{host}` is not a host name or address"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{s}`: port `{port}` is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(format!("`{s}`: port 0 cannot be tested"));
    }
    Ok((host.to_owned(), port))
}

/// Parses and checks an HTTP(S) URL the probe can test.
pub fn check_http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
    match u.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "`{s}`: scheme `{other}` is not supported (use http or https)"
            ))
        }
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{s}` has no host"));
    }
    Ok(u)
}

const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;

impl Config {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        cfg.validate(origin, Some(text))?;
        Ok(cfg)
    }

    /// Loads `path`; a file that does not exist yields the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Checks every value after defaults are applied. `text` (the source) is
    /// used to turn spans into line numbers.
    pub fn validate(&self, origin: &str, text: Option<&str>) -> Result<(), ConfigError> {
        let err = |key: String, span: Option<std::ops::Range<usize>>, message: String| {
            let line = match (text, span) {
                (Some(t), Some(s)) if s.end > 0 => Some(line_of(t, s.start)),
                _ => None,
            };
            Err(ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                key,
                message,
            })
        };
        let line_for_key = |key: &str| text.and_then(|t| find_key_line(t, key));
        let plain = |key: &str, message: String| -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                path: origin.to_owned(),
                line: line_for_key(key),
                key: key.to_owned(),
                message,
            })
        };

        if !(1..=10_080).contains(&self.schedule.interval_minutes) {
            return plain(
                "schedule.interval_minutes",
                format!(
                    "{} is out of range (1 to 10080 minutes)",
                    self.schedule.interval_minutes
                ),
            );
        }
        if !(1..=36_500).contains(&self.store.retention_days) {
            return plain(
                "store.retention_days",
                format!(
                    "{} is out of range (1 to 36500 days)",
                    self.store.retention_days
                ),
            );
        }
        if !TIMEOUT_RANGE.contains(&self.probe.timeout_ms) {
            return plain(
                "probe.timeout_ms",
                format!(
                    "{} is out of range (100 to 600000 ms)",
                    self.probe.timeout_ms
                ),
            );
        }
        if self.probe.max_redirects > 50 {
            return plain(
                "probe.max_redirects",
                format!("{} is more than 50", self.probe.max_redirects),
            );
        }
        if self.probe.max_body_bytes == 0 {
            return plain("probe.max_body_bytes", "must be at least 1".into());
        }

        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.suite.http.iter().enumerate() {
            let span = Some(t.span());
            let key = |k: &str| format!("suite.http[{i}].{k}");
            if let Err(m) = check_http_url(&t.get_ref().url) {
                return err(key("url"), span, m);
            }
            if let Some(ms) = t
                .get_ref()
                .timeout_ms
                .filter(|m| !TIMEOUT_RANGE.contains(m))
            {
                return err(
                    key("timeout_ms"),
                    span,
                    format!("{ms} is out of range (100 to 600000 ms)"),
                );
            }
            if let Some(f) = &t.get_ref().ca_file {
                if let Err(m) = check_readable(f) {
                    return err(key("ca_file"), span, m);
                }
            }
            if !seen.insert((
                "http",
                t.get_ref().url.trim().to_owned(),
                t.get_ref().mode as u8,
            )) {
                return err(
                    key("url"),
                    span,
                    format!("`{}` is listed twice", t.get_ref().url),
                );
            }
        }
        for (i, t) in self.suite.tcp.iter().enumerate() {
            let span = Some(t.span());
            let key = |k: &str| format!("suite.tcp[{i}].{k}");
            let tt = t.get_ref();
            if let Err(m) = split_host_port(&tt.target) {
                return err(key("target"), span, m);
            }
            if tt.mode != TcpMode::Tls
                && (tt.server_name.is_some() || tt.insecure || tt.ca_file.is_some())
            {
                return err(
                    key("mode"),
                    span,
                    "server_name, insecure and ca_file apply only with mode = \"tls\"".into(),
                );
            }
            if let Some(ms) = tt.timeout_ms.filter(|m| !TIMEOUT_RANGE.contains(m)) {
                return err(
                    key("timeout_ms"),
                    span,
                    format!("{ms} is out of range (100 to 600000 ms)"),
                );
            }
            if let Some(f) = &tt.ca_file {
                if let Err(m) = check_readable(f) {
                    return err(key("ca_file"), span, m);
                }
            }
            if !seen.insert(("tcp", tt.target.trim().to_owned(), tt.mode as u8)) {
                return err(
                    key("target"),
                    span,
                    format!("`{}` is listed twice", tt.target),
                );
            }
        }
        Ok(())
    }

    /// The timeout for a target that may override the default.
    pub fn timeout(&self, own: Option<u64>) -> Duration {
        Duration::from_millis(own.unwrap_or(self.probe.timeout_ms))
    }

    /// Number of targets in the suite.
    pub fn target_count(&self) -> usize {
        self.suite.http.len() + self.suite.tcp.len()
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn check_readable(p: &Path) -> Result<(), String> {
    std::fs::File::open(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Best-effort line of a dotted `table.key` in TOML text (for keys that are
/// plain values; list entries carry their own spans).
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.')?;
    let mut in_table = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_table = line.trim_matches(|c| c == '[' || c == ']').trim() == table;
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if (in_table && k == key) || k == dotted {
            return Some(n + 1);
        }
    }
    None
}

/// The platform directories the app uses.
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub db_file: PathBuf,
}

impl Paths {
    /// Platform defaults (XDG on Linux, Application Support on macOS,
    /// %APPDATA% on Windows), with explicit overrides taking precedence.
    pub fn resolve(config: Option<PathBuf>, db: Option<PathBuf>) -> Paths {
        let dirs = directories::ProjectDirs::from("io", "PenguinTech", "WaddlePerf");
        let (cfg_dir, data_dir) = match &dirs {
            Some(d) => (d.config_dir().to_owned(), d.data_dir().to_owned()),
            None => {
                let base = PathBuf::from(".waddleperf");
                (base.clone(), base)
            }
        };
        let db_file = db.unwrap_or_else(|| data_dir.join("waddleperf.db"));
        let data_dir = db_file.parent().map(Path::to_owned).unwrap_or(data_dir);
        Paths {
            config_file: config.unwrap_or_else(|| cfg_dir.join("config.toml")),
            data_dir,
            db_file,
        }
    }
}

impl fmt::Display for Paths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config   {}", self.config_file.display())?;
        write!(f, "database {}", self.db_file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> ConfigError {
        Config::parse(text, "cfg.toml").expect_err("config should be rejected")
    }

    #[test]
    fn default_file_is_the_default_config() {
        let parsed = Config::parse(DEFAULT_TOML, "default").unwrap();
        let def = Config::default();
        // Spans differ (the parsed file has real ones); compare the values.
        assert_eq!(parsed.schedule, def.schedule);
        assert_eq!(parsed.store, def.store);
        assert_eq!(parsed.probe, def.probe);
        let urls = |c: &Config| {
            c.suite
                .http
                .iter()
                .map(|t| t.get_ref().clone())
                .collect::<Vec<_>>()
        };
        let tcps = |c: &Config| {
            c.suite
                .tcp
                .iter()
                .map(|t| t.get_ref().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(urls(&parsed), urls(&def));
        assert_eq!(tcps(&parsed), tcps(&def));
        def.validate("default", None).unwrap();
    }

    #[test]
    fn empty_file_gives_defaults_and_suite_can_be_replaced() {
        let c = Config::parse("", "x").unwrap();
        assert_eq!(c.schedule, Schedule::default());
        assert_eq!(
            c.target_count(),
            4,
            "a file without [suite] keeps the default suite"
        );
        let c = Config::parse("[[suite.tcp]]\ntarget = \"a:1\"\n", "x").unwrap();
        assert_eq!(
            c.target_count(),
            1,
            "a [suite] replaces the default suite whole"
        );
        let c = Config::parse(
            "[[suite.tcp]]\ntarget = \"[::1]:22\"\nmode = \"ssh\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(c.suite.tcp[0].get_ref().mode, TcpMode::Ssh);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let e = invalid("[schedule]\ninterval_minutes = 5\nfrequency = 3\n").to_string();
        assert!(e.contains("frequency"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nverify = false\n").to_string();
        assert!(e.contains("verify"), "{e}");
        let e = invalid("[sweet]\n").to_string();
        assert!(e.contains("sweet"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = invalid("[schedule]\ninterval_minutes = \"hourly\"\n").to_string();
        assert!(e.contains("interval_minutes"), "{e}");
        let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nmode = \"http9\"\n").to_string();
        assert!(e.contains("http9") && e.contains("line 3"), "{e}");
        let e = invalid("[[suite.tcp]]\nmode = \"raw\"\n").to_string();
        assert!(e.contains("target"), "missing required key named: {e}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases: &[(&str, &str, usize)] = &[
            (
                "[schedule]\ninterval_minutes = 0\n",
                "schedule.interval_minutes",
                2,
            ),
            ("[store]\n\nretention_days = 0\n", "store.retention_days", 3),
            ("[probe]\ntimeout_ms = 5\n", "probe.timeout_ms", 2),
            ("[probe]\nmax_redirects = 99\n", "probe.max_redirects", 2),
            ("[probe]\nmax_body_bytes = 0\n", "probe.max_body_bytes", 2),
            (
                "\n[[suite.http]]\nurl = \"ftp://x/\"\n",
                "suite.http[0].url",
                2,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\n[[suite.http]]\nurl = \"not a url\"\n",
                "suite.http[1].url",
                3,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\ntimeout_ms = 1\n",
                "suite.http[0].timeout_ms",
                1,
            ),
            (
                "[[suite.http]]\nurl = \"https://a/\"\nca_file = \"/nonexistent/ca.pem\"\n",
                "suite.http[0].ca_file",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"example.com\"\n",
                "suite.tcp[0].target",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"example.com:99999\"\n",
                "suite.tcp[0].target",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"::1:22\"\n",
                "suite.tcp[0].target",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"a:1\"\nserver_name = \"b\"\n",
                "suite.tcp[0].mode",
                1,
            ),
            (
                "[[suite.tcp]]\ntarget = \"a:1\"\n[[suite.tcp]]\ntarget = \"a:1\"\n",
                "suite.tcp[1].target",
                3,
            ),
        ];
        for (text, key, line) in cases {
            let e = invalid(text);
            assert_eq!(e.key(), Some(*key), "for {text:?}: {e}");
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("cfg.toml:{line}: `{key}`")),
                "for {text:?}: {shown}"
            );
        }
    }

    #[test]
    fn missing_file_means_defaults_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(&dir.path().join("none.toml")).unwrap();
        assert_eq!(c, Config::default());
        let e = Config::load(dir.path()).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:443").unwrap(), ("a.b".into(), 443));
        assert_eq!(split_host_port("[::1]:22").unwrap(), ("::1".into(), 22));
        assert!(split_host_port(":80").unwrap_err().contains("empty"));
        assert!(split_host_port("a:0").unwrap_err().contains("port 0"));
        assert!(split_host_port("a:x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config::default();
        let back = Config::parse(&c.to_toml(), "rendered").unwrap();
        assert_eq!(back.schedule, c.schedule);
        assert_eq!(back.suite.http.len(), 2);
    }
}
