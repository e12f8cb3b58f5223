//! The agent's side of the control socket (Unix): accept, check the peer is
//! this user, greet, then answer calls side by side and forward events to
//! subscribers. A connection's writes go through one writer task, so
//! replies and events never interleave within a frame; a slow reader fills
//! its queue and is dropped rather than holding the runtime up.

use super::{frame, Call, ControlError, Message, Request, WireError};
use super::{MAX_CONNECTIONS, MAX_REQUEST, VERSION};
use crate::config::Paths;
use crate::runtime::{Runtime, RuntimeError};
use crate::settings::{self, Settings};
use crate::store::{HistoryQuery, SeriesQuery};
use crate::sync::{SyncError, Syncer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// What the agent serves: its runtime, its sync worker, where its
/// configuration file is (settings are saved there).
#[derive(Clone)]
pub struct Served {
    pub rt: Runtime,
    pub syncer: Syncer,
    pub paths: Paths,
}

/// Messages queued for one connection's writer.
const QUEUE: usize = 512;

/// Binds the socket at `path` (a stale one left by a killed agent is
/// replaced; a live one is an error) and serves until the runtime closes.
/// The socket file is removed when serving ends.
pub async fn serve(
    path: &Path,
    served: Served,
) -> Result<tokio::task::JoinHandle<()>, ControlError> {
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
    let listener = UnixListener::bind(path).map_err(ControlError::Io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(ControlError::Io)?;
    }
    let path = path.to_owned();
    tracing::info!(socket = %path.display(), "control socket listening");
    Ok(tokio::spawn(accept_loop(listener, path, served)))
}

struct Unlink(PathBuf);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn accept_loop(listener: UnixListener, path: PathBuf, served: Served) {
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
            if let Err(e) = connection(stream, served).await {
                tracing::debug!("control connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn refuse(mut stream: UnixStream, kind: &str, why: &str) {
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

async fn connection(stream: UnixStream, served: Served) -> Result<(), ControlError> {
    let (mut rd, mut wr) = stream.into_split();
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
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if frame::write(&mut wr, &m).await.is_err() {
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
                    .send(Message::Failed {
                        id: 0,
                        error: WireError::new("malformed", e.to_string()),
                    })
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
                    .send(Message::Reply {
                        id,
                        ok: serde_json::Value::Null,
                    })
                    .await;
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            let event = serde_json::to_value(&e).unwrap_or_default();
                            // A full queue: this reader cannot keep up; drop it.
                            if tx.try_send(Message::Event { event }).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            let event = serde_json::json!({"event": "lagged", "missed": n});
                            if tx.try_send(Message::Event { event }).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
            let m = match answer(&served, call.req).await {
                Ok(ok) => Message::Reply { id, ok },
                Err(error) => Message::Failed { id, error },
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

fn rt_err(e: RuntimeError) -> WireError {
    let kind = match &e {
        RuntimeError::ShuttingDown => "shutting_down",
        RuntimeError::NoBandwidthServer => "invalid",
        RuntimeError::Config(_) => "invalid",
        _ => "internal",
    };
    let mut w = WireError::new(kind, e.to_string());
    if let RuntimeError::Config(crate::config::ConfigError::Invalid { key, .. }) = &e {
        w.key = Some(key.clone());
    }
    w
}

fn sync_err(e: SyncError) -> WireError {
    WireError::new("sync", e.to_string())
}

fn json<T: serde::Serialize>(v: T) -> Result<serde_json::Value, WireError> {
    serde_json::to_value(v).map_err(|e| WireError::new("internal", e.to_string()))
}

async fn answer(s: &Served, req: Request) -> Result<serde_json::Value, WireError> {
    match req {
        Request::Hello { .. } => Err(WireError::new("malformed", "hello once, at the start")),
        Request::Subscribe => Ok(serde_json::Value::Null),
        Request::Status => json(s.rt.status().await.map_err(rt_err)?),
        Request::RunNow => json(s.rt.run_now().await.map_err(rt_err)?),
        Request::RunTier { tier } => {
            if !(1..=3).contains(&tier) {
                return Err(WireError::new("invalid", format!("tier {tier}: 1, 2 or 3")));
            }
            json(s.rt.run_tier(tier).await.map_err(rt_err)?)
        }
        Request::SpeedTest => json(s.rt.speed_test().await.map_err(rt_err)?),
        Request::Pause => json(s.rt.pause().await.map_err(rt_err)?),
        Request::Resume => json(s.rt.resume().await.map_err(rt_err)?),
        Request::History {
            target,
            test_type,
            since,
            until,
            limit,
        } => {
            let q = HistoryQuery {
                target,
                test_type,
                since,
                until,
                limit,
            };
            json(s.rt.history(q).await.map_err(rt_err)?)
        }
        Request::Series {
            targets,
            test_type,
            metric,
            since,
            until,
            bucket_secs,
        } => {
            let q = SeriesQuery {
                targets,
                test_type,
                metric,
                since,
                until,
                bucket_secs,
            };
            json(s.rt.series(q).await.map_err(rt_err)?)
        }
        Request::Events { limit } => json(
            s.rt.event_log(None, None, limit.min(10_000))
                .await
                .map_err(rt_err)?,
        ),
        Request::SettingsGet => json(Settings::from_config(&s.rt.config())),
        Request::SettingsSet { settings: new } => {
            let origin = s.paths.config_file.display().to_string();
            let cfg = new
                .apply(&s.rt.config(), &origin)
                .map_err(|e| rt_err(e.into()))?;
            settings::save_config(&s.paths.config_file, &cfg)
                .map_err(|e| WireError::new("io", e.to_string()))?;
            s.rt.set_config(cfg).map_err(rt_err)?;
            json(Settings::from_config(&s.rt.config()))
        }
        Request::Account => json(s.syncer.status().await.map_err(sync_err)?),
        Request::SyncNow => json(
            s.syncer
                .pass_all(chrono::Utc::now())
                .await
                .map_err(sync_err)?,
        ),
        Request::RetryDead => {
            let n = s.syncer.retry_dead(None).await.map_err(sync_err)?;
            s.syncer.sync_soon();
            json(n)
        }
        Request::Logout => {
            s.syncer.logout().await.map_err(sync_err)?;
            json(s.syncer.status().await.map_err(sync_err)?)
        }
    }
}
