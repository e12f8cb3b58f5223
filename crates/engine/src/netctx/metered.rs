//! Whether the OS marks the connection metered. Linux: NetworkManager's
//! `Metered` property on the system bus (where NetworkManager runs);
//! Windows: the internet connection profile's cost.

use std::time::Duration;

/// NetworkManager's answer within this, or none.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const WAIT: Duration = Duration::from_secs(2);

/// `Some(true)` when the OS says the connection is metered (or guesses so),
/// `Some(false)` when it says it is not, `None` when it does not say.
pub async fn metered() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        match tokio::time::timeout(WAIT, network_manager()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!("NetworkManager does not say whether the link is metered: {e}");
                None
            }
            Err(_) => None,
        }
    }
    #[cfg(windows)]
    {
        tokio::task::spawn_blocking(connection_cost)
            .await
            .ok()
            .flatten()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        None
    }
}

/// Whether this is Wine rather than Windows: Wine's WinRT networking is a
/// stub that aborts the process when called.
#[cfg(windows)]
#[allow(unsafe_code)]
fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: constant NUL-terminated names; ntdll stays loaded for the
    // process's life and no handle is kept.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// Windows: the internet connection profile's cost. Fixed or variable
/// (pay per byte or capped), roaming, or over its data limit: metered;
/// unrestricted: not. Not asked under Wine.
#[cfg(windows)]
fn connection_cost() -> Option<bool> {
    use windows::Networking::Connectivity::{NetworkCostType, NetworkInformation};
    if under_wine() {
        return None;
    }
    let cost = NetworkInformation::GetInternetConnectionProfile()
        .ok()?
        .GetConnectionCost()
        .ok()?;
    let kind = cost.NetworkCostType().ok()?;
    let roaming = cost.Roaming().unwrap_or(false);
    let over = cost.OverDataLimit().unwrap_or(false);
    if kind == NetworkCostType::Fixed || kind == NetworkCostType::Variable || roaming || over {
        Some(true)
    } else if kind == NetworkCostType::Unrestricted {
        Some(false)
    } else {
        None
    }
}

/// NMMetered: 0 unknown, 1 yes, 2 no, 3 guessed yes, 4 guessed no.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn from_nm(v: u32) -> Option<bool> {
    match v {
        1 | 3 => Some(true),
        2 | 4 => Some(false),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
async fn network_manager() -> zbus::Result<Option<bool>> {
    let conn = zbus::Connection::system().await?;
    let proxy = zbus::Proxy::new(
        &conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager",
        "org.freedesktop.NetworkManager",
    )
    .await?;
    let v: u32 = proxy.get_property("Metered").await?;
    Ok(from_nm(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn network_managers_answers() {
        assert_eq!(super::from_nm(1), Some(true));
        assert_eq!(super::from_nm(3), Some(true));
        assert_eq!(super::from_nm(2), Some(false));
        assert_eq!(super::from_nm(4), Some(false));
        assert_eq!(super::from_nm(0), None);
        assert_eq!(super::from_nm(99), None);
    }
}
