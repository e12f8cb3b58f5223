//! Desktop notifications: on health changes, escalations and connectivity
//! only (never for every run), rate-limited, each saying what changed in
//! plain words.
//!
//! The health changes of one run are gathered and shown as one notification
//! when the run finishes, so twenty targets going down at once is one message.
//! A subject (a target, AutoPerf, connectivity) is notified at most once per
//! `notifications.min_interval_minutes`; what is held back is logged.

use crate::autoperf::Health;
use crate::runtime::{Event, Runtime};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Where notifications go.
pub trait Sink: Send + Sync + 'static {
    /// Shows one notification; an error says why it could not be shown.
    fn show(&self, title: &str, body: &str) -> Result<(), String>;
}

/// The platform's notification service (D-Bus on Linux and the BSDs,
/// Notification Center on macOS, toasts on Windows) through notify-rust.
pub struct DesktopSink;

impl Sink for DesktopSink {
    fn show(&self, title: &str, body: &str) -> Result<(), String> {
        let mut n = notify_rust::Notification::new();
        n.appname("WaddlePerf").summary(title).body(body);
        #[cfg(windows)]
        if let Some(id) = windows_app_id() {
            n.app_id(id);
        }
        n.show().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The AppUserModelID toasts go out under: the installed app's (its
/// Start-menu shortcut carries the bundle identifier, so Windows shows
/// WaddlePerf's name and icon), when this program is installed beside the
/// window; else notify-rust's default, which needs no shortcut.
#[cfg(windows)]
fn windows_app_id() -> Option<&'static str> {
    let exe = std::env::current_exe().ok()?;
    exe.parent()?
        .join("waddleperf-desktop.exe")
        .is_file()
        .then_some("io.penguintech.waddleperf")
}

/// One notification to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone)]
struct Change {
    target: String,
    from: Option<Health>,
    to: Health,
    reason: Option<String>,
}

/// Turns events into notes; pure apart from the instants it is given.
pub struct Notifier {
    min_interval: Duration,
    last: HashMap<String, Instant>,
    pending: Vec<Change>,
    connectivity: Option<Note>,
}

impl Notifier {
    pub fn new(min_interval: Duration) -> Self {
        Notifier {
            min_interval,
            last: HashMap::new(),
            pending: Vec::new(),
            connectivity: None,
        }
    }

    pub fn set_min_interval(&mut self, d: Duration) {
        self.min_interval = d;
    }

    /// Whether `subject` may be notified at `now` (and if so, records it).
    fn allow(&mut self, subject: &str, now: Instant) -> bool {
        match self.last.get(subject) {
            Some(t) if now.duration_since(*t) < self.min_interval => false,
            _ => {
                self.last.insert(subject.to_owned(), now);
                true
            }
        }
    }

    /// Takes one event; returns the notes to show now.
    pub fn offer(&mut self, ev: &Event, now: Instant) -> Vec<Note> {
        match ev {
            Event::HealthChanged {
                target,
                from,
                to,
                reason,
                ..
            } => {
                // A target seen for the first time and healthy is no news.
                if from.is_some() || *to != Health::Ok {
                    self.pending.push(Change {
                        target: target.clone(),
                        from: *from,
                        to: *to,
                        reason: reason.clone(),
                    });
                }
                Vec::new()
            }
            Event::ConnectivityLost { message } | Event::ConnectivityRestored { message } => {
                let lost = matches!(ev, Event::ConnectivityLost { .. });
                self.connectivity = Some(Note {
                    title: if lost {
                        "WaddlePerf: network connection lost".into()
                    } else {
                        "WaddlePerf: network connection restored".into()
                    },
                    body: upper_first(message),
                });
                Vec::new()
            }
            Event::Escalated { transition } | Event::Deescalated { transition } => {
                if !self.allow(&format!("autoperf:{}", transition.to), now) {
                    tracing::info!(
                        "notification held back (rate limit): {}",
                        transition.message
                    );
                    return Vec::new();
                }
                let title = if transition.to > transition.from {
                    format!("WaddlePerf: running tier {} tests", transition.to)
                } else {
                    "WaddlePerf: back to regular tests".to_owned()
                };
                vec![Note {
                    title,
                    body: upper_first(&transition.message),
                }]
            }
            Event::SignedOut { message } => {
                if !self.allow("account", now) {
                    tracing::info!("notification held back (rate limit): {message}");
                    return Vec::new();
                }
                vec![Note {
                    title: "WaddlePerf: signed out".into(),
                    body: upper_first(message),
                }]
            }
            Event::EnrollmentLost { message } => {
                if !self.allow("enrollment", now) {
                    tracing::info!("notification held back (rate limit): {message}");
                    return Vec::new();
                }
                vec![Note {
                    title: "WaddlePerf: this device is no longer enrolled".into(),
                    body: upper_first(message),
                }]
            }
            Event::CaptivePortal { location, .. } => vec![Note {
                title: "WaddlePerf: this network wants you to sign in".into(),
                body: match location {
                    Some(l) => format!(
                        "A captive portal ({l}) is in the way. Results taken behind it are marked and do not count as outages."
                    ),
                    None => "A captive portal is in the way. Results taken behind it are marked and do not count as outages.".into(),
                },
            }],
            Event::UpdateReady { version, path } => vec![Note {
                title: format!("WaddlePerf {version} is ready to install"),
                body: format!("Downloaded and verified: {path}"),
            }],
            Event::RunFinished { .. } => self.flush(now),
            _ => Vec::new(),
        }
    }

