//! Where the sign-in tokens live: the OS keychain (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows) through `keyring`, or,
//! only where no keychain service answers (headless Linux), a file readable
//! by its owner alone (0600). The password is never stored, and no token is
//! ever logged.

use super::api::Tokens;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keychain service name entries are filed under.
pub const SERVICE: &str = "io.penguintech.waddleperf";

/// How long a keychain call may take before it counts as unavailable (a
/// session bus with no secret service can hold a call for the D-Bus timeout).
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum SecretStoreKind {
    Keychain,
    File,
}

pub use crate::config::SecretPreference;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    #[error("the system keychain is not available: {0}")]
    KeychainUnavailable(String),
    #[error("the system keychain refused: {0}")]
    Keychain(String),
    #[error("secrets file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Where a session was saved, and why there when it is the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub kind: SecretStoreKind,
    /// Why the file was used (the keychain's failure), for the user.
    pub note: Option<String>,
}

/// The token stores of one data directory.
#[derive(Debug, Clone)]
pub struct Secrets {
    file: PathBuf,
}

impl Secrets {
    pub fn new(data_dir: &Path) -> Secrets {
        Secrets {
            file: data_dir.join("secrets.json"),
        }
    }

    /// The fallback file's path.
    pub fn file_path(&self) -> &Path {
        &self.file
    }

    /// Saves a session's tokens under `key`, where `pref` says.
    pub async fn save(
        &self,
        key: &str,
        tokens: &Tokens,
        pref: SecretPreference,
    ) -> Result<Saved, SecretError> {
        let text = serde_json::to_string(tokens).map_err(|e| SecretError::File {
            path: self.file.clone(),
            message: e.to_string(),
        })?;
        if pref != SecretPreference::File {
            match keychain::set(key, &text).await {
                Ok(()) => {
                    // A session saved before in the file must not linger there.
                    let _ = self.file_remove(key);
                    return Ok(Saved {
                        kind: SecretStoreKind::Keychain,
                        note: None,
                    });
                }
                Err(SecretError::KeychainUnavailable(why)) if pref == SecretPreference::Auto => {
                    tracing::warn!(
                        "no keychain ({why}); the session goes to {} (0600)",
                        self.file.display()
                    );
                    self.file_set(key, &text)?;
                    return Ok(Saved {
                        kind: SecretStoreKind::File,
                        note: Some(why),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        self.file_set(key, &text)?;
        Ok(Saved {
            kind: SecretStoreKind::File,
            note: None,
        })
    }

    /// The tokens saved under `key`, `None` when there are none.
    pub async fn load(
        &self,
        key: &str,
        kind: SecretStoreKind,
    ) -> Result<Option<Tokens>, SecretError> {
        let text = match kind {
            SecretStoreKind::Keychain => keychain::get(key).await?,
            SecretStoreKind::File => self.file_read()?.remove(key),
        };
        let Some(text) = text else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SecretError::File {
                path: self.file.clone(),
                message: format!("the saved session is damaged: {e}"),
            })
    }

    /// Forgets `key` (no error when it is already gone).
    pub async fn delete(&self, key: &str, kind: SecretStoreKind) -> Result<(), SecretError> {
        match kind {
            SecretStoreKind::Keychain => keychain::delete(key).await,
            SecretStoreKind::File => self.file_remove(key),
        }
    }

    fn file_err(&self, message: impl std::fmt::Display) -> SecretError {
        SecretError::File {
            path: self.file.clone(),
            message: message.to_string(),
        }
    }

    fn file_read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.file_err(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&self.file) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        "{} was readable by others; setting it to 0600",
                        self.file.display()
                    );
                    std::fs::set_permissions(&self.file, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| self.file_err(e))?;
                }
            }
        }
        serde_json::from_str(&text).map_err(|e| self.file_err(format!("not valid JSON: {e}")))
    }

    fn file_set(&self, key: &str, value: &str) -> Result<(), SecretError> {
        let mut all = self.file_read()?;
        all.insert(key.to_owned(), value.to_owned());
        self.file_write(&all)
    }

    fn file_remove(&self, key: &str) -> Result<(), SecretError> {
        let mut all = self.file_read()?;
        if all.remove(key).is_none() {
            return Ok(());
        }
        if all.is_empty() {
            return std::fs::remove_file(&self.file).map_err(|e| self.file_err(e));
        }
        self.file_write(&all)
    }

    /// Writes a new file created 0600 and renames it over the old one, so a
    /// crash leaves the old or the new file, never a half-written one.
    fn file_write(&self, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let text = serde_json::to_string_pretty(all).map_err(|e| self.file_err(e))?;
        crate::fsutil::write_atomically(&self.file, crate::fsutil::Access::Private, |w| {
            w.write_all(text.as_bytes())
        })
        .map_err(|e| self.file_err(e))
    }
}

