//! Tauri commands: each maps onto one runtime (or syncer) call. Errors reach
//! the UI as [`IpcError`]: a kind the UI can switch on, a message for people
//! and, for settings, the key that is wrong.

pub use crate::ipc_types::*;
use crate::shell::Shell;
use chrono::Utc;
use std::sync::Arc;
use tauri::State;
use waddleperf_engine::runtime::{RunSummary, Status};
use waddleperf_engine::settings::Settings;
use waddleperf_engine::store::{HistoryQuery, Series, SeriesQuery, StoredEvent};
use waddleperf_engine::sync::{PassSummary, SyncStatus};
use waddleperf_engine::Measurement;

#[tauri::command]
pub async fn app_info(app: tauri::AppHandle, shell: State<'_, Arc<Shell>>) -> Res<AppInfo> {
    Ok(AppInfo {
        version: waddleperf_engine::version::long_version(),
        config_file: shell.paths.config_file.clone(),
        db_file: shell.paths.db_file.clone(),
        log_dir: shell.paths.log_dir.clone(),
        agent_note: shell.agent_note.clone(),
        config_note: shell.config_note(),
        autostart: crate::window::autostart_enabled(&app).ok(),
        device_id: shell.device.device_id.clone(),
        hostname: shell.device.hostname.clone(),
    })
}

#[tauri::command]
pub async fn status(shell: State<'_, Arc<Shell>>) -> Res<Status> {
    Ok(shell.rt.status().await?)
}

/// Runs the suite now (joining a run in progress) and returns its summary;
/// progress arrives as `runtime` events meanwhile.
#[tauri::command]
pub async fn run_now(shell: State<'_, Arc<Shell>>) -> Res<Arc<RunSummary>> {
    Ok(shell.rt.run_now().await?)
}

#[tauri::command]
pub async fn speed_test(shell: State<'_, Arc<Shell>>) -> Res<Arc<RunSummary>> {
    Ok(shell.rt.speed_test().await?)
}

#[tauri::command]
pub async fn pause(shell: State<'_, Arc<Shell>>) -> Res<()> {
    Ok(shell.rt.pause().await?)
}

#[tauri::command]
pub async fn resume(shell: State<'_, Arc<Shell>>) -> Res<()> {
    Ok(shell.rt.resume().await?)
}

async fn read_history(shell: &Shell, q: HistoryArgs, cap: usize) -> Res<Vec<Measurement>> {
    let limit = q.limit.unwrap_or(cap).min(cap);
    let targets = q.targets.unwrap_or_default();
    // One target: the store filters; several: read the range and keep theirs.
    let query = HistoryQuery {
        target: (targets.len() == 1).then(|| targets[0].clone()),
        test_type: q.test_type,
        since: q.since,
        until: q.until,
        limit: (targets.len() <= 1).then_some(limit),
    };
    let mut rows = shell.rt.history(query).await?;
    if targets.len() > 1 {
        rows.retain(|m| targets.contains(&m.target));
        let skip = rows.len().saturating_sub(limit);
        rows.drain(..skip);
    }
    Ok(rows)
}

/// Stored results, oldest first (the newest `limit`).
#[tauri::command]
pub async fn history(shell: State<'_, Arc<Shell>>, query: HistoryArgs) -> Res<Vec<Measurement>> {
    read_history(&shell, query, HISTORY_MAX).await
}

/// Every target with stored results.
#[tauri::command]
pub async fn targets(shell: State<'_, Arc<Shell>>) -> Res<Vec<StoredTarget>> {
    let list = shell.rt.with_store(|s| s.targets()).await?;
    Ok(list
        .into_iter()
        .map(|(target, test_type)| StoredTarget { target, test_type })
        .collect())
}

/// Bucketed aggregates (min, mean, max, loss) of one metric per target.
#[tauri::command]
pub async fn series(shell: State<'_, Arc<Shell>>, query: SeriesArgs) -> Res<Vec<Series>> {
    check_series(&query)?;
    let q = SeriesQuery {
        targets: query.targets,
        test_type: query.test_type,
        metric: query.metric,
        since: query.since,
        until: query.until,
        bucket_secs: query.bucket_secs,
    };
    Ok(shell.rt.series(q).await?)
}

/// The newest logged events (escalations, health changes, pause), oldest
/// first.
#[tauri::command]
pub async fn events(shell: State<'_, Arc<Shell>>, limit: Option<usize>) -> Res<Vec<StoredEvent>> {
    let limit = limit.unwrap_or(50).min(1000);
    Ok(shell.rt.event_log(None, None, limit).await?)
}

#[tauri::command]
pub async fn settings_get(shell: State<'_, Arc<Shell>>) -> Res<Settings> {
    Ok(Settings::from_config(&shell.rt.config()))
}

/// Validates, saves to the configuration file and applies at once (the
/// scheduler picks up a new interval without a restart).
#[tauri::command]
pub async fn settings_set(shell: State<'_, Arc<Shell>>, settings: Settings) -> Res<Settings> {
    shell.save_settings(&settings)
}

