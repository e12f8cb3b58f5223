//! A client of the agent's control socket (a Unix socket, a named pipe on
//! Windows): connect and greet, then calls one after another; events that
//! arrive while waiting for a reply go to the caller's handler.

use super::{frame, Call, ControlError, Message, Request};
use super::{MAX_REPLY, VERSION};
use serde_json::value::RawValue;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncWrite};

/// Enough of a message to tell a reply and its id.
#[derive(serde::Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: u64,
}

#[derive(serde::Deserialize)]
struct RawReply {
    ok: Box<RawValue>,
}

/// A connection to the agent, whatever carries it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

#[cfg(unix)]
async fn open(path: &Path) -> Result<Box<dyn Stream>, ControlError> {
    match tokio::net::UnixStream::connect(path).await {
        Ok(s) => Ok(Box::new(s)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Err(ControlError::NotRunning(path.to_owned()))
        }
        Err(e) => Err(ControlError::Io(e)),
    }
}

#[cfg(windows)]
async fn open(path: &Path) -> Result<Box<dyn Stream>, ControlError> {
    use tokio::net::windows::named_pipe::ClientOptions;
    // All instances busy (another client is between connect and accept):
    // a moment later there is a new one.
    const PIPE_BUSY: i32 = 231;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match ClientOptions::new().open(path.as_os_str()) {
            Ok(p) => return Ok(Box::new(p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ControlError::NotRunning(path.to_owned()))
            }
            Err(e)
                if e.raw_os_error() == Some(PIPE_BUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(ControlError::Io(e)),
        }
    }
}

#[cfg(not(any(unix, windows)))]
async fn open(_path: &Path) -> Result<Box<dyn Stream>, ControlError> {
    Err(ControlError::Unsupported)
}

pub struct Client {
    stream: Box<dyn Stream>,
    next: u64,
    /// The agent's pid and version, from its greeting.
    pub agent_pid: u32,
    pub agent_version: String,
}

impl Client {
    /// Connects to the agent at `path` and greets it as `client`.
    /// [`ControlError::NotRunning`] when nothing listens there.
    pub async fn connect(path: &Path, client: &str) -> Result<Client, ControlError> {
        let mut stream = open(path).await?;
        let hello = Call {
            id: 0,
            req: Request::Hello {
                version: VERSION,
                client: client.to_owned(),
            },
        };
        frame::write(&mut stream, &hello).await?;
        let greeting = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            frame::read::<_, Message>(&mut stream, MAX_REPLY),
        )
        .await
        .map_err(|_| ControlError::Gone)??;
        match greeting {
            Some(Message::Hello {
                version,
                agent_pid,
                agent_version,
            }) if version == VERSION => Ok(Client {
                stream,
                next: 1,
                agent_pid,
                agent_version,
            }),
            Some(Message::Hello { version, .. }) => Err(ControlError::Version {
                agent: version,
                ours: VERSION,
            }),
            Some(Message::Failed { error, .. }) => Err(ControlError::Agent(error)),
            Some(_) => Err(ControlError::Malformed("the agent did not greet".into())),
            None => Err(ControlError::Gone),
        }
    }

    /// Sends `req` and waits for its answer, as the agent wrote it (JSON
    /// text, not decoded: a window passes it on as it is); events arriving
    /// meanwhile go to `on_event`.
    pub async fn call_raw_with_events(
        &mut self,
        req: Request,
        mut on_event: impl FnMut(serde_json::Value),
    ) -> Result<Box<RawValue>, ControlError> {
        let id = self.next;
        self.next += 1;
        frame::write(&mut self.stream, &Call { id, req }).await?;
        let malformed = |e: serde_json::Error| ControlError::Malformed(e.to_string());
        loop {
            let Some(bytes) = frame::read_bytes(&mut self.stream, MAX_REPLY).await? else {
                return Err(ControlError::Gone);
            };
            // Replies are read without building their answer; the rest whole.
            let peek: Peek = serde_json::from_slice(&bytes).map_err(malformed)?;
            if peek.kind == "reply" {
                if peek.id == id {
                    let r: RawReply = serde_json::from_slice(&bytes).map_err(malformed)?;
                    return Ok(r.ok);
                }
                continue;
            }
            match serde_json::from_slice::<Message>(&bytes).map_err(malformed)? {
                Message::Failed { id: i, error } if i == id || i == 0 => {
                    return Err(ControlError::Agent(error))
                }
                Message::Event { event } => on_event(event),
                _ => {}
            }
        }
    }

    /// Sends `req` and waits for its answer; events arriving meanwhile go to
    /// `on_event`.
    pub async fn call_with_events(
        &mut self,
        req: Request,
        on_event: impl FnMut(serde_json::Value),
    ) -> Result<serde_json::Value, ControlError> {
        let raw = self.call_raw_with_events(req, on_event).await?;
        serde_json::from_str(raw.get()).map_err(|e| ControlError::Malformed(e.to_string()))
    }

    /// Sends `req` and waits for its answer.
    pub async fn call(&mut self, req: Request) -> Result<serde_json::Value, ControlError> {
        self.call_with_events(req, |_| {}).await
    }

    /// Sends `req` and waits for its answer, undecoded.
    pub async fn call_raw(&mut self, req: Request) -> Result<Box<RawValue>, ControlError> {
        self.call_raw_with_events(req, |_| {}).await
    }

    /// The next event after [`Request::Subscribe`]; `Gone` when the agent
    /// goes.
    pub async fn next_event(&mut self) -> Result<serde_json::Value, ControlError> {
        loop {
            match frame::read::<_, Message>(&mut self.stream, MAX_REPLY).await? {
                Some(Message::Event { event }) => return Ok(event),
                Some(_) => {}
                None => return Err(ControlError::Gone),
            }
        }
    }
}
