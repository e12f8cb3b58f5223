// No console window next to the tray on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    waddleperf_engine::version::set_client("waddleperf-tray");
    let launch = match waddleperf_tray::Launch::parse(std::env::args(), true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("waddleperf-tray: {e}");
            eprintln!(
                "usage: waddleperf-tray [--show [overview|history|settings]] [--autostart] \
                 [--config PATH] [--db PATH] [--log-dir DIR]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match waddleperf_tray::run(launch) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waddleperf-tray: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
