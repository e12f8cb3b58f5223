//! The agent's side of the control socket: accept, check the peer is this
//! user, greet, then answer calls side by side and forward events to
//! subscribers. A connection's writes go through one writer task, so
//! replies and events never interleave within a frame; a slow reader fills
//! its queue and is dropped rather than holding the runtime up.

use super::{frame, AgentInfo, Call, ControlError, Exported, Message, Request, WireError};
use super::{MAX_REQUEST, VERSION};
use crate::config::Paths;
use crate::device::DeviceInfo;
use crate::model::Measurement;
use crate::runtime::Runtime;
use crate::settings::{self, Settings};
use crate::store::{HistoryQuery, SeriesQuery};
use crate::sync::Syncer;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// What an agent with a desktop (the tray) adds: the window and start at
/// login. The daemon has none; its clients are told so.
pub trait Desktop: Send + Sync {
    /// Opens the window on `page` (already checked to be a page).
    fn open(&self, page: &str) -> Result<(), String>;
    fn autostart(&self) -> Result<bool, String>;
    fn set_autostart(&self, on: bool) -> Result<(), String>;
}

/// What the agent serves: its runtime, its sync worker, where its
/// configuration file is (settings are saved there), and its desktop.
#[derive(Clone)]
pub struct Served {
    pub rt: Runtime,
    pub syncer: Syncer,
    pub paths: Paths,
    device: Arc<DeviceInfo>,
    config_note: Arc<Mutex<Option<String>>>,
    desktop: Option<Arc<dyn Desktop>>,
}

impl Served {
    pub fn new(rt: Runtime, syncer: Syncer, paths: Paths) -> Served {
        Served {
            rt,
            syncer,
            paths,
            device: Arc::new(DeviceInfo::detect()),
            config_note: Arc::default(),
            desktop: None,
        }
    }

    /// The agent started on the default configuration because its file could
    /// not be used: the window says so until the settings are saved.
    pub fn with_config_note(self, note: Option<String>) -> Served {
        if let Ok(mut n) = self.config_note.lock() {
            *n = note;
        }
        self
    }

    /// This machine's identity, read once when the agent starts.
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    pub fn with_desktop(mut self, desktop: Arc<dyn Desktop>) -> Served {
        self.desktop = Some(desktop);
        self
    }

    fn desktop(&self) -> Result<&dyn Desktop, WireError> {
        self.desktop.as_deref().ok_or_else(|| {
            WireError::new(
                "unsupported",
                "this agent runs without a desktop (waddleperf daemon): no window or login item",
            )
        })
    }
}

/// Messages queued for one connection's writer.
const QUEUE: usize = 512;

#[cfg(unix)]
/// Binds the socket at `path` (a stale one left by a killed agent is
/// replaced; a live one is an error) and serves until the runtime closes.
/// The socket file is removed when serving ends.
pub async fn serve(
    path: &std::path::Path,
    served: Served,
) -> Result<tokio::task::JoinHandle<()>, ControlError> {
    use tokio::net::{UnixListener, UnixStream};
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::Io(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another agent answers at {}", path.display()),
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir).map_err(ControlError::Io)?;
    }
    // Bound under a temporary name and renamed into place once it is the
    // user's alone: a client never finds the socket with a wider mode.
    let staging = path.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).map_err(ControlError::Io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&staging, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&staging);
            return Err(ControlError::Io(e));
        }
    }
    let path = path.to_owned();
    tracing::info!(socket = %path.display(), "control socket listening");
    Ok(tokio::spawn(accept_loop(listener, path, served)))
}

