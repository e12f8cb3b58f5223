//! Device identity without root: host name, OS, architecture, and a stable id
//! derived from the platform's machine id, hashed with an app-specific salt so
//! the raw machine id never leaves the device.

use serde::Serialize;
use sha2::{Digest, Sha256};

const SALT: &[u8] = b"waddleperf-desktop/device-id/v1";

#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub hostname: String,
    pub os: String,
    pub os_version: String,
    pub arch: String,
    /// 64 hex characters; stable across reboots and reinstalls of the app.
    pub device_id: String,
    /// Where the id came from (`/etc/machine-id`, `IOPlatformUUID`, `MachineGuid`, or
    /// `hostname` when the platform gave nothing better).
    pub id_source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no machine id is available on this system (tried {0})")]
    NoMachineId(String),
}

impl DeviceInfo {
    pub fn detect() -> DeviceInfo {
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        let info = os_info::get();
        let (raw, source) = match machine_id() {
            Ok((id, source)) => (id, source),
            // Last resort: still stable while the host name is.
            Err(_) => (hostname.clone(), "hostname".to_owned()),
        };
        DeviceInfo {
            device_id: hash_id(&raw),
            id_source: source,
            hostname,
            os: info.os_type().to_string(),
            os_version: info.version().to_string(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// The salted SHA-256 of a raw machine id, as hex.
pub fn hash_id(raw: &str) -> String {
    let mut h = Sha256::new();
    h.update(SALT);
    h.update(raw.trim().to_ascii_lowercase().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(target_os = "linux")]
fn machine_id() -> Result<(String, String), DeviceError> {
    const PATHS: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
    for p in PATHS {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return Ok((s.to_owned(), p.to_owned()));
            }
        }
    }
    Err(DeviceError::NoMachineId(PATHS.join(", ")))
}

#[cfg(target_os = "macos")]
fn machine_id() -> Result<(String, String), DeviceError> {
    let out = std::process::Command::new("/usr/sbin/ioreg")
        .args(["-rd1", "-c", "IOPlatformExpertDevice"])
        .output()
        .map_err(|e| DeviceError::NoMachineId(format!("ioreg: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ioreg_uuid(&text)
        .map(|id| (id, "IOPlatformUUID".to_owned()))
        .ok_or_else(|| DeviceError::NoMachineId("IOPlatformUUID".into()))
}

#[cfg(target_os = "windows")]
fn machine_id() -> Result<(String, String), DeviceError> {
    let out = std::process::Command::new("reg")
        .args([
            "query",
            r"HKLM\SOFTWARE\Microsoft\Cryptography",
            "/v",
            "MachineGuid",
        ])
        .output()
        .map_err(|e| DeviceError::NoMachineId(format!("MachineGuid: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_reg_guid(&text)
        .map(|id| (id, "MachineGuid".to_owned()))
        .ok_or_else(|| DeviceError::NoMachineId("MachineGuid".into()))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn machine_id() -> Result<(String, String), DeviceError> {
    Err(DeviceError::NoMachineId(
        "no method on this platform".into(),
    ))
}

/// `"IOPlatformUUID" = "XXXXXXXX-..."` → the UUID.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn parse_ioreg_uuid(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.contains("\"IOPlatformUUID\""))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `    MachineGuid    REG_SZ    xxxxxxxx-...` → the GUID.
#[cfg_attr(not(target_os = "windows"), allow(dead_code))]
fn parse_reg_guid(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.trim_start().starts_with("MachineGuid"))
        .and_then(|l| l.split_whitespace().nth(2))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_salted_and_hex() {
        let a = hash_id("0123abcd");
        assert_eq!(a, hash_id(" 0123ABCD\n"), "trimmed and case-folded");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, hash_id("0123abce"));
        // Salted: not the bare SHA-256 of the id.
        let bare: String = Sha256::digest(b"0123abcd")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(a, bare);
    }

    #[test]
    fn detect_is_repeatable() {
        let a = DeviceInfo::detect();
        let b = DeviceInfo::detect();
        assert_eq!(a.device_id, b.device_id);
        assert!(!a.hostname.is_empty());
        assert_eq!(a.arch, std::env::consts::ARCH);
    }

    #[test]
    fn parses_platform_outputs() {
        let ioreg = "+-o J314sAP  <class IOPlatformExpertDevice>\n    {\n      \"IOPlatformUUID\" = \"5A4E2C1B-0000-1111-2222-333344445555\"\n    }";
        assert_eq!(
            parse_ioreg_uuid(ioreg).unwrap(),
            "5A4E2C1B-0000-1111-2222-333344445555"
        );
        let reg = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography\r\n    MachineGuid    REG_SZ    6f1c2b3a-aaaa-bbbb-cccc-0123456789ab\r\n";
        assert_eq!(
            parse_reg_guid(reg).unwrap(),
            "6f1c2b3a-aaaa-bbbb-cccc-0123456789ab"
        );
        assert!(parse_reg_guid("nothing").is_none());
    }
}