    /// The gathered changes of a run as (at most) one note each for
    /// connectivity and target health.
    fn flush(&mut self, now: Instant) -> Vec<Note> {
        let mut out = Vec::new();
        let changes = std::mem::take(&mut self.pending);
        if let Some(note) = self.connectivity.take() {
            if self.allow("connectivity", now) {
                out.push(note);
                // Every target going down with the network is the same news.
                if changes.iter().all(|c| c.to == Health::Down) {
                    return out;
                }
            } else {
                tracing::info!("notification held back (rate limit): {}", note.body);
            }
        }
        let mut shown = Vec::new();
        for c in changes {
            if self.allow(&format!("target:{}", c.target), now) {
                shown.push(c);
            } else {
                tracing::info!(target = %c.target, to = %c.to, "health notification held back (rate limit)");
            }
        }
        if let Some(note) = health_note(&shown) {
            out.push(note);
        }
        out
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn plain(h: Health) -> &'static str {
    match h {
        Health::Ok => "is healthy",
        Health::Degraded => "is degraded",
        Health::Down => "is down",
    }
}

fn health_note(changes: &[Change]) -> Option<Note> {
    match changes {
        [] => None,
        [c] => {
            let verb = match (c.from, c.to) {
                (Some(Health::Down | Health::Degraded), Health::Ok) => "has recovered",
                (_, h) => plain(h),
            };
            let mut body = format!("{} {verb}", c.target);
            if let Some(r) = &c.reason {
                body.push_str(&format!(": {r}"));
            }
            body.push('.');
            Some(Note {
                title: format!("WaddlePerf: {} {verb}", short(&c.target)),
                body,
            })
        }
        many => {
            let worst = many.iter().map(|c| c.to).max().unwrap_or(Health::Ok);
            let mut lines = Vec::new();
            for h in [Health::Down, Health::Degraded, Health::Ok] {
                let names: Vec<&str> = many
                    .iter()
                    .filter(|c| c.to == h)
                    .map(|c| c.target.as_str())
                    .collect();
                if !names.is_empty() {
                    lines.push(format!("{} {}: {}", names.len(), h, names.join(", ")));
                }
            }
            Some(Note {
                title: format!(
                    "WaddlePerf: {} targets changed ({} worst)",
                    many.len(),
                    worst
                ),
                body: lines.join("\n"),
            })
        }
    }
}

/// A target shortened for a title: the host of a URL.
fn short(target: &str) -> String {
    url::Url::parse(target)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| target.to_owned())
}

/// Shows notifications for `rt`'s events until it shuts down. The setting
/// `notifications.enabled` is read for each note, so turning it off applies
/// at once.
pub fn spawn(rt: Runtime, sink: Arc<dyn Sink>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(rt, sink))
}

