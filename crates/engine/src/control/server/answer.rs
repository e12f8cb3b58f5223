//! The agent's answers: one control request in, its reply (or a typed
//! error) out, against the runtime, the settings file and the syncer. The
//! transport (socket, pipe, frames, events) is `server.rs`.

use super::super::{AgentInfo, Exported, Request, WireError};
use super::Served;
use crate::model::Measurement;
use crate::settings::{self, Settings};
use crate::store::{HistoryQuery, SeriesQuery};

pub(super) type Answer = Result<Box<serde_json::value::RawValue>, WireError>;

fn json<T: serde::Serialize>(v: T) -> Answer {
    serde_json::value::to_raw_value(&v).map_err(|e| WireError::new("internal", e.to_string()))
}

/// The most results one history call answers.
pub const HISTORY_MAX: usize = 10_000;

/// Results of a range for one target, several or all, the newest `limit`.
async fn history(
    s: &Served,
    mut q: HistoryQuery,
    targets: Vec<String>,
) -> Result<Vec<Measurement>, WireError> {
    let mut targets = targets;
    if let Some(t) = q.target.take() {
        targets.push(t);
    }
    targets.sort();
    targets.dedup();
    let limit = q.limit;
    // One target: the store filters; several: the range, then theirs.
    if targets.len() == 1 {
        q.target = targets.pop();
        return Ok(s.rt.history(q).await?);
    }
    if targets.len() > 1 {
        q.limit = None;
    }
    let mut rows = s.rt.history(q).await?;
    if !targets.is_empty() {
        rows.retain(|m| targets.binary_search(&m.target).is_ok());
        if let Some(limit) = limit {
            let skip = rows.len().saturating_sub(limit);
            rows.drain(..skip);
        }
    }
    Ok(rows)
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub(super) async fn answer(s: &Served, req: Request) -> Answer {
    match req {
        Request::Hello { .. } => Err(WireError::new("malformed", "hello once, at the start")),
        Request::Subscribe => json(()),
        Request::Status => json(s.rt.status().await?),
        Request::RunNow => json(s.rt.run_now().await?),
        Request::RunTier { tier } => {
            if !(1..=3).contains(&tier) {
                return Err(WireError::invalid(
                    "tier",
                    format!("tier {tier}: 1, 2 or 3"),
                ));
            }
            json(s.rt.run_tier(tier).await?)
        }
        Request::SpeedTest => json(s.rt.speed_test().await?),
        Request::Pause => json(s.rt.pause().await?),
        Request::Resume => json(s.rt.resume().await?),
        Request::History {
            target,
            targets,
            test_type,
            since,
            until,
            limit,
            network,
        } => {
            let q = HistoryQuery {
                target,
                test_type,
                network,
                since,
                until,
                limit: Some(limit.unwrap_or(HISTORY_MAX).min(HISTORY_MAX)),
            };
            json(history(s, q, targets).await?)
        }
        Request::Series {
            targets,
            test_type,
            metric,
            since,
            until,
            bucket_secs,
            network,
        } => {
            let q = SeriesQuery {
                targets,
                test_type,
                metric,
                since,
                until,
                bucket_secs,
                network,
            };
            check_series(&q)?;
            json(s.rt.series(q).await?)
        }
        Request::Events { limit } => json(s.rt.event_log(None, None, limit.min(10_000)).await?),
        Request::SettingsGet => json(Settings::from_config(&s.rt.config())),
        Request::SettingsSet { settings: new } => {
            let origin = s.paths.config_file.display().to_string();
            let cfg = new.apply(&s.rt.config(), &origin)?;
            settings::save_config(&s.paths.config_file, &cfg)
                .map_err(|e| WireError::new("io", e.to_string()))?;
            s.rt.set_config(cfg)?;
            if let Ok(mut n) = s.config_note.lock() {
                *n = None;
            }
            tracing::info!("settings saved to {}", s.paths.config_file.display());
            json(Settings::from_config(&s.rt.config()))
        }
        Request::Account => json(s.syncer.status().await?),
        Request::SyncNow => json(s.syncer.pass_all(chrono::Utc::now()).await?),
        Request::RetryDead => {
            let n = s.syncer.retry_dead(None).await?;
            s.syncer.sync_soon();
            json(n)
        }
        Request::Logout => {
            s.syncer.logout().await?;
            json(s.syncer.status().await?)
        }
        Request::Info => json(AgentInfo {
            version: crate::version::long_version(),
            pid: std::process::id(),
            config_file: s.paths.config_file.clone(),
            db_file: s.paths.db_file.clone(),
            log_dir: s.paths.log_dir.clone(),
            config_note: s.config_note.lock().ok().and_then(|n| n.clone()),
            device_id: s.device.device_id.clone(),
            hostname: s.device.hostname.clone(),
            desktop: s.desktop.is_some(),
            autostart: s.desktop.as_ref().and_then(|d| d.autostart().ok()),
        }),
        Request::Targets => {
            let list = s.rt.with_store(|st| st.targets()).await?;
            let list: Vec<_> = list
                .into_iter()
                .map(|(target, test_type)| serde_json::json!({"target": target, "test_type": test_type}))
                .collect();
            json(list)
        }
        Request::Export {
            format,
            targets,
            test_type,
            since,
            until,
            network,
        } => {
            let q = HistoryQuery {
                target: None,
                test_type,
                network,
                since,
                until,
                limit: None,
            };
            let rows = history(s, q, targets).await?;
            let names = s.rt.with_store(|st| st.network_names()).await?;
            let path = crate::export::new_file(
                &crate::export::downloads_dir(),
                format,
                chrono::Utc::now(),
            )
            .map_err(|e| WireError::new("io", e.to_string()))?;
            let (count, target) = (rows.len(), path.clone());
            tokio::task::spawn_blocking(move || {
                crate::export::write_file(&target, format, &rows, &names)
            })
            .await
            .map_err(|e| WireError::new("internal", e.to_string()))?
            .map_err(|e| WireError::new("io", e.to_string()))?;
            json(Exported { path, count })
        }
        Request::Networks => {
            let (current, error) = match s.rt.refresh_network().await {
                Ok(u) => (u.context.map(|c| (*c).clone()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            json(super::super::Networks {
                current,
                error,
                known: s.rt.networks().await?,
            })
        }
        Request::Diagnose { server } => {
            let server = trimmed(server).or_else(|| crate::diag::clock_server(&s.rt.config()));
            let report = crate::diag::collect(server.as_deref()).await;
            let text = report.to_text();
            json(super::super::Diagnosis { report, text })
        }
        Request::NetworkLabel { id, label } => {
            if label.chars().count() > crate::store::MAX_LABEL_CHARS {
                return Err(WireError::invalid(
                    "label",
                    format!("at most {} characters", crate::store::MAX_LABEL_CHARS),
                ));
            }
            json(s.rt.set_network_label(id, label).await?)
        }
        Request::Login {
            server,
            username,
            password,
            mfa_code,
        } => {
            if username.trim().is_empty() {
                return Err(WireError::invalid("username", "enter your user name"));
            }
            let (server, code) = (trimmed(server), trimmed(mfa_code));
            s.syncer
                .login(
                    server.as_deref(),
                    username.trim(),
                    &password,
                    code.as_deref(),
                )
                .await?;
            json(s.syncer.status().await?)
        }
        Request::Enroll {
            server,
            org_id,
            secret,
            name,
        } => {
            if secret.trim().is_empty() {
                return Err(WireError::invalid("secret", "enter the enrollment secret"));
            }
            let (server, name) = (trimmed(server), trimmed(name));
            s.syncer
                .enroll(
                    server.as_deref(),
                    org_id,
                    secret.trim(),
                    name.as_deref(),
                    false,
                )
                .await?;
            json(s.syncer.status().await?)
        }
        Request::Autostart { on } => {
            let d = s.desktop()?;
            if let Some(on) = on {
                d.set_autostart(on).map_err(|e| WireError::new("io", e))?;
            }
            json(d.autostart().map_err(|e| WireError::new("io", e))?)
        }
        Request::Open { page } => {
            if !["overview", "history", "settings"].contains(&page.as_str()) {
                return Err(WireError::invalid(
                    "page",
                    format!("`{page}` is not a page (overview, history, settings)"),
                ));
            }
            s.desktop()?
                .open(&page)
                .map_err(|e| WireError::new("io", e))?;
            json(())
        }
    }
}

/// Buckets per chart at most: more points than a screen has pixels is waste.
pub const MAX_BUCKETS: i64 = 5_000;

/// A chart query the agent answers: a chart metric, a range that ends after
/// it starts, buckets of a minute or more, not too many.
pub fn check_series(q: &SeriesQuery) -> Result<(), WireError> {
    if !crate::model::CHART_METRICS.contains(&q.metric.as_str()) {
        return Err(WireError::invalid(
            "metric",
            format!(
                "`{}` is not a chart metric (one of {})",
                q.metric,
                crate::model::CHART_METRICS.join(", ")
            ),
        ));
    }
    if q.until <= q.since {
        return Err(WireError::invalid(
            "until",
            "the range ends before it starts",
        ));
    }
    if q.bucket_secs < 60 {
        return Err(WireError::invalid(
            "bucket_secs",
            format!("{} s is shorter than a minute", q.bucket_secs),
        ));
    }
    let buckets = (q.until - q.since).num_seconds() / q.bucket_secs;
    if buckets > MAX_BUCKETS {
        return Err(WireError::invalid(
            "bucket_secs",
            format!("{buckets} buckets is more than {MAX_BUCKETS}: use wider buckets"),
        ));
    }
    Ok(())
}
