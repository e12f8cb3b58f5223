//! Updates: the agent's own check against a static release manifest, the
//! format of Tauri's updater (so `tauri signer sign` or minisign signs the
//! artifacts):
//!
//! ```json
//! {"version": "0.2.0", "notes": "…", "pub_date": "2026-12-01T00:00:00Z",
//!  "platforms": {"linux-x86_64": {"url": "https://…/waddleperf_0.2.0_amd64.AppImage",
//!                                  "signature": "<the .sig file, or its base64>"}}}
//! ```
//!
//! A newer version for this system's platform key is downloaded beside the
//! data (`updates/`), its minisign signature checked against the configured
//! public key while it arrives, and only then given its name: a download
//! that does not verify is deleted and whatever was there before stays.
//! Installing it is the person's step (the installer, or the AppImage
//! swapped in place by `waddleperf update --apply`). Off while no manifest
//! URL is configured. Everything read is bounded in size and time.

use crate::config::UpdateConfig;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The manifest is a few hundred bytes; anything much larger is not one.
pub const MAX_MANIFEST: usize = 64 * 1024;
/// The largest artifact accepted (an AppImage or an installer).
pub const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(20);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("updates are off: set update.manifest_url in the configuration")]
    Off,
    #[error("update.public_key is not set: without it no download can be verified")]
    NoKey,
    #[error("update.public_key is not a minisign public key: {0}")]
    BadKey(String),
    #[error("update.manifest_url `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the update manifest at {url} is malformed: {reason}")]
    Malformed { url: String, reason: String },
    #[error("the update manifest at {url} has no build for this system ({platform}); it has: {available}")]
    NoPlatform {
        url: String,
        platform: String,
        available: String,
    },
    #[error("the signature of {file} does not verify with update.public_key ({reason}): the download was deleted and nothing was replaced")]
    BadSignature { file: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
struct Manifest {
    version: String,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    pub_date: Option<String>,
    platforms: BTreeMap<String, PlatformEntry>,
}

#[derive(Debug, Deserialize)]
struct PlatformEntry {
    url: String,
    signature: String,
}

/// A release for this system, from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub version: String,
    pub notes: Option<String>,
    pub pub_date: Option<String>,
    pub platform: String,
    pub url: String,
    #[serde(skip)]
    signature: String,
}

impl Release {
    /// The name its verified download has in the updates folder.
    pub fn file_name(&self) -> String {
        file_name(&self.url, &self.version)
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Checked {
    UpToDate { current: String, latest: String },
    Available { current: String, release: Release },
}

/// This system's key in a manifest's `platforms`: `linux-x86_64`,
/// `darwin-aarch64`, `windows-x86_64` (Tauri's names).
pub fn platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    format!("{os}-{}", std::env::consts::ARCH)
}

/// Reads a minisign public key: its key line (`RW…`), the key file's text,
/// or the key file base64-encoded (as `tauri signer generate` prints it).
pub fn parse_public_key(text: &str) -> Result<minisign_verify::PublicKey, UpdateError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(UpdateError::NoKey);
    }
    let decoded = decode_base64_text(text);
    let lines = decoded.as_deref().unwrap_or(text);
    let key_line = lines
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or(text);
    minisign_verify::PublicKey::from_base64(key_line)
        .map_err(|e| UpdateError::BadKey(e.to_string()))
}

/// A signature: the `.sig`/`.minisig` file's text, or that text
/// base64-encoded (Tauri's manifests).
fn parse_signature(text: &str) -> Result<minisign_verify::Signature, String> {
    let text = text.trim();
    let decoded = decode_base64_text(text);
    minisign_verify::Signature::decode(decoded.as_deref().unwrap_or(text))
        .map_err(|e| e.to_string())
}

/// `text` base64-decoded, when it is base64 of UTF-8 text with a comment
/// line (a key or signature file).
fn decode_base64_text(text: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|s| s.contains("comment:"))
}

/// Whether `latest` is a newer version than `current` (semantic versions,
/// an optional leading `v`).
pub fn is_newer(latest: &str, current: &str) -> Result<bool, String> {
    let parse = |v: &str| {
        semver::Version::parse(v.trim().trim_start_matches('v'))
            .map_err(|e| format!("`{v}` is not a version: {e}"))
    };
    Ok(parse(latest)? > parse(current)?)
}

pub struct Updater {
    http: reqwest::Client,
    manifest: url::Url,
    key: minisign_verify::PublicKey,
}

