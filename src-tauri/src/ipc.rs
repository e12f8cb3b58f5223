//! Tauri commands: each is one call on the agent's control socket. Errors
//! reach the UI as [`IpcError`]: a kind the UI can switch on (`no_agent`
//! while the agent is away), a message for people and, for settings, the
//! key that is wrong. Answers the UI only displays pass through as the
//! agent sent them.

pub use crate::ipc_types::*;
use crate::shell::Shell;
/// An answer passed on to the UI as the agent wrote it.
type Value = Box<serde_json::value::RawValue>;
use std::sync::Arc;
use tauri::State;
use waddleperf_engine::control::{AgentInfo, Request};
use waddleperf_engine::settings::Settings;

type S<'a> = State<'a, Arc<Shell>>;

#[tauri::command]
pub async fn app_info(shell: S<'_>) -> Res<AppInfo> {
    let info: AgentInfo = shell.call_as(Request::Info).await?;
    let agent_note = (!info.desktop).then(|| {
        format!(
            "The agent here is `waddleperf daemon` (pid {}): it runs the schedule; \
             start at login is its service's.",
            info.pid
        )
    });
    Ok(AppInfo {
        version: info.version,
        config_file: info.config_file,
        db_file: info.db_file,
        log_dir: info.log_dir,
        agent_note,
        config_note: info.config_note,
        autostart: info.autostart,
        device_id: info.device_id,
        hostname: info.hostname,
    })
}

#[tauri::command]
pub async fn status(shell: S<'_>) -> Res<Value> {
    shell.call(Request::Status).await
}

/// Runs the suite now (joining a run in progress) and returns its summary;
/// progress arrives as `runtime` events meanwhile.
#[tauri::command]
pub async fn run_now(shell: S<'_>) -> Res<Value> {
    shell.call(Request::RunNow).await
}

#[tauri::command]
pub async fn speed_test(shell: S<'_>) -> Res<Value> {
    shell.call(Request::SpeedTest).await
}

#[tauri::command]
pub async fn pause(shell: S<'_>) -> Res<()> {
    shell.call(Request::Pause).await.map(|_| ())
}

#[tauri::command]
pub async fn resume(shell: S<'_>) -> Res<()> {
    shell.call(Request::Resume).await.map(|_| ())
}

/// Stored results, oldest first (the newest `limit`, at most
/// [`HISTORY_MAX`]).
#[tauri::command]
pub async fn history(shell: S<'_>, query: HistoryArgs) -> Res<Value> {
    shell
        .call(Request::History {
            target: None,
            targets: query.targets.unwrap_or_default(),
            test_type: query.test_type,
            since: query.since,
            until: query.until,
            limit: Some(query.limit.unwrap_or(HISTORY_MAX).min(HISTORY_MAX)),
            network: query.network,
        })
        .await
}

/// The network now (read again from the OS) and every network seen.
#[tauri::command]
pub async fn networks(shell: S<'_>) -> Res<Value> {
    shell.call(Request::Networks).await
}

/// System diagnostics: the report and its text (the clock compared with the
/// configured server).
#[tauri::command]
pub async fn diagnose(shell: S<'_>) -> Res<Value> {
    shell.call(Request::Diagnose { server: None }).await
}

/// Names a network ("Home"); an empty label clears the name.
#[tauri::command]
pub async fn network_label(shell: S<'_>, id: String, label: String) -> Res<Value> {
    shell.call(Request::NetworkLabel { id, label }).await
}

/// Every target with stored results.
#[tauri::command]
pub async fn targets(shell: S<'_>) -> Res<Vec<StoredTarget>> {
    shell.call_as(Request::Targets).await
}

/// Bucketed aggregates (min, mean, max, loss) of one metric per target.
#[tauri::command]
pub async fn series(shell: S<'_>, query: SeriesArgs) -> Res<Value> {
    check_series(&query)?;
    shell
        .call(Request::Series {
            targets: query.targets,
            test_type: query.test_type,
            metric: query.metric,
            since: query.since,
            until: query.until,
            bucket_secs: query.bucket_secs,
            network: query.network,
        })
        .await
}

/// The newest logged events (escalations, health changes, pause), oldest
/// first.
#[tauri::command]
pub async fn events(shell: S<'_>, limit: Option<usize>) -> Res<Value> {
    let limit = limit.unwrap_or(50).min(1000);
    shell.call(Request::Events { limit }).await
}

