//! A private D-Bus session bus (dbus-daemon) and, on it, a real Secret
//! Service (gnome-keyring) unlocked with a test password: the keychain the
//! desktop session of a Linux user has.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SessionBus {
    child: Child,
    pub address: String,
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running gnome-keyring; stopped when dropped.
pub struct Keyring {
    child: Child,
    pub data: PathBuf,
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SessionBus {
    pub fn start() -> SessionBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            // Activated services (portals, the accessibility bus) log there.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus) is needed");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        SessionBus {
            child,
            address: line.trim().to_owned(),
        }
    }

    /// Whether a name has an owner on this bus.
    fn has_owner(&self, name: &str) -> bool {
        let o = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                &format!("string:{name}"),
            ])
            .output()
            .expect("dbus-send (package dbus) is needed");
        String::from_utf8_lossy(&o.stdout).contains("boolean true")
    }

    /// gnome-keyring's Secret Service, its login keyring created and
    /// unlocked with a test password, its files under `root`.
    pub fn start_keyring(&self, root: &Path) -> Keyring {
        let data = root.join("keyring-data");
        let run = root.join("keyring-run");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut child = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--foreground"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", &run)
            .env("HOME", root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (package gnome-keyring) is needed");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"test-keyring-password").unwrap();
        drop(stdin);
        let t = Instant::now();
        while !self.has_owner("org.freedesktop.secrets") {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "gnome-keyring did not take org.freedesktop.secrets"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Keyring { child, data }
    }

    /// `secret-tool ARGS` on this bus: its output (stdout and stderr).
    pub fn secret_tool(&self, args: &[&str]) -> String {
        let o = Command::new("secret-tool")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(args)
            .output()
            .expect("secret-tool (package libsecret-tools) is needed");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}
