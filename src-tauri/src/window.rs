//! The window: opened on a page (made once, shown again), hidden when the
//! person closes it, and the process ended after a grace period unless it
//! is opened again meanwhile: a quick reopen is instant, and a closed
//! window leaves no WebKit process behind for long.

use crate::shell::WINDOW;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

/// How long the process outlives its closed window by default.
pub const GRACE: Duration = Duration::from_secs(10);

/// The grace period: `WADDLEPERF_WINDOW_GRACE_SECS` (whole seconds), else
/// [`GRACE`].
pub fn grace() -> Duration {
    std::env::var("WADDLEPERF_WINDOW_GRACE_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(GRACE)
}

/// Counts opens and closes: a pending exit goes ahead only if nothing
/// happened to the window since it was scheduled.
#[derive(Default)]
pub struct Lifecycle {
    generation: AtomicU64,
}

impl Lifecycle {
    /// Something happened to the window; returns the new generation.
    pub fn touch(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn unchanged_since(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }
}

/// Shows the window on `page`, creating it if there is none.
pub fn open_window(app: &AppHandle, page: &str) {
    if let Some(life) = app.try_state::<Arc<Lifecycle>>() {
        life.touch();
    }
    if let Some(w) = app.get_webview_window(WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        let _ = w.emit("navigate", page);
        return;
    }
    let start = format!("window.__WADDLEPERF_PAGE__ = {page:?};");
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("WaddlePerf")
        .inner_size(1120.0, 780.0)
        .min_inner_size(640.0, 480.0)
        .initialization_script(&start)
        .build();
    match built {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => {
            tracing::error!("cannot open the window: {e}");
            app.exit(1);
        }
    }
}

/// The person closed the window: hide it, and end the process after the
/// grace period unless it is opened again.
pub fn closed(app: &AppHandle, window: &tauri::Window) {
    let _ = window.hide();
    let Some(life) = app.try_state::<Arc<Lifecycle>>().map(|l| Arc::clone(&l)) else {
        app.exit(0);
        return;
    };
    let generation = life.touch();
    let grace = grace();
    tracing::info!("window closed; the process ends in {grace:?} unless it is opened again");
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(grace).await;
        if life.unchanged_since(generation) {
            tracing::info!("window closed for {grace:?}: ending");
            app.exit(0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopen_cancels_the_pending_exit() {
        let life = Lifecycle::default();
        let closed = life.touch();
        assert!(life.unchanged_since(closed));
        life.touch(); // opened again
        assert!(!life.unchanged_since(closed));
    }
}
