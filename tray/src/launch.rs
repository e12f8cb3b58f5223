//! How the agent was started: its command line.

use crate::menu::Page;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    /// Open the window on this page at start (`--show [PAGE]`).
    pub show: Option<Page>,
    /// Started by the login item: stay in the tray, even when another agent
    /// already runs (nothing to open then).
    pub autostart: bool,
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
}

impl Launch {
    /// Parses the command line (program name first). Unknown arguments are
    /// an error naming them.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Launch, String> {
        let mut it = args.into_iter().skip(1).peekable();
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut l = Launch {
            config: env("WADDLEPERF_CONFIG"),
            db: env("WADDLEPERF_DB"),
            log_dir: env("WADDLEPERF_LOG_DIR"),
            ..Launch::default()
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
                    let page = match inline
                        .clone()
                        .or_else(|| it.next_if(|n| !n.starts_with("--")))
                    {
                        Some(p) => Page::parse(&p).ok_or_else(|| {
                            format!("--show: `{p}` is not a page (overview, history, settings)")
                        })?,
                        None => Page::Overview,
                    };
                    l.show = Some(page);
                }
                "--config" => l.config = Some(value("--config")?.into()),
                "--db" => l.db = Some(value("--db")?.into()),
                "--log-dir" => l.log_dir = Some(value("--log-dir")?.into()),
                "--autostart" => l.autostart = true,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(l)
    }

    /// The `--config`, `--db` and `--log-dir` the window is started with,
    /// so it finds this agent's socket.
    pub fn path_args(&self) -> Vec<std::ffi::OsString> {
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

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("waddleperf-tray")
            .chain(a.iter().copied())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn launch_arguments() {
        assert_eq!(Launch::parse(args(&[])).map(|l| l.show), Ok(None));
        assert_eq!(
            Launch::parse(args(&["--show"])).map(|l| l.show),
            Ok(Some(Page::Overview))
        );
        assert_eq!(
            Launch::parse(args(&["--show", "history"])).map(|l| l.show),
            Ok(Some(Page::History))
        );
        let l = Launch::parse(args(&["--show=settings", "--autostart"]));
        assert_eq!(
            l.map(|l| (l.show, l.autostart)),
            Ok((Some(Page::Settings), true))
        );
        let l = Launch::parse(args(&["--show", "--db", "/tmp/x.db"]));
        assert_eq!(l.as_ref().map(|l| l.show), Ok(Some(Page::Overview)));
        assert_eq!(
            l.map(|l| l.path_args()),
            Ok(vec!["--db".into(), "/tmp/x.db".into()])
        );
        assert_eq!(
            Launch::parse(args(&["--show", "charts"])).err(),
            Some("--show: `charts` is not a page (overview, history, settings)".into())
        );
        assert_eq!(
            Launch::parse(args(&["--frobnicate"])).err(),
            Some("unknown argument `--frobnicate`".into())
        );
        assert_eq!(
            Launch::parse(args(&["--config"])).err(),
            Some("--config needs a value".into())
        );
    }
}
