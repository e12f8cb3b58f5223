/// The commands the UI may call: each gets an `allow-<name>` permission,
/// and `capabilities/main.json` grants exactly these to the window.
const COMMANDS: &[&str] = &[
    "app_info",
    "status",
    "run_now",
    "speed_test",
    "pause",
    "resume",
    "history",
    "targets",
    "series",
    "events",
    "settings_get",
    "settings_set",
    "export",
    "set_autostart",
    "account",
    "login",
    "logout",
    "enroll",
    "sync_now",
    "retry_dead",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri-build: {e:#}");
    }
}