/// The notifier loop until the runtime shuts down.
pub async fn run(rt: Runtime, sink: Arc<dyn Sink>) {
    let mut rx = rt.subscribe();
    let mins = |n: &crate::config::Notifications| {
        Duration::from_secs(u64::from(n.min_interval_minutes) * 60)
    };
    let mut notifier = Notifier::new(mins(&rt.config().notifications));
    let mut failing = false;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = rt.closed() => break,
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("notifications missed {n} events");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let settings = rt.config().notifications;
        // Off: nothing is offered, so nothing held back now counts against
        // the rate limit once they are on again.
        if !settings.enabled {
            continue;
        }
        notifier.set_min_interval(mins(&settings));
        let notes = notifier.offer(&ev, Instant::now());
        if notes.is_empty() {
            continue;
        }
        for note in notes {
            let sink = Arc::clone(&sink);
            let shown =
                tokio::task::spawn_blocking(move || sink.show(&note.title, &note.body)).await;
            match shown {
                Ok(Ok(())) => failing = false,
                Ok(Err(e)) => {
                    if !failing {
                        tracing::warn!("cannot show a desktop notification: {e}");
                    }
                    failing = true;
                }
                Err(e) => tracing::warn!("notification task failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoperf::Transition;
    use crate::model::TestType;

    fn change(target: &str, from: Option<Health>, to: Health) -> Event {
        Event::HealthChanged {
            test_type: TestType::Tcp,
            target: target.into(),
            from,
            to,
            reason: (to != Health::Ok).then(|| "latency_ms 150 is above the threshold 100".into()),
        }
    }

    fn finished() -> Event {
        Event::RunFinished {
            summary: Arc::new(crate::runtime::RunSummary {
                run_id: uuid::Uuid::now_v7(),
                reason: crate::runtime::RunReason::Scheduled,
                started_at: chrono::Utc::now(),
                finished_at: chrono::Utc::now(),
                tiers: vec![1],
                results: Vec::new(),
                transitions: Vec::new(),
                interrupted: false,
                store_error: None,
            }),
        }
    }

    #[test]
    fn health_changes_of_a_run_become_one_note() {
        let mut n = Notifier::new(Duration::from_secs(1800));
        let t0 = Instant::now();
        assert!(n.offer(&change("a:1", None, Health::Ok), t0).is_empty());
        assert!(
            n.offer(&finished(), t0).is_empty(),
            "first sight, healthy: no news"
        );

        n.offer(&change("a:1", Some(Health::Ok), Health::Degraded), t0);
        let notes = n.offer(&finished(), t0);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].title, "WaddlePerf: a:1 is degraded");
        assert_eq!(
            notes[0].body,
            "a:1 is degraded: latency_ms 150 is above the threshold 100."
        );

        // Within the interval the same target is held back; another is not.
        let t1 = t0 + Duration::from_secs(60);
        n.offer(&change("a:1", Some(Health::Degraded), Health::Ok), t1);
        n.offer(
            &change("https://b.example/x", Some(Health::Ok), Health::Down),
            t1,
        );
        let notes = n.offer(&finished(), t1);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].title, "WaddlePerf: b.example is down");

        // After the interval: recovery is told.
        let t2 = t0 + Duration::from_secs(1801);
        n.offer(&change("a:1", Some(Health::Degraded), Health::Ok), t2);
        let notes = n.offer(&finished(), t2);
        assert_eq!(notes[0].title, "WaddlePerf: a:1 has recovered");
        assert_eq!(notes[0].body, "a:1 has recovered.");
    }

    #[test]
    fn many_changes_and_lost_connectivity_are_summarised() {
        let mut n = Notifier::new(Duration::from_secs(1800));
        let t0 = Instant::now();
        for t in ["a:1", "b:1", "c:1"] {
            n.offer(&change(t, Some(Health::Ok), Health::Down), t0);
        }
        n.offer(
            &Event::ConnectivityLost {
                message: "connectivity lost: none of the 3 tests reached its target".into(),
            },
            t0,
        );
        let notes = n.offer(&finished(), t0);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].title, "WaddlePerf: network connection lost");

        let t1 = t0 + Duration::from_secs(3600);
        n.offer(&change("a:1", Some(Health::Down), Health::Ok), t1);
        n.offer(&change("b:1", Some(Health::Down), Health::Degraded), t1);
        let notes = n.offer(&finished(), t1);
        assert_eq!(
            notes[0].title,
            "WaddlePerf: 2 targets changed (degraded worst)"
        );
        assert_eq!(notes[0].body, "1 degraded: b:1\n1 ok: a:1");
    }

    #[test]
    fn a_verified_update_is_told_at_once() {
        let mut n = Notifier::new(Duration::from_secs(1800));
        let notes = n.offer(
            &Event::UpdateReady {
                version: "0.2.0".into(),
                path: "/data/updates/w.AppImage".into(),
            },
            Instant::now(),
        );
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].title, "WaddlePerf 0.2.0 is ready to install");
        assert!(notes[0].body.ends_with("/data/updates/w.AppImage"));
    }

    #[test]
    fn escalations_are_told_and_rate_limited() {
        let mut n = Notifier::new(Duration::from_secs(600));
        let t0 = Instant::now();
        let up = Event::Escalated {
            transition: Transition {
                from: 1,
                to: 2,
                breaches: Vec::new(),
                message: "escalated to tier 2 after 2 runs crossing thresholds: x".into(),
            },
        };
        let notes = n.offer(&up, t0);
        assert_eq!(notes[0].title, "WaddlePerf: running tier 2 tests");
        assert!(notes[0].body.starts_with("Escalated to tier 2"));
        assert!(n.offer(&up, t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(n.offer(&up, t0 + Duration::from_secs(601)).len(), 1);
    }
}