/// Writes the results the query selects to a file in the Downloads folder
/// (CSV, or JSON with one object per line, as `waddleperf export` writes).
#[tauri::command]
pub async fn export(
    shell: State<'_, Arc<Shell>>,
    format: ExportFormat,
    query: HistoryArgs,
) -> Res<Exported> {
    let rows = read_history(&shell, query, usize::MAX).await?;
    let dir = crate::export::export_dir();
    let path = crate::export::export_file(&dir, format, Utc::now())
        .map_err(|e| IpcError::new(ErrorKind::Io, e))?;
    let count = rows.len();
    let target = path.clone();
    tauri::async_runtime::spawn_blocking(move || {
        crate::export::write_export(&target, format, &rows)
    })
    .await
    .map_err(|e| IpcError::new(ErrorKind::Internal, e.to_string()))?
    .map_err(|e| IpcError::new(ErrorKind::Io, e))?;
    Ok(Exported { path, count })
}

#[tauri::command]
pub async fn set_autostart(app: tauri::AppHandle, on: bool) -> Res<bool> {
    crate::window::set_autostart(&app, on).map_err(|e| IpcError::new(ErrorKind::Io, e))?;
    crate::window::autostart_enabled(&app).map_err(|e| IpcError::new(ErrorKind::Io, e))
}

#[tauri::command]
pub async fn account(shell: State<'_, Arc<Shell>>) -> Res<SyncStatus> {
    Ok(shell.syncer.status().await?)
}

/// Signs in; the tokens go to the OS keychain (or the 0600 file, which the
/// account status then names).
#[tauri::command]
pub async fn login(shell: State<'_, Arc<Shell>>, args: LoginArgs) -> Res<SyncStatus> {
    let server = args
        .server
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if args.username.trim().is_empty() {
        return Err(IpcError::invalid("username", "enter your user name"));
    }
    let code = args
        .mfa_code
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    shell
        .syncer
        .login(server, args.username.trim(), &args.password, code)
        .await?;
    Ok(shell.syncer.status().await?)
}

#[tauri::command]
pub async fn logout(shell: State<'_, Arc<Shell>>) -> Res<SyncStatus> {
    shell.syncer.logout().await?;
    Ok(shell.syncer.status().await?)
}

#[tauri::command]
pub async fn enroll(shell: State<'_, Arc<Shell>>, args: EnrollArgs) -> Res<SyncStatus> {
    if args.secret.trim().is_empty() {
        return Err(IpcError::invalid("secret", "enter the enrollment secret"));
    }
    let server = args
        .server
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let name = args
        .name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    shell
        .syncer
        .enroll(server, args.org_id, args.secret.trim(), name, false)
        .await?;
    Ok(shell.syncer.status().await?)
}

/// One upload pass now (rows still backing off included).
#[tauri::command]
pub async fn sync_now(shell: State<'_, Arc<Shell>>) -> Res<PassSummary> {
    Ok(shell.syncer.pass_all(Utc::now()).await?)
}

/// Dead letters go back into the queue.
#[tauri::command]
pub async fn retry_dead(shell: State<'_, Arc<Shell>>) -> Res<usize> {
    let n = shell.syncer.retry_dead(None).await?;
    shell.syncer.sync_soon();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddleperf_engine::config::ConfigError;
    use waddleperf_engine::runtime::RuntimeError;
    use waddleperf_engine::sync::SyncError;

    fn q(metric: &str, hours: i64, bucket_secs: i64) -> SeriesArgs {
        let until = Utc::now();
        SeriesArgs {
            targets: vec![],
            test_type: None,
            metric: metric.into(),
            since: until - chrono::Duration::hours(hours),
            until,
            bucket_secs,
        }
    }

    #[test]
    fn series_arguments_are_checked() {
        assert!(check_series(&q("latency_ms", 24, 600)).is_ok());
        let e = check_series(&q("bogus", 24, 600)).err();
        assert_eq!(
            e.map(|e| (e.kind, e.key)),
            Some((ErrorKind::Invalid, Some("metric".into())))
        );
        let e = check_series(&q("latency_ms", 24 * 365, 60)).err();
        assert_eq!(e.and_then(|e| e.key), Some("bucket_secs".into()));
        let e = check_series(&q("latency_ms", -1, 600)).err();
        assert_eq!(e.and_then(|e| e.key), Some("until".into()));
    }

    #[test]
    fn errors_serialise_typed() -> Result<(), serde_json::Error> {
        let e: IpcError = ConfigError::Invalid {
            path: "settings".into(),
            line: None,
            key: "suite.http[0].url".into(),
            message: "not a URL".into(),
        }
        .into();
        assert_eq!(
            serde_json::to_value(&e)?,
            serde_json::json!({"kind": "invalid", "message": "not a URL", "key": "suite.http[0].url"})
        );
        let e: IpcError = RuntimeError::ShuttingDown.into();
        assert_eq!(serde_json::to_value(&e)?["kind"], "shutting_down");
        let e: IpcError =
            SyncError::Api(waddleperf_engine::sync::api::ApiError::MfaRequired).into();
        assert_eq!(e.kind, ErrorKind::MfaRequired);
        Ok(())
    }
}
