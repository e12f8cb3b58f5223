//! The agent's side of the control socket: accept, check the peer is this
//! user, greet, then answer calls side by side and forward events to
//! subscribers. A connection's writes go through one writer task, so
//! replies and events never interleave within a frame; a slow reader fills
//! its queue and is dropped rather than holding the runtime up.

use super::{frame, Call, ControlError, Message, Request, WireError};
use super::{MAX_REQUEST, VERSION};
use crate::config::Paths;
use crate::device::DeviceInfo;
use crate::runtime::Runtime;
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

mod answer;
use answer::answer;
pub use answer::{check_series, HISTORY_MAX, MAX_BUCKETS};
