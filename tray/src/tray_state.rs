//! What the tray shows, as a state machine fed by runtime events: the icon
//! (ok, degraded, down, running, paused), the tooltip with the last run's
//! summary and the menu's status line. No GUI types: the shell renders it.

use chrono::{DateTime, Local, Utc};
use waddleperf_engine::autoperf::Health;
use waddleperf_engine::runtime::{Event, Status};

/// The tray icon to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconKind {
    Ok,
    Degraded,
    Down,
    Running,
    Paused,
}

impl IconKind {
    pub fn name(self) -> &'static str {
        match self {
            IconKind::Ok => "ok",
            IconKind::Degraded => "degraded",
            IconKind::Down => "down",
            IconKind::Running => "running",
            IconKind::Paused => "paused",
        }
    }
}

/// The last run, as the tooltip tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub finished_at: DateTime<Utc>,
    pub total: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrayState {
    /// A run is in progress: `(done, total)`.
    pub running: Option<(usize, usize)>,
    pub paused: bool,
    /// Worst health over all targets; `None` before the first run.
    pub health: Option<Health>,
    pub last_run: Option<RunLine>,
    pub next_run: Option<DateTime<Utc>>,
    /// How many targets are not ok, by the last health events.
    pub unhealthy: Vec<(String, Health)>,
    /// The network the machine is on: its label or description.
    pub network: Option<String>,
}

impl Default for TrayState {
    fn default() -> Self {
        TrayState::new()
    }
}

impl TrayState {
    pub fn new() -> TrayState {
        TrayState {
            running: None,
            paused: false,
            health: None,
            last_run: None,
            next_run: None,
            unhealthy: Vec::new(),
            network: None,
        }
    }

    /// The state as the store last left it (at start-up, or after missing
    /// events).
    pub fn from_status(s: &Status) -> TrayState {
        TrayState {
            running: None,
            paused: s.paused,
            health: s.health,
            last_run: s.last_run.as_ref().map(|l| RunLine {
                finished_at: l.finished_at,
                total: l.total,
                failed: l.failed,
            }),
            next_run: s.agent.as_ref().and_then(|a| a.next_run),
            unhealthy: s
                .targets_health
                .iter()
                .filter(|t| t.health != Health::Ok)
                .map(|t| (t.target.clone(), t.health))
                .collect(),
            network: s.network.as_ref().map(|n| n.name()),
        }
    }

    /// Running beats paused beats health: what the person most needs to
    /// know first. No result yet counts as ok.
    pub fn icon(&self) -> IconKind {
        if self.running.is_some() {
            return IconKind::Running;
        }
        if self.paused {
            return IconKind::Paused;
        }
        match self.health {
            Some(Health::Down) => IconKind::Down,
            Some(Health::Degraded) => IconKind::Degraded,
            Some(Health::Ok) | None => IconKind::Ok,
        }
    }

