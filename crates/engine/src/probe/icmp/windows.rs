//! ICMP on Windows through the ICMP helper API (`IcmpSendEcho2`,
//! `Icmp6SendEcho2`), which needs no privilege. Each echo is one blocking
//! call on tokio's blocking pool; its round trip is timed here with the
//! monotonic clock (the API's own figure is whole milliseconds). TTL and
//! Don't Fragment go in the request options; the API reports a router's
//! "TTL expired" and "packet too big" as statuses with the router's address.
#![allow(unsafe_code)]

use super::{Echo, Method, Outcome, ProbeError, SessionOptions};
use crate::model::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;
use windows_sys::Win32::Foundation::{GetLastError, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    Icmp6CreateFile, Icmp6ParseReplies, Icmp6SendEcho2, IcmpCloseHandle, IcmpCreateFile,
    IcmpSendEcho2, ICMPV6_ECHO_REPLY_LH, ICMP_ECHO_REPLY, IP_FLAG_DF, IP_OPTION_INFORMATION,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET6, IN6_ADDR, IN6_ADDR_0, SOCKADDR_IN6};

// IP_STATUS values (ipexport.h).
const IP_SUCCESS: u32 = 0;
const IP_DEST_NET_UNREACHABLE: u32 = 11002;
const IP_DEST_HOST_UNREACHABLE: u32 = 11003;
const IP_DEST_PROT_UNREACHABLE: u32 = 11004;
const IP_DEST_PORT_UNREACHABLE: u32 = 11005;
const IP_PACKET_TOO_BIG: u32 = 11009;
const IP_REQ_TIMED_OUT: u32 = 11010;
const IP_TTL_EXPIRED_TRANSIT: u32 = 11013;
const IP_TTL_EXPIRED_REASSEM: u32 = 11014;

/// The ICMP handle; the API allows concurrent calls on one handle.
struct Handle(HANDLE);
// SAFETY: an ICMP handle is a kernel object handle, usable from any thread.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from Icmp(6)CreateFile and is closed once.
        unsafe {
            IcmpCloseHandle(self.0);
        }
    }
}

pub struct Session {
    handle: Arc<Handle>,
    ipv6: bool,
    dont_fragment: bool,
}

pub fn available(ipv6: bool) -> Vec<(Method, Result<(), String>)> {
    let r = Session::open(ipv6, SessionOptions::default())
        .map(drop)
        .map_err(|e| e.message);
    vec![(Method::WindowsApi, r)]
}

impl Session {
    pub fn open(ipv6: bool, opts: SessionOptions) -> Result<Session, ProbeError> {
        if opts.only.is_some_and(|m| m != Method::WindowsApi) {
            return Err(ProbeError::new(
                ErrorKind::Permission,
                "only the Windows ICMP API is used on Windows",
            ));
        }
        // SAFETY: plain calls without arguments; the result is checked.
        let h = unsafe {
            if ipv6 {
                Icmp6CreateFile()
            } else {
                IcmpCreateFile()
            }
        };
        if h == INVALID_HANDLE_VALUE || h.is_null() {
            // SAFETY: reads the calling thread's last error.
            let code = unsafe { GetLastError() };
            return Err(ProbeError::new(
                ErrorKind::Permission,
                format!("cannot open the Windows ICMP API (error {code})"),
            ));
        }
        Ok(Session {
            handle: Arc::new(Handle(h)),
            ipv6,
            dont_fragment: opts.dont_fragment,
        })
    }

    pub fn method(&self) -> Method {
        Method::WindowsApi
    }

    pub async fn echo(&self, e: Echo) -> Result<Outcome, ProbeError> {
        let handle = self.handle.clone();
        let dont_fragment = self.dont_fragment;
        let ipv6 = self.ipv6;
        tokio::task::spawn_blocking(move || blocking_echo(&handle, ipv6, dont_fragment, e))
            .await
            .map_err(|err| ProbeError::new(ErrorKind::Io, format!("ICMP echo task: {err}")))?
    }
}

