//! rtnetlink change reports: a socket in the link, address and route
//! multicast groups, read through tokio (netlink-sys's tokio socket).

use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

// rtnetlink multicast groups (linux/rtnetlink.h, the RTMGRP_* bit masks).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// Reports were lost to a full receive buffer: still a change.
const ENOBUFS: i32 = nix::errno::Errno::ENOBUFS as i32;

pub struct Changes {
    sock: TokioSocket,
}

impl Changes {
    pub fn new() -> std::io::Result<Changes> {
        let mut sock = TokioSocket::new(NETLINK_ROUTE)?;
        sock.socket_mut().bind(&SocketAddr::new(
            0,
            RTMGRP_LINK
                | RTMGRP_IPV4_IFADDR
                | RTMGRP_IPV4_ROUTE
                | RTMGRP_IPV6_IFADDR
                | RTMGRP_IPV6_ROUTE,
        ))?;
        Ok(Changes { sock })
    }

    /// The next report, and every one queued behind it.
    pub async fn next(&mut self) -> std::io::Result<()> {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        match self.sock.recv(&mut buf).await {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => {}
            Err(e) => return Err(e),
        }
        let dontwait = nix::sys::socket::MsgFlags::MSG_DONTWAIT.bits();
        loop {
            buf.clear();
            match self.sock.socket_ref().recv(&mut buf, dontwait) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => continue,
                Err(_) => return Ok(()),
            }
        }
    }
}
