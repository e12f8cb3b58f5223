//! Frames on the control socket: a 4-byte big-endian length, then that many
//! bytes of JSON. A reader names its limit: a longer frame is refused from
//! its length alone, before a byte of it is read or stored.

use super::ControlError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one frame of at most `max` bytes and decodes it; `Ok(None)` when
/// the peer closed the connection between frames.
pub async fn read<R, T>(r: &mut R, max: usize) -> Result<Option<T>, ControlError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    match read_bytes(r, max).await? {
        Some(buf) => serde_json::from_slice(&buf)
            .map(Some)
            .map_err(|e| ControlError::Malformed(e.to_string())),
        None => Ok(None),
    }
}

/// Reads one frame of at most `max` bytes, undecoded.
pub async fn read_bytes<R>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, ControlError>
where
    R: AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ControlError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(ControlError::TooLarge { len, max });
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.map_err(ControlError::Io)?;
    Ok(Some(buf))
}

/// Writes `v` as one frame.
pub async fn write<W, T>(w: &mut W, v: &T) -> Result<(), ControlError>
where
    W: AsyncWrite + Unpin,
    T: Serialize + ?Sized,
{
    let body = serde_json::to_vec(v).map_err(|e| ControlError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| ControlError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    w.write_all(&out).await.map_err(ControlError::Io)?;
    w.flush().await.map_err(ControlError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused_unread() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write(&mut a, &serde_json::json!({"op": "status", "id": 7}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let v: Option<serde_json::Value> =
            read(&mut b, 1024).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Some(serde_json::json!({"op": "status", "id": 7})));
        // A length of 100 MB with no body: refused from the length.
        let _ = a.write_all(&100_000_000u32.to_be_bytes()).await;
        let e = read::<_, serde_json::Value>(&mut b, 1024).await.err();
        assert!(
            matches!(
                e,
                Some(ControlError::TooLarge {
                    len: 100_000_000,
                    max: 1024
                })
            ),
            "{e:?}"
        );
        // Not JSON.
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let _ = a.write_all(&3u32.to_be_bytes()).await;
        let _ = a.write_all(b"{{{").await;
        let e = read::<_, serde_json::Value>(&mut b, 1024).await.err();
        assert!(matches!(e, Some(ControlError::Malformed(_))), "{e:?}");
        // Closed between frames.
        drop(a);
        assert!(matches!(
            read::<_, serde_json::Value>(&mut b, 1024).await,
            Ok(None)
        ));
    }
}