fn blocking_echo(
    handle: &Handle,
    ipv6: bool,
    dont_fragment: bool,
    e: Echo,
) -> Result<Outcome, ProbeError> {
    let data: Vec<u8> = (0..e.payload).map(|i| b"WaddlePerf"[i % 10]).collect();
    let size = u16::try_from(data.len())
        .map_err(|_| ProbeError::new(ErrorKind::Config, "payload larger than 65535 bytes"))?;
    let options = IP_OPTION_INFORMATION {
        Ttl: e.ttl.unwrap_or(128),
        Tos: 0,
        Flags: if dont_fragment { IP_FLAG_DF as u8 } else { 0 },
        OptionsSize: 0,
        OptionsData: std::ptr::null_mut(),
    };
    // Room for one reply, the echoed data and an ICMP error's quoted packet.
    let reply_len = std::mem::size_of::<ICMP_ECHO_REPLY>() + data.len() + 8 + 64;
    let mut reply = vec![0u64; reply_len.div_ceil(8)];
    let timeout_ms = u32::try_from(e.timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    let start = Instant::now();
    let (count, status, from) = match e.dst {
        IpAddr::V4(dst) if !ipv6 => {
            // SAFETY: every pointer is valid for the call's duration and the
            // reply buffer's size is passed with it.
            let n = unsafe {
                IcmpSendEcho2(
                    handle.0,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    u32::from_ne_bytes(dst.octets()),
                    data.as_ptr().cast(),
                    size,
                    &options,
                    reply.as_mut_ptr().cast(),
                    (reply.len() * 8) as u32,
                    timeout_ms,
                )
            };
            // SAFETY: the buffer is 8-byte aligned and holds at least one reply.
            let r = unsafe { &*(reply.as_ptr() as *const ICMP_ECHO_REPLY) };
            let from = IpAddr::V4(Ipv4Addr::from(r.Address.to_ne_bytes()));
            (n, if n == 0 { last_status() } else { r.Status }, from)
        }
        IpAddr::V6(dst) if ipv6 => {
            let source = sockaddr6(Ipv6Addr::UNSPECIFIED);
            let dest = sockaddr6(dst);
            // SAFETY: as above.
            let n = unsafe {
                Icmp6SendEcho2(
                    handle.0,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    &source,
                    &dest,
                    data.as_ptr().cast(),
                    size,
                    &options,
                    reply.as_mut_ptr().cast(),
                    (reply.len() * 8) as u32,
                    timeout_ms,
                )
            };
            // SAFETY: the reply buffer was filled by Icmp6SendEcho2.
            unsafe { Icmp6ParseReplies(reply.as_mut_ptr().cast(), (reply.len() * 8) as u32) };
            // SAFETY: the buffer is aligned and holds at least one reply.
            let r = unsafe { &*(reply.as_ptr() as *const ICMPV6_ECHO_REPLY_LH) };
            let mut octets = [0u8; 16];
            // A copy: the reply struct is packed.
            let words = r.Address.sin6_addr;
            for (i, w) in words.iter().enumerate() {
                octets[i * 2..i * 2 + 2].copy_from_slice(&w.to_ne_bytes());
            }
            let from = IpAddr::V6(Ipv6Addr::from(octets));
            (n, if n == 0 { last_status() } else { r.Status }, from)
        }
        _ => {
            return Err(ProbeError::new(
                ErrorKind::Config,
                "address family does not match the ICMP session",
            ))
        }
    };
    let rtt = start.elapsed();
    let _ = count;
    Ok(match status {
        IP_SUCCESS => Outcome::Reply { from, rtt },
        IP_TTL_EXPIRED_TRANSIT | IP_TTL_EXPIRED_REASSEM => Outcome::TimeExceeded { from, rtt },
        IP_PACKET_TOO_BIG => Outcome::TooBig {
            from: Some(from),
            mtu: None,
        },
        IP_DEST_NET_UNREACHABLE => Outcome::Unreachable { from, rtt, code: 0 },
        IP_DEST_HOST_UNREACHABLE => Outcome::Unreachable { from, rtt, code: 1 },
        IP_DEST_PROT_UNREACHABLE => Outcome::Unreachable { from, rtt, code: 2 },
        IP_DEST_PORT_UNREACHABLE => Outcome::Unreachable { from, rtt, code: 3 },
        IP_REQ_TIMED_OUT => Outcome::Timeout,
        other => {
            return Err(ProbeError::new(
                ErrorKind::Io,
                format!("the Windows ICMP API failed with status {other}"),
            ))
        }
    })
}

fn last_status() -> u32 {
    // SAFETY: reads the calling thread's last error.
    unsafe { GetLastError() }
}

fn sockaddr6(ip: Ipv6Addr) -> SOCKADDR_IN6 {
    SOCKADDR_IN6 {
        sin6_family: AF_INET6,
        sin6_addr: IN6_ADDR {
            u: IN6_ADDR_0 { Byte: ip.octets() },
        },
        ..Default::default()
    }
}
