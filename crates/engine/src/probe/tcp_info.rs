//! A TCP socket's retransmissions as the OS counts them: Linux `TCP_INFO`
//! (`tcpi_total_retrans`); other systems do not say (`None`).

use tokio::net::TcpStream;

/// Segments retransmitted on `s` since it opened.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn total_retrans(s: &TcpStream) -> Option<u64> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes for the kernel to
    // fill, `len` says so, and the descriptor is the open socket of `s`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, then filled by the kernel; every field is
    // a plain integer, so any bytes are a valid value.
    let info = unsafe { info.assume_init() };
    Some(u64::from(info.tcpi_total_retrans))
}

#[cfg(not(target_os = "linux"))]
pub fn total_retrans(_s: &TcpStream) -> Option<u64> {
    None
}