#[tauri::command]
pub async fn settings_get(shell: S<'_>) -> Res<Value> {
    shell.call(Request::SettingsGet).await
}

/// Validated, saved to the configuration file and applied by the agent at
/// once (the scheduler picks up a new interval without a restart).
#[tauri::command]
pub async fn settings_set(shell: S<'_>, settings: Settings) -> Res<Value> {
    shell
        .call(Request::SettingsSet {
            settings: Box::new(settings),
        })
        .await
}

/// The agent writes the results the query selects to a new file in the
/// Downloads folder (CSV, or JSON with one object per line, as `waddleperf
/// export` writes).
#[tauri::command]
pub async fn export(shell: S<'_>, format: ExportFormat, query: HistoryArgs) -> Res<Exported> {
    shell
        .call_as(Request::Export {
            format: format.into(),
            targets: query.targets.unwrap_or_default(),
            test_type: query.test_type,
            since: query.since,
            until: query.until,
            network: query.network,
        })
        .await
}

/// Start at login, which the agent (the tray) owns.
#[tauri::command]
pub async fn set_autostart(shell: S<'_>, on: bool) -> Res<bool> {
    shell.call_as(Request::Autostart { on: Some(on) }).await
}

#[tauri::command]
pub async fn account(shell: S<'_>) -> Res<Value> {
    shell.call(Request::Account).await
}

/// Signs in; the agent puts the tokens in the OS keychain (or the 0600
/// file, which the account status then names).
#[tauri::command]
pub async fn login(shell: S<'_>, args: LoginArgs) -> Res<Value> {
    if args.username.trim().is_empty() {
        return Err(IpcError::invalid("username", "enter your user name"));
    }
    shell
        .call(Request::Login {
            server: args.server,
            username: args.username,
            password: args.password,
            mfa_code: args.mfa_code,
        })
        .await
}

#[tauri::command]
pub async fn logout(shell: S<'_>) -> Res<Value> {
    shell.call(Request::Logout).await
}

#[tauri::command]
pub async fn enroll(shell: S<'_>, args: EnrollArgs) -> Res<Value> {
    if args.secret.trim().is_empty() {
        return Err(IpcError::invalid("secret", "enter the enrollment secret"));
    }
    shell
        .call(Request::Enroll {
            server: args.server,
            org_id: args.org_id,
            secret: args.secret,
            name: args.name,
        })
        .await
}

/// One upload pass now (rows still backing off included).
#[tauri::command]
pub async fn sync_now(shell: S<'_>) -> Res<Value> {
    shell.call(Request::SyncNow).await
}

/// Dead letters go back into the queue.
#[tauri::command]
pub async fn retry_dead(shell: S<'_>) -> Res<usize> {
    shell.call_as(Request::RetryDead).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use waddleperf_engine::control::{ControlError, WireError};

    fn q(metric: &str, hours: i64, bucket_secs: i64) -> SeriesArgs {
        let until = Utc::now();
        SeriesArgs {
            targets: vec![],
            test_type: None,
            metric: metric.into(),
            since: until - chrono::Duration::hours(hours),
            until,
            bucket_secs,
            network: None,
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
    fn the_agents_errors_reach_the_ui_typed() -> Result<(), serde_json::Error> {
        let e: IpcError =
            ControlError::Agent(WireError::invalid("suite.http[0].url", "not a URL")).into();
        assert_eq!(
            serde_json::to_value(&e)?,
            serde_json::json!({"kind": "invalid", "message": "not a URL", "key": "suite.http[0].url"})
        );
        let e: IpcError = ControlError::Agent(WireError::new("mfa_required", "code")).into();
        assert_eq!(e.kind, ErrorKind::MfaRequired);
        // A kind this window does not know is internal, its message kept.
        let e: IpcError = ControlError::Agent(WireError::new("novel", "something new")).into();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Internal, "something new")
        );
        // No agent, or one that went away mid-call: the window's own state.
        for c in [
            ControlError::NotRunning("/run/x.sock".into()),
            ControlError::Gone,
            ControlError::Io(std::io::ErrorKind::ConnectionReset.into()),
        ] {
            let e: IpcError = c.into();
            assert_eq!(e.kind, ErrorKind::NoAgent);
            assert_eq!(serde_json::to_value(&e)?["kind"], "no_agent");
        }
        Ok(())
    }
}