impl Updater {
    /// An updater for the configured manifest and key.
    pub fn new(cfg: &UpdateConfig) -> Result<Updater, UpdateError> {
        let raw = cfg.manifest_url.trim();
        if raw.is_empty() {
            return Err(UpdateError::Off);
        }
        let bad = |reason: String| UpdateError::BadUrl {
            url: raw.to_owned(),
            reason,
        };
        let manifest = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
        if !matches!(manifest.scheme(), "https" | "http") || manifest.host_str().is_none() {
            return Err(bad("expected an https:// URL with a host".into()));
        }
        let key = parse_public_key(&cfg.public_key)?;
        let tls =
            crate::probe::tls::client_config(false, cfg.ca_file.as_deref(), &[b"h2", b"http/1.1"])
                .map_err(|e| bad(e.message))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(format!(
                "{}/{}",
                crate::version::client(),
                crate::version::VERSION
            ))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Updater {
            http,
            manifest,
            key,
        })
    }

    /// Fetches the manifest and compares its version with `current`.
    pub async fn check(&self, current: &str) -> Result<Checked, UpdateError> {
        let url = self.manifest.to_string();
        let fetch = |reason: String| UpdateError::Fetch {
            url: url.clone(),
            reason,
        };
        let malformed = |reason: String| UpdateError::Malformed {
            url: url.clone(),
            reason,
        };
        let body = tokio::time::timeout(MANIFEST_TIMEOUT, async {
            let mut resp = self
                .http
                .get(self.manifest.clone())
                .send()
                .await
                .map_err(|e| fetch(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fetch(format!("the server answered {}", resp.status())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| fetch(e.to_string()))? {
                if body.len() + chunk.len() > MAX_MANIFEST {
                    return Err(malformed(format!("larger than {MAX_MANIFEST} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
        .await
        .map_err(|_| fetch(format!("no answer within {} s", MANIFEST_TIMEOUT.as_secs())))??;
        let m: Manifest = serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))?;
        let newer = is_newer(&m.version, current).map_err(malformed)?;
        if !newer {
            return Ok(Checked::UpToDate {
                current: current.to_owned(),
                latest: m.version,
            });
        }
        let platform = platform();
        let available = m.platforms.keys().cloned().collect::<Vec<_>>().join(", ");
        let Some(entry) = m.platforms.get(&platform) else {
            return Err(UpdateError::NoPlatform {
                url,
                platform,
                available,
            });
        };
        let artifact = url::Url::parse(&entry.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| {
                malformed(format!("{platform}: `{}` is not an http(s) URL", entry.url))
            })?;
        parse_signature(&entry.signature)
            .map_err(|e| malformed(format!("{platform}: signature: {e}")))?;
        Ok(Checked::Available {
            current: current.to_owned(),
            release: Release {
                version: m.version,
                notes: m.notes,
                pub_date: m.pub_date,
                platform,
                url: artifact.to_string(),
                signature: entry.signature.clone(),
            },
        })
    }

    /// Downloads `release` into `dir`, verifying its signature as it
    /// arrives; returns the verified file's path. On any failure the
    /// partial download is deleted and `dir` is as it was.
    pub async fn download(&self, release: &Release, dir: &Path) -> Result<PathBuf, UpdateError> {
        let io = |path: &Path, source| UpdateError::Io {
            path: path.to_owned(),
            source,
        };
        crate::fsutil::create_private_dir(dir).map_err(|e| io(dir, e))?;
        let name = release.file_name();
        let dest = dir.join(&name);
        let partial = dir.join(format!(".{name}.partial"));
        let result = self.fetch_verified(release, &name, &partial).await;
        match result {
            Ok(()) => {
                tokio::fs::rename(&partial, &dest)
                    .await
                    .map_err(|e| io(&dest, e))?;
                Ok(dest)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    async fn fetch_verified(
        &self,
        release: &Release,
        name: &str,
        partial: &Path,
    ) -> Result<(), UpdateError> {
        use tokio::io::AsyncWriteExt;
        let fetch = |reason: String| UpdateError::Fetch {
            url: release.url.clone(),
            reason,
        };
        let bad = |reason: String| UpdateError::BadSignature {
            file: name.to_owned(),
            reason,
        };
        let signature = parse_signature(&release.signature).map_err(bad)?;
        let mut verifier = self
            .key
            .verify_stream(&signature)
            .map_err(|e| bad(e.to_string()))?;
        let mut file =
            tokio::fs::File::create(partial)
                .await
                .map_err(|source| UpdateError::Io {
                    path: partial.to_owned(),
                    source,
                })?;
        tokio::time::timeout(DOWNLOAD_TIMEOUT, async {
            let mut resp = self
                .http
                .get(&release.url)
                .send()
                .await
                .map_err(|e| fetch(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fetch(format!("the server answered {}", resp.status())));
            }
            let mut total = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(|e| fetch(e.to_string()))? {
                total += chunk.len() as u64;
                if total > MAX_DOWNLOAD {
                    return Err(fetch(format!("larger than {} MiB", MAX_DOWNLOAD >> 20)));
                }
                verifier.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|source| UpdateError::Io {
                        path: partial.to_owned(),
                        source,
                    })?;
            }
            Ok(())
        })
        .await
        .map_err(|_| {
            fetch(format!(
                "not finished within {} min",
                DOWNLOAD_TIMEOUT.as_secs() / 60
            ))
        })??;
        file.sync_all().await.map_err(|source| UpdateError::Io {
            path: partial.to_owned(),
            source,
        })?;
        verifier.finalize().map_err(|e| bad(e.to_string()))
    }
}

/// The agent's check: every `update.check_hours` (the configuration as it
/// is at each turn, so a reload turns it on or off), a newer release is
/// downloaded into `dir` and verified, then announced once
/// ([`Event::UpdateReady`](crate::runtime::Event::UpdateReady): a
/// notification). A failed check is logged and tried again next turn.
pub async fn run(rt: crate::runtime::Runtime, dir: PathBuf) {
    let mut announced: Option<String> = None;
    // A minute after start: the agent's first run comes first (tests set
    // WADDLEPERF_UPDATE_FIRST_CHECK_SECS).
    let first = std::env::var("WADDLEPERF_UPDATE_FIRST_CHECK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(first)) => {}
        _ = rt.closed() => return,
    }
    loop {
        let cfg = rt.config().update;
        if !cfg.manifest_url.trim().is_empty() {
            match check_and_fetch(&cfg, &dir).await {
                Ok(Some((release, path))) => {
                    if announced.as_deref() != Some(release.version.as_str()) {
                        tracing::info!(version = %release.version, path = %path.display(), "update downloaded and verified");
                        rt.emit(crate::runtime::Event::UpdateReady {
                            version: release.version.clone(),
                            path: path.display().to_string(),
                        });
                        announced = Some(release.version);
                    }
                }
                Ok(None) => tracing::debug!("no newer release"),
                Err(e) => tracing::warn!("update check: {e}"),
            }
        }
        let hours = u64::from(cfg.check_hours.max(1));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(hours * 3600)) => {}
            _ = rt.closed() => return,
        }
    }
}

/// Checks, and downloads a newer release unless a verified copy of it is
/// already in `dir`.
pub async fn check_and_fetch(
    cfg: &UpdateConfig,
    dir: &Path,
) -> Result<Option<(Release, PathBuf)>, UpdateError> {
    let updater = Updater::new(cfg)?;
    match updater.check(crate::version::VERSION).await? {
        Checked::UpToDate { .. } => Ok(None),
        Checked::Available { release, .. } => {
            let staged = dir.join(release.file_name());
            let path = if staged.is_file() {
                staged
            } else {
                updater.download(&release, dir).await?
            };
            Ok(Some((release, path)))
        }
    }
}

/// The artifact's file name from its URL's last segment, reduced to
/// characters safe in any file system; a fallback from the version.
fn file_name(url: &str, version: &str) -> String {
    let last = url::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
        .unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let clean = clean.trim_start_matches('.').to_owned();
    if clean.is_empty() {
        format!(
            "waddleperf-{}",
            version.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "")
        )
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_semver() {
        assert_eq!(is_newer("0.2.0", "0.1.0"), Ok(true));
        assert_eq!(is_newer("v0.1.10", "0.1.9"), Ok(true));
        assert_eq!(is_newer("0.1.0", "0.1.0"), Ok(false));
        assert_eq!(is_newer("0.2.0-rc.1", "0.2.0"), Ok(false));
        assert!(is_newer("latest", "0.1.0").is_err());
    }

    #[test]
    fn file_names_are_the_url_s_last_segment_made_safe() {
        assert_eq!(
            file_name("https://x.test/r/waddleperf_0.2.0_amd64.AppImage", "0.2.0"),
            "waddleperf_0.2.0_amd64.AppImage"
        );
        assert_eq!(
            file_name("https://x.test/../..%2F.bashrc", "0.2.0"),
            "2F.bashrc"
        );
        assert_eq!(file_name("https://x.test/", "0.2.0"), "waddleperf-0.2.0");
    }

    #[test]
    fn keys_in_every_form_and_a_bad_one() {
        let line = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        let file = format!("untrusted comment: minisign public key\n{line}\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&file);
        for form in [line, file.as_str(), b64.as_str()] {
            assert!(parse_public_key(form).is_ok(), "{form}");
        }
        assert!(matches!(parse_public_key(""), Err(UpdateError::NoKey)));
        assert!(matches!(
            parse_public_key("RWQnotakey"),
            Err(UpdateError::BadKey(_))
        ));
    }
}