#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod keychain {
    use super::{SecretError, KEYCHAIN_TIMEOUT, SERVICE};

    /// Runs a keychain call on a blocking thread, bounded in time.
    async fn call<T: Send + 'static>(
        f: impl FnOnce() -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, SecretError> {
        match tokio::time::timeout(KEYCHAIN_TIMEOUT, tokio::task::spawn_blocking(f)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(SecretError::Keychain(e.to_string())),
            Err(_) => Err(SecretError::KeychainUnavailable(format!(
                "no answer within {} s",
                KEYCHAIN_TIMEOUT.as_secs()
            ))),
        }
    }

    fn classify(e: keyring::Error) -> SecretError {
        match e {
            keyring::Error::PlatformFailure(e) => SecretError::KeychainUnavailable(e.to_string()),
            keyring::Error::NoStorageAccess(e) => SecretError::KeychainUnavailable(e.to_string()),
            other => SecretError::Keychain(other.to_string()),
        }
    }

    pub async fn set(key: &str, text: &str) -> Result<(), SecretError> {
        let (key, text) = (key.to_owned(), text.to_owned());
        call(move || keyring::Entry::new(SERVICE, &key)?.set_password(&text))
            .await?
            .map_err(classify)
    }

    pub async fn get(key: &str) -> Result<Option<String>, SecretError> {
        let key = key.to_owned();
        match call(move || keyring::Entry::new(SERVICE, &key)?.get_password()).await? {
            Ok(t) => Ok(Some(t)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    pub async fn delete(key: &str) -> Result<(), SecretError> {
        let key = key.to_owned();
        match call(move || keyring::Entry::new(SERVICE, &key)?.delete_credential()).await? {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Platforms without a keychain backend: the 0600 file only.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod keychain {
    use super::SecretError;

    fn none() -> SecretError {
        SecretError::KeychainUnavailable("no keychain backend on this platform".into())
    }

    pub async fn set(_key: &str, _text: &str) -> Result<(), SecretError> {
        Err(none())
    }

    pub async fn get(_key: &str) -> Result<Option<String>, SecretError> {
        Err(none())
    }

    pub async fn delete(_key: &str) -> Result<(), SecretError> {
        Err(none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            access_token: "a.b.c".into(),
            refresh_token: "r.s.t".into(),
            user_id: 7,
        }
    }

    #[tokio::test]
    async fn file_store_is_owner_only_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::new(dir.path());
        let saved = s
            .save("k1", &tokens(), SecretPreference::File)
            .await
            .unwrap();
        assert_eq!(saved.kind, SecretStoreKind::File);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.file_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            s.load("k1", SecretStoreKind::File).await.unwrap(),
            Some(tokens())
        );
        assert_eq!(s.load("k2", SecretStoreKind::File).await.unwrap(), None);
        s.delete("k1", SecretStoreKind::File).await.unwrap();
        assert!(!s.file_path().exists());
        s.delete("k1", SecretStoreKind::File).await.unwrap();
    }

    #[tokio::test]
    async fn a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::new(dir.path());
        std::fs::write(s.file_path(), "{not json").unwrap();
        let e = s.load("k", SecretStoreKind::File).await.unwrap_err();
        assert!(e.to_string().contains("secrets.json"), "{e}");
    }

    /// The real keychain of the platform (run on the macOS and Windows CI
    /// runners; Linux's Secret Service is tested in tests/sync_cli.rs).
    #[cfg(any(target_os = "macos", windows))]
    #[tokio::test]
    async fn native_keychain_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::new(dir.path());
        let key = format!("test-{}", uuid::Uuid::now_v7());
        let saved = s
            .save(&key, &tokens(), SecretPreference::Keychain)
            .await
            .unwrap();
        assert_eq!(saved.kind, SecretStoreKind::Keychain);
        assert!(!s.file_path().exists());
        assert_eq!(
            s.load(&key, SecretStoreKind::Keychain).await.unwrap(),
            Some(tokens())
        );
        s.delete(&key, SecretStoreKind::Keychain).await.unwrap();
        assert_eq!(s.load(&key, SecretStoreKind::Keychain).await.unwrap(), None);
    }
}
