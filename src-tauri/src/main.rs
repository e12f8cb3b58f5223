// No console window next to the window app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    waddleperf_engine::version::set_client("waddleperf-desktop");
    let launch = match waddleperf_desktop::Launch::parse(std::env::args(), true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("waddleperf-desktop: {e}");
            eprintln!(
                "usage: waddleperf-desktop [--show [overview|history|settings]] [--autostart] \
                 [--config PATH] [--db PATH] [--log-dir DIR]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match waddleperf_desktop::run(launch) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waddleperf-desktop: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
