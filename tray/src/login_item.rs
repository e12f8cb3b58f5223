//! Start at login: the platform's login item for this executable with
//! `--autostart` (an XDG autostart entry on Linux, a launch agent on macOS,
//! the Run key on Windows).

use auto_launch::{AutoLaunch, AutoLaunchBuilder, MacOSLaunchMode};

pub struct LoginItem(Result<AutoLaunch, String>);

impl LoginItem {
    /// The login item of the running executable; in an AppImage, of the
    /// AppImage (the program's own path is inside its mount, gone when it
    /// ends).
    pub fn new() -> LoginItem {
        let appimage = std::env::var_os("APPIMAGE")
            .map(std::path::PathBuf::from)
            .filter(|p| cfg!(target_os = "linux") && p.is_file());
        let made = appimage
            .map(Ok)
            .unwrap_or_else(std::env::current_exe)
            .map_err(|e| format!("cannot find this program's path: {e}"))
            .and_then(|exe| {
                let exe = exe
                    .to_str()
                    .ok_or_else(|| format!("the program's path {} is not UTF-8", exe.display()))?
                    .to_owned();
                AutoLaunchBuilder::new()
                    .set_app_name("WaddlePerf")
                    .set_app_path(&exe)
                    .set_macos_launch_mode(MacOSLaunchMode::LaunchAgent)
                    .set_args(&["--autostart"])
                    .build()
                    .map_err(|e| e.to_string())
            });
        LoginItem(made)
    }

    pub fn enabled(&self) -> Result<bool, String> {
        let a = self.0.as_ref().map_err(Clone::clone)?;
        a.is_enabled().map_err(|e| e.to_string())
    }

    pub fn set(&self, on: bool) -> Result<(), String> {
        let a = self.0.as_ref().map_err(Clone::clone)?;
        let r = if on { a.enable() } else { a.disable() };
        r.map_err(|e| format!("start at login could not be changed: {e}"))
    }
}

impl Default for LoginItem {
    fn default() -> Self {
        LoginItem::new()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// An XDG autostart entry appears and goes in the user's config folder.
    #[test]
    fn the_login_item_is_an_autostart_entry() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        // The crate finds the folder from $HOME: this one test of the
        // binary sets it.
        std::env::set_var("HOME", home.path());
        let item = LoginItem::new();
        assert!(!item.enabled()?);
        item.set(true)?;
        assert!(item.enabled()?);
        let entry =
            std::fs::read_to_string(home.path().join(".config/autostart/WaddlePerf.desktop"))?;
        assert!(entry.contains("--autostart"), "{entry}");
        item.set(false)?;
        assert!(!item.enabled()?);
        Ok(())
    }
}
