//! One netlink request and its answer (a single message or a dump), on a
//! blocking socket with a receive timeout; bounded in size and time.

use super::super::NetCtxError;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use std::fmt::Debug;
use std::time::Duration;

/// No answer from the kernel within this: something is wrong.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// A dump larger than this is refused (a machine with thousands of routes
/// is still far below it).
const MAX_DUMP_BYTES: usize = 32 * 1024 * 1024;
/// The largest datagram read at once (the kernel sends at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;

pub(super) fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> NetCtxError {
    move |source| NetCtxError::Os { what, source }
}

/// A bound netlink socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_GENERIC`).
pub(super) fn open(protocol: isize, what: &'static str) -> Result<Socket, NetCtxError> {
    let mut s = Socket::new(protocol).map_err(os(what))?;
    s.bind_auto().map_err(os(what))?;
    s.connect(&SocketAddr::new(0, 0)).map_err(os(what))?;
    let tv = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
        .map_err(|e| os(what)(std::io::Error::from(e)))?;
    Ok(s)
}

/// Whether to ask for one object or for all of them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Get,
    Dump,
}

/// Sends `payload` and collects the answers: every message of a dump, or the
/// one answer (and its ACK) of a request.
pub(super) fn request<I>(
    sock: &Socket,
    payload: I,
    kind: Kind,
    what: &'static str,
) -> Result<Vec<I>, NetCtxError>
where
    I: NetlinkSerializable + NetlinkDeserializable + Debug,
{
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST
        | match kind {
            Kind::Get => NLM_F_ACK,
            Kind::Dump => NLM_F_DUMP,
        };
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    msg.finalize();
    let mut out = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut out);
    sock.send(&out, 0).map_err(os(what))?;

    let mut answers = Vec::new();
    let mut total = 0usize;
    loop {
        let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
        let n = sock.recv(&mut buf, libc_msg_trunc()).map_err(os(what))?;
        if n > buf.len() {
            return Err(NetCtxError::Garbled {
                what,
                detail: format!("a {n}-byte netlink datagram (more than {RECV_BUF})"),
            });
        }
        total += n;
        if total > MAX_DUMP_BYTES {
            return Err(NetCtxError::Garbled {
                what,
                detail: format!("the answer exceeds {MAX_DUMP_BYTES} bytes"),
            });
        }
        match parse_datagram::<I>(&buf, seq, what, &mut answers)? {
            Next::More => continue,
            Next::Done => return Ok(answers),
        }
    }
}

/// `MSG_TRUNC`, so a datagram longer than the buffer is noticed.
fn libc_msg_trunc() -> i32 {
    nix::sys::socket::MsgFlags::MSG_TRUNC.bits()
}

pub(super) enum Next {
    More,
    Done,
}

/// The messages of one datagram, appended to `into`; says whether the
/// answer is complete. Messages of other sequence numbers (a stale answer)
/// are skipped.
pub(super) fn parse_datagram<I>(
    buf: &[u8],
    seq: u32,
    what: &'static str,
    into: &mut Vec<I>,
) -> Result<Next, NetCtxError>
where
    I: NetlinkDeserializable + Debug,
{
    let garbled = |detail: String| NetCtxError::Garbled { what, detail };
    let mut off = 0usize;
    while off + 16 <= buf.len() {
        let len_bytes: [u8; 4] = buf[off..off + 4]
            .try_into()
            .map_err(|_| garbled("a short netlink header".into()))?;
        let len = u32::from_ne_bytes(len_bytes) as usize;
        if len < 16 || off + len > buf.len() {
            return Err(garbled(format!(
                "a netlink message of {len} bytes at offset {off} of {}",
                buf.len()
            )));
        }
        let m = NetlinkMessage::<I>::deserialize(&buf[off..off + len])
            .map_err(|e| garbled(e.to_string()))?;
        off += (len + 3) & !3;
        if m.header.sequence_number != seq && seq != 0 {
            continue;
        }
        match m.payload {
            NetlinkPayload::Done(_) => return Ok(Next::Done),
            NetlinkPayload::Error(e) => match e.code {
                None => return Ok(Next::Done),
                Some(code) => {
                    return Err(NetCtxError::Os {
                        what,
                        source: std::io::Error::from_raw_os_error(-code.get()),
                    })
                }
            },
            // A request's one answer is followed by its ACK (in this or the
            // next datagram); a dump's parts by `Done`.
            NetlinkPayload::InnerMessage(i) => into.push(i),
            _ => {}
        }
    }
    Ok(Next::More)
}
