//! The desktop programs' command line: the agent with its tray
//! (`waddleperf-tray`) and the window (`waddleperf-desktop`) take the same
//! page to show and the same files, so each finds the other's socket.

use crate::config::Paths;
use std::ffi::OsString;
use std::path::PathBuf;

/// The window's pages.
pub const PAGES: [&str; 4] = ["overview", "history", "diagnostics", "settings"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopArgs {
    /// The page to open (`--show [PAGE]`, the Overview when it is not
    /// named); `None` without `--show`.
    pub show: Option<String>,
    /// Started by the login item (`--autostart`, the agent's only).
    pub autostart: bool,
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
}

impl DesktopArgs {
    /// Parses a command line (program name first); `WADDLEPERF_CONFIG`,
    /// `WADDLEPERF_DB` and `WADDLEPERF_LOG_DIR` are the defaults of the
    /// files. `--autostart` is accepted where `autostart` says so. An unknown
    /// argument or a missing value is an error naming it.
    pub fn parse<I: IntoIterator<Item = String>>(
        args: I,
        autostart: bool,
    ) -> Result<DesktopArgs, String> {
        let mut it = args.into_iter().skip(1).peekable();
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut l = DesktopArgs {
            config: env("WADDLEPERF_CONFIG"),
            db: env("WADDLEPERF_DB"),
            log_dir: env("WADDLEPERF_LOG_DIR"),
            ..DesktopArgs::default()
        };
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (a.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--show" => {
                    let page = inline
                        .clone()
                        .or_else(|| it.next_if(|n| !n.starts_with("--")))
                        .unwrap_or_else(|| "overview".to_owned());
                    if !PAGES.contains(&page.as_str()) {
                        return Err(format!(
                            "--show: `{page}` is not a page (overview, history, settings)"
                        ));
                    }
                    l.show = Some(page);
                }
                "--config" => l.config = Some(value("--config")?.into()),
                "--db" => l.db = Some(value("--db")?.into()),
                "--log-dir" => l.log_dir = Some(value("--log-dir")?.into()),
                "--autostart" if autostart => l.autostart = true,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(l)
    }

    /// The page to open: the one `--show` named, else the Overview.
    pub fn page(&self) -> &str {
        self.show.as_deref().unwrap_or("overview")
    }

    /// The files, resolved as the CLI resolves them.
    pub fn paths(&self) -> Paths {
        Paths::resolve(self.config.clone(), self.db.clone(), self.log_dir.clone())
    }

    /// `--config`, `--db` and `--log-dir` as given, for the other program.
    pub fn path_args(&self) -> Vec<OsString> {
        let mut a = Vec::new();
        for (flag, p) in [
            ("--config", &self.config),
            ("--db", &self.db),
            ("--log-dir", &self.log_dir),
        ] {
            if let Some(p) = p {
                a.push(flag.into());
                a.push(p.clone().into_os_string());
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str], autostart: bool) -> Result<DesktopArgs, String> {
        let args = std::iter::once("waddleperf-tray")
            .chain(a.iter().copied())
            .map(str::to_owned);
        DesktopArgs::parse(args, autostart)
    }

    #[test]
    fn desktop_arguments() {
        assert_eq!(parse(&[], true).map(|l| l.show), Ok(None));
        assert_eq!(
            parse(&["--show"], true).map(|l| l.show),
            Ok(Some("overview".into()))
        );
        assert_eq!(
            parse(&["--show", "history"], true).map(|l| l.show),
            Ok(Some("history".into()))
        );
        let l = parse(&["--show=settings", "--autostart"], true);
        assert_eq!(
            l.map(|l| (l.page().to_owned(), l.autostart)),
            Ok(("settings".to_owned(), true))
        );
        // The window has no login item.
        assert_eq!(
            parse(&["--autostart"], false).err(),
            Some("unknown argument `--autostart`".into())
        );
        let l = parse(&["--show", "--db", "/tmp/x.db"], false);
        assert_eq!(l.as_ref().map(|l| l.page()), Ok("overview"));
        assert_eq!(
            l.map(|l| l.path_args()),
            Ok(vec!["--db".into(), "/tmp/x.db".into()])
        );
        assert_eq!(
            parse(&["--show", "charts"], true).err(),
            Some("--show: `charts` is not a page (overview, history, settings)".into())
        );
        assert_eq!(
            parse(&["--frobnicate"], true).err(),
            Some("unknown argument `--frobnicate`".into())
        );
        assert_eq!(
            parse(&["--config"], true).err(),
            Some("--config needs a value".into())
        );
    }
}