    /// Applies one event; returns whether anything shown changed.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let before = self.clone();
        match ev {
            Event::RunStarted { total, .. } => self.running = Some((0, *total)),
            Event::TierStarted { total, .. } => {
                let done = self.running.map_or(0, |r| r.0);
                self.running = Some((done, *total));
            }
            Event::Result { done, total, .. } => self.running = Some((*done, *total)),
            Event::RunFinished { summary } => {
                self.running = None;
                if !summary.interrupted {
                    self.last_run = Some(RunLine {
                        finished_at: summary.finished_at,
                        total: summary.results.len(),
                        failed: summary.failed(),
                    });
                }
            }
            Event::OverallHealth { health } => self.health = Some(*health),
            Event::HealthChanged { target, to, .. } => {
                self.unhealthy.retain(|(t, _)| t != target);
                if *to != Health::Ok {
                    self.unhealthy.push((target.clone(), *to));
                }
            }
            Event::Paused => self.paused = true,
            Event::Resumed => self.paused = false,
            Event::NextRun { at } => self.next_run = *at,
            Event::NetworkChanged { network, .. } => {
                self.network = network.as_ref().map(|n| n.name())
            }
            _ => {}
        }
        *self != before
    }

    /// The menu's first line: what is happening and when the next run is.
    pub fn status_line(&self, now: DateTime<Utc>) -> String {
        if let Some((done, total)) = self.running {
            return format!("Running tests… {done} of {total}");
        }
        let last = match &self.last_run {
            Some(l) => format!("Last run {}", ago(l.finished_at, now)),
            None => "No runs yet".to_owned(),
        };
        if self.paused {
            return format!("{last} · monitoring paused");
        }
        match self.next_run {
            Some(at) => format!("{last} · next {}", clock(at, now)),
            None => last,
        }
    }

    /// The tooltip: health and the last run's summary.
    pub fn tooltip(&self, now: DateTime<Utc>) -> String {
        let head = match (self.running, self.paused, self.health) {
            (Some(_), _, _) => "WaddlePerf: running tests".to_owned(),
            (None, true, _) => "WaddlePerf: paused".to_owned(),
            (None, false, None) => "WaddlePerf: no results yet".to_owned(),
            (None, false, Some(Health::Ok)) => "WaddlePerf: all targets ok".to_owned(),
            (None, false, Some(h)) => {
                let names: Vec<&str> = self.unhealthy.iter().map(|(t, _)| t.as_str()).collect();
                if names.is_empty() {
                    format!("WaddlePerf: {}", h.as_str())
                } else {
                    format!("WaddlePerf: {} ({})", h.as_str(), names.join(", "))
                }
            }
        };
        let head = match &self.network {
            Some(n) => format!("{head}\nOn {n}"),
            None => head,
        };
        match &self.last_run {
            Some(l) => format!(
                "{head}\nLast run {}: {} tests, {} failed",
                ago(l.finished_at, now),
                l.total,
                l.failed
            ),
            None => head,
        }
    }
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    if (t - now).num_hours() < 20 {
        local.format("at %H:%M").to_string()
    } else {
        local.format("on %a %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use uuid::Uuid;
    use waddleperf_engine::runtime::{RunReason, RunSummary};

    fn finished(results: usize, interrupted: bool) -> Event {
        let now = Utc::now();
        Event::RunFinished {
            summary: Arc::new(RunSummary {
                run_id: Uuid::now_v7(),
                reason: RunReason::OnDemand,
                started_at: now,
                finished_at: now,
                tiers: vec![1],
                results: (0..results)
                    .map(|_| {
                        let mut m = waddleperf_engine::Measurement::begin(
                            waddleperf_engine::TestType::Tcp,
                            "127.0.0.1:1",
                        );
                        m.success = true;
                        m
                    })
                    .collect(),
                transitions: vec![],
                interrupted,
                store_error: None,
            }),
        }
    }

    #[test]
    fn icon_follows_the_state_machine() {
        let mut s = TrayState::new();
        assert_eq!(s.icon(), IconKind::Ok, "no results yet shows ok");

        let run_id = Uuid::now_v7();
        assert!(s.apply(&Event::RunStarted {
            run_id,
            started_at: Utc::now(),
            reason: RunReason::OnDemand,
            total: 4
        }));
        assert_eq!(s.icon(), IconKind::Running);
        assert_eq!(s.running, Some((0, 4)));
        assert!(s.apply(&Event::TierStarted {
            run_id,
            tier: 2,
            total: 6
        }));
        assert_eq!(s.running, Some((0, 6)));

        // Health changes during a run do not hide that it runs.
        s.apply(&Event::OverallHealth {
            health: Health::Down,
        });
        assert_eq!(s.icon(), IconKind::Running);
        s.apply(&finished(6, false));
        assert_eq!(s.icon(), IconKind::Down);
        assert_eq!(s.last_run.as_ref().map(|l| l.total), Some(6));

        s.apply(&Event::OverallHealth {
            health: Health::Degraded,
        });
        assert_eq!(s.icon(), IconKind::Degraded);

        // Paused beats health; running beats paused (an on-demand run).
        s.apply(&Event::Paused);
        assert_eq!(s.icon(), IconKind::Paused);
        s.apply(&Event::RunStarted {
            run_id,
            started_at: Utc::now(),
            reason: RunReason::OnDemand,
            total: 1,
        });
        assert_eq!(s.icon(), IconKind::Running);
        s.apply(&finished(1, false));
        assert_eq!(s.icon(), IconKind::Paused);
        s.apply(&Event::Resumed);
        assert_eq!(s.icon(), IconKind::Degraded);

        s.apply(&Event::OverallHealth { health: Health::Ok });
        assert_eq!(s.icon(), IconKind::Ok);
        // Nothing shown changes on an event the tray ignores.
        assert!(!s.apply(&Event::SyncStarted { pending: 3 }));
    }

    #[test]
    fn the_tooltip_names_the_network() {
        use waddleperf_engine::netctx::{LinkType, NetworkContext};
        let now = Utc::now();
        let mut s = TrayState::new();
        let ctx = NetworkContext {
            network_id: "0123456789abcdef".into(),
            iface: "wlan0".into(),
            link_type: LinkType::Wifi,
            ssid: Some("Office".into()),
            ..NetworkContext::default()
        };
        let known = waddleperf_engine::store::KnownNetwork {
            id: ctx.network_id.clone(),
            label: Some("Office Wi-Fi".into()),
            first_seen: now,
            last_seen: now,
            results: 0,
            context: ctx,
        };
        assert!(s.apply(&Event::NetworkChanged {
            from: None,
            network: Some(Box::new(known.clone())),
        }));
        assert!(
            s.tooltip(now).contains("\nOn Office Wi-Fi"),
            "{}",
            s.tooltip(now)
        );
        let unnamed = waddleperf_engine::store::KnownNetwork {
            label: None,
            ..known
        };
        s.apply(&Event::NetworkChanged {
            from: None,
            network: Some(Box::new(unnamed)),
        });
        assert!(
            s.tooltip(now).contains("\nOn wifi \"Office\" via wlan0"),
            "{}",
            s.tooltip(now)
        );
        s.apply(&Event::NetworkChanged {
            from: None,
            network: None,
        });
        assert!(!s.tooltip(now).contains("On "));
    }

    #[test]
    fn an_interrupted_run_does_not_replace_the_last_summary() {
        let mut s = TrayState::new();
        s.apply(&finished(4, false));
        s.apply(&finished(1, true));
        assert_eq!(s.last_run.as_ref().map(|l| l.total), Some(4));
        assert_eq!(s.running, None);
    }

    #[test]
    fn tooltip_and_status_line_tell_the_last_run() {
        let now = Utc::now();
        let mut s = TrayState::new();
        assert_eq!(s.status_line(now), "No runs yet");
        assert_eq!(s.tooltip(now), "WaddlePerf: no results yet");
        s.apply(&finished(4, false));
        s.apply(&Event::HealthChanged {
            test_type: waddleperf_engine::TestType::Http,
            target: "https://a.example/".into(),
            from: Some(Health::Ok),
            to: Health::Down,
            reason: Some("timeout".into()),
        });
        s.apply(&Event::OverallHealth {
            health: Health::Down,
        });
        let tip = s.tooltip(now);
        assert!(
            tip.starts_with("WaddlePerf: down (https://a.example/)"),
            "{tip}"
        );
        assert!(
            tip.ends_with("Last run just now: 4 tests, 0 failed"),
            "{tip}"
        );
        s.apply(&Event::NextRun {
            at: Some(now + chrono::Duration::minutes(30)),
        });
        let line = s.status_line(now);
        assert!(line.starts_with("Last run just now · next at "), "{line}");
        s.apply(&Event::Paused);
        assert_eq!(s.status_line(now), "Last run just now · monitoring paused");
        s.apply(&Event::RunStarted {
            run_id: Uuid::now_v7(),
            started_at: now,
            reason: RunReason::OnDemand,
            total: 3,
        });
        assert_eq!(s.status_line(now), "Running tests… 0 of 3");
        // Back to ok: the target leaves the unhealthy list.
        s.apply(&Event::HealthChanged {
            test_type: waddleperf_engine::TestType::Http,
            target: "https://a.example/".into(),
            from: Some(Health::Down),
            to: Health::Ok,
            reason: None,
        });
        assert!(s.unhealthy.is_empty());
    }
}
