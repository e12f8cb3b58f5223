//! The tray menu: item ids, and what each does. The actions talk to the
//! runtime handle and to a [`Desktop`] (windows, start at login, quit), so
//! they are tested by id without a GUI.

use waddleperf_engine::runtime::Runtime;

/// Menu item ids.
pub mod id {
    pub const STATUS: &str = "status";
    pub const RUN_NOW: &str = "run_now";
    pub const SPEED_TEST: &str = "speed_test";
    pub const PAUSE_RESUME: &str = "pause_resume";
    pub const OPEN: &str = "open";
    pub const SETTINGS: &str = "settings";
    pub const AUTOSTART: &str = "autostart";
    pub const QUIT: &str = "quit";
}

/// A page of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    History,
    Settings,
}

impl Page {
    pub fn as_str(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::History => "history",
            Page::Settings => "settings",
        }
    }

    pub fn parse(s: &str) -> Option<Page> {
        match s {
            "overview" => Some(Page::Overview),
            "history" => Some(Page::History),
            "settings" => Some(Page::Settings),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    RunNow,
    /// The bandwidth servers, download then upload; the window's Overview
    /// shows it live.
    SpeedTest,
    /// Pause when running on schedule, resume when paused.
    TogglePause,
    Open(Page),
    ToggleAutostart,
    Quit,
}

impl MenuAction {
    /// The action of a menu item; `None` for the status line and unknown ids.
    pub fn from_id(id: &str) -> Option<MenuAction> {
        match id {
            id::RUN_NOW => Some(MenuAction::RunNow),
            id::SPEED_TEST => Some(MenuAction::SpeedTest),
            id::PAUSE_RESUME => Some(MenuAction::TogglePause),
            id::OPEN => Some(MenuAction::Open(Page::History)),
            id::SETTINGS => Some(MenuAction::Open(Page::Settings)),
            id::AUTOSTART => Some(MenuAction::ToggleAutostart),
            id::QUIT => Some(MenuAction::Quit),
            _ => None,
        }
    }
}

/// What the actions need from the desktop besides the runtime.
pub trait Desktop: Send + Sync {
    fn open(&self, page: Page);
    fn autostart_enabled(&self) -> Result<bool, String>;
    fn set_autostart(&self, on: bool) -> Result<(), String>;
    /// Ends the app (after the runtime has stopped).
    fn quit(&self);
    /// Tells the person something went wrong (a notification).
    fn report(&self, message: &str);
}

/// Runs `action`. Runs and quitting take time: the caller spawns this.
pub async fn perform(action: MenuAction, rt: &Runtime, desktop: &dyn Desktop) {
    match action {
        MenuAction::RunNow => {
            if let Err(e) = rt.run_now().await {
                desktop.report(&format!("The tests could not run: {e}"));
            }
        }
        MenuAction::SpeedTest => {
            desktop.open(Page::Overview);
            if let Err(e) = rt.speed_test().await {
                desktop.report(&format!("The speed test could not run: {e}"));
            }
        }
        MenuAction::TogglePause => {
            let result = match rt.is_paused().await {
                Ok(true) => rt.resume().await,
                Ok(false) => rt.pause().await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                desktop.report(&format!("Monitoring could not be paused or resumed: {e}"));
            }
        }
        MenuAction::Open(page) => desktop.open(page),
        MenuAction::ToggleAutostart => {
            let result = desktop
                .autostart_enabled()
                .and_then(|on| desktop.set_autostart(!on));
            if let Err(e) = result {
                desktop.report(&format!("Start at login could not be changed: {e}"));
            }
        }
        MenuAction::Quit => {
            rt.shutdown(crate::QUIT_GRACE).await;
            desktop.quit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use waddleperf_engine::config::Config;
    use waddleperf_engine::runtime::Event;
    use waddleperf_engine::store::Store;

    #[derive(Default)]
    struct Recorder {
        opened: Mutex<Vec<Page>>,
        autostart: Mutex<bool>,
        quit: Mutex<bool>,
        reports: Mutex<Vec<String>>,
    }

    impl Desktop for Recorder {
        fn open(&self, page: Page) {
            if let Ok(mut o) = self.opened.lock() {
                o.push(page);
            }
        }
        fn autostart_enabled(&self) -> Result<bool, String> {
            self.autostart.lock().map(|a| *a).map_err(|e| e.to_string())
        }
        fn set_autostart(&self, on: bool) -> Result<(), String> {
            let mut a = self.autostart.lock().map_err(|e| e.to_string())?;
            *a = on;
            Ok(())
        }
        fn quit(&self) {
            if let Ok(mut q) = self.quit.lock() {
                *q = true;
            }
        }
        fn report(&self, message: &str) {
            if let Ok(mut r) = self.reports.lock() {
                r.push(message.to_owned());
            }
        }
    }

    /// A runtime over an in-memory store whose one test is a closed port on
    /// loopback (refused at once: a real, fast result).
    fn runtime() -> Result<Runtime, Box<dyn std::error::Error>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cfg = Config::parse(
            &format!("[[suite.tcp]]\ntarget = \"127.0.0.1:{port}\"\n"),
            "test",
        )?;
        Ok(Runtime::new(Store::open_in_memory()?, cfg))
    }

    #[test]
    fn every_item_id_maps_to_its_action() {
        assert_eq!(MenuAction::from_id("run_now"), Some(MenuAction::RunNow));
        assert_eq!(
            MenuAction::from_id("speed_test"),
            Some(MenuAction::SpeedTest)
        );
        assert_eq!(
            MenuAction::from_id("pause_resume"),
            Some(MenuAction::TogglePause)
        );
        assert_eq!(
            MenuAction::from_id("open"),
            Some(MenuAction::Open(Page::History))
        );
        assert_eq!(
            MenuAction::from_id("settings"),
            Some(MenuAction::Open(Page::Settings))
        );
        assert_eq!(
            MenuAction::from_id("autostart"),
            Some(MenuAction::ToggleAutostart)
        );
        assert_eq!(MenuAction::from_id("quit"), Some(MenuAction::Quit));
        assert_eq!(MenuAction::from_id("status"), None);
        assert_eq!(MenuAction::from_id("nonsense"), None);
        for p in [Page::Overview, Page::History, Page::Settings] {
            assert_eq!(Page::parse(p.as_str()), Some(p));
        }
    }

    #[tokio::test]
    async fn run_now_runs_the_suite_and_stores_it() -> Result<(), Box<dyn std::error::Error>> {
        let rt = runtime()?;
        let mut events = rt.subscribe();
        let d = Recorder::default();
        perform(MenuAction::RunNow, &rt, &d).await;
        let status = rt.status().await?;
        assert_eq!(status.store.results, 1);
        assert_eq!(status.last_run.map(|l| l.total), Some(1));
        let mut saw_start = false;
        while let Ok(ev) = events.try_recv() {
            saw_start |= matches!(ev, Event::RunStarted { .. });
        }
        assert!(saw_start);
        assert!(d.reports.lock().map(|r| r.is_empty()).unwrap_or(false));
        Ok(())
    }

    #[tokio::test]
    async fn pause_resume_toggles_and_persists() -> Result<(), Box<dyn std::error::Error>> {
        let rt = runtime()?;
        let d = Recorder::default();
        perform(MenuAction::TogglePause, &rt, &d).await;
        assert!(rt.is_paused().await?);
        assert!(rt.status().await?.paused);
        perform(MenuAction::TogglePause, &rt, &d).await;
        assert!(!rt.is_paused().await?);
        Ok(())
    }

    #[tokio::test]
    async fn open_settings_autostart_and_quit() -> Result<(), Box<dyn std::error::Error>> {
        let rt = runtime()?;
        let d = Recorder::default();
        perform(MenuAction::Open(Page::History), &rt, &d).await;
        perform(MenuAction::Open(Page::Settings), &rt, &d).await;
        assert_eq!(
            *d.opened.lock().map_err(|e| e.to_string())?,
            vec![Page::History, Page::Settings]
        );
        perform(MenuAction::ToggleAutostart, &rt, &d).await;
        assert!(d.autostart_enabled()?);
        perform(MenuAction::ToggleAutostart, &rt, &d).await;
        assert!(!d.autostart_enabled()?);

        perform(MenuAction::Quit, &rt, &d).await;
        assert!(*d.quit.lock().map_err(|e| e.to_string())?);
        assert!(rt.is_closing());
        // After quitting, no new run starts.
        assert!(rt.run_now().await.is_err());
        Ok(())
    }
}