#[cfg(unix)]
struct Unlink(std::path::PathBuf);
#[cfg(unix)]
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
async fn accept_loop(listener: tokio::net::UnixListener, path: std::path::PathBuf, served: Served) {
    use super::MAX_CONNECTIONS;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _unlink = Unlink(path);
    let open = Arc::new(AtomicUsize::new(0));
    let me = nix::unistd::getuid().as_raw();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = served.rt.closed() => return,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (served, open) = (served.clone(), Arc::clone(&open));
        tokio::spawn(async move {
            let uid = stream.peer_cred().map(|c| c.uid()).ok();
            if uid != Some(me) {
                tracing::warn!(?uid, "control socket: a connection of another user refused");
                refuse(stream, "refused", "this agent answers its own user only").await;
                return;
            }
            if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::Relaxed);
                refuse(stream, "busy", "too many connections to the agent").await;
                return;
            }
            let (rd, wr) = stream.into_split();
            if let Err(e) = connection(rd, wr, served).await {
                tracing::debug!("control connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

#[cfg(unix)]
async fn refuse(mut stream: tokio::net::UnixStream, kind: &str, why: &str) {
    let m = Message::Failed {
        id: 0,
        error: WireError::new(kind, why),
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        frame::write(&mut stream, &m),
    )
    .await;
}

/// Serves the named pipe `path` until the runtime closes (Windows). A
/// second agent of the same pipe fails at the first instance.
#[cfg(windows)]
pub async fn serve(
    path: &std::path::Path,
    served: Served,
) -> Result<tokio::task::JoinHandle<()>, ControlError> {
    use super::MAX_CONNECTIONS;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::windows::named_pipe::ServerOptions;
    let name = path.as_os_str().to_owned();
    let sd = super::pipe_security::Descriptor::owner_only().map_err(ControlError::Io)?;
    let mut first = ServerOptions::new();
    first.first_pipe_instance(true).reject_remote_clients(true);
    let mut next = sd.create(&first, &name).map_err(ControlError::Io)?;
    tracing::info!(pipe = %path.display(), "control pipe listening");
    Ok(tokio::spawn(async move {
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            let connected = tokio::select! {
                c = next.connect() => c,
                _ = served.rt.closed() => return,
            };
            if let Err(e) = connected {
                tracing::warn!("control pipe: connect failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            let mut options = ServerOptions::new();
            options.reject_remote_clients(true);
            let fresh = match sd.create(&options, &name) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("control pipe: no new instance: {e}");
                    return;
                }
            };
            let pipe = std::mem::replace(&mut next, fresh);
            let (served, open) = (served.clone(), Arc::clone(&open));
            tokio::spawn(async move {
                if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                let (rd, wr) = tokio::io::split(pipe);
                if let Err(e) = connection(rd, wr, served).await {
                    tracing::debug!("control connection ended: {e}");
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }))
}

/// One client's connection, on any byte stream: greeting, calls, events.
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
pub(crate) async fn connection<R, W>(
    mut rd: R,
    mut wr: W,
    served: Served,
) -> Result<(), ControlError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // The greeting, within a few seconds.
    let hello: Option<Call> = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        frame::read(&mut rd, MAX_REQUEST),
    )
    .await
    .map_err(|_| ControlError::Gone)??;
    match hello.map(|c| c.req) {
        Some(Request::Hello { version, client }) if version == VERSION => {
            tracing::debug!(%client, "control client connected");
        }
        Some(Request::Hello { version, .. }) => {
            let why = format!("this agent speaks control protocol {VERSION}, the client {version}");
            frame::write(
                &mut wr,
                &Message::Failed {
                    id: 0,
                    error: WireError::new("version", why),
                },
            )
            .await?;
            return Err(ControlError::Version {
                agent: VERSION,
                ours: version,
            });
        }
        _ => {
            let m = Message::Failed {
                id: 0,
                error: WireError::new("malformed", "a connection opens with hello"),
            };
            frame::write(&mut wr, &m).await?;
            return Err(ControlError::Malformed("no hello".into()));
        }
    }
    frame::write(
        &mut wr,
        &Message::Hello {
            version: VERSION,
            agent_pid: std::process::id(),
            agent_version: crate::version::long_version(),
        },
    )
    .await?;
    let (tx, mut rx) = mpsc::channel::<Out>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let written = match m {
                Out::Message(m) => frame::write(&mut wr, &m).await,
                Out::Reply { id, ok } => {
                    let r = ReplyOut {
                        kind: "reply",
                        id,
                        ok: &ok,
                    };
                    frame::write(&mut wr, &r).await
                }
            };
            if written.is_err() {
                break;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let result = loop {
        let call: Call = match frame::read(&mut rd, MAX_REQUEST).await {
            Ok(Some(c)) => c,
            Ok(None) => break Ok(()),
            Err(e @ (ControlError::Malformed(_) | ControlError::TooLarge { .. })) => {
                let _ = tx
                    .send(Out::Message(Message::Failed {
                        id: 0,
                        error: WireError::new("malformed", e.to_string()),
                    }))
                    .await;
                break Err(e);
            }
            Err(e) => break Err(e),
        };
        while tasks.try_join_next().is_some() {}
        let (served, tx) = (served.clone(), tx.clone());
        tasks.spawn(async move {
            let id = call.id;
            if let Request::Subscribe = call.req {
                let mut events = served.rt.subscribe();
                let _ = tx
                    .send(Out::Message(Message::Reply {
                        id,
                        ok: serde_json::Value::Null,
                    }))
                    .await;
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            let event = serde_json::to_value(&e).unwrap_or_default();
                            // A full queue: this reader cannot keep up; drop it.
                            if tx.try_send(Out::Message(Message::Event { event })).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            let event = serde_json::json!({"event": "lagged", "missed": n});
                            if tx.try_send(Out::Message(Message::Event { event })).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
            let m = match answer(&served, call.req).await {
                Ok(ok) => Out::Reply { id, ok },
                Err(error) => Out::Message(Message::Failed { id, error }),
            };
            let _ = tx.send(m).await;
        });
    };
    // The peer is gone or broke the protocol: its calls and streams end.
    tasks.abort_all();
    drop(tx);
    let _ = writer.await;
    result
}

/// What a connection's writer sends: a message, or a reply whose answer is
/// already JSON text (a year of chart data is written once, never built as
/// a tree of values first).
enum Out {
    Message(Message),
    Reply {
        id: u64,
        ok: Box<serde_json::value::RawValue>,
    },
}

/// A reply on the wire: the same as [`Message::Reply`].
#[derive(serde::Serialize)]
struct ReplyOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    ok: &'a serde_json::value::RawValue,
}

type Answer = Result<Box<serde_json::value::RawValue>, WireError>;

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

async fn answer(s: &Served, req: Request) -> Answer {
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
            json(super::Networks {
                current,
                error,
                known: s.rt.networks().await?,
            })
        }
        Request::Diagnose { server } => {
            let server = trimmed(server).or_else(|| crate::diag::clock_server(&s.rt.config()));
            let report = crate::diag::collect(server.as_deref()).await;
            let text = report.to_text();
            json(super::Diagnosis { report, text })
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
