//! A TCP socket's retransmissions and delivered bytes as the OS counts
//! them: Linux `TCP_INFO` (`tcpi_total_retrans`, `tcpi_bytes_acked`);
//! other systems do not say (`None`).

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

/// Bytes of `fd`'s socket the peer has acknowledged (Linux 4.1 and later):
/// what an upload has delivered, not what waits in the send buffer.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn bytes_acked(fd: &impl std::os::fd::AsRawFd) -> Option<u64> {
    use nix::libc;
    // The kernel's `struct tcp_info` is longer than the C library's: read
    // it into a byte buffer and take `tcpi_bytes_acked` at its offset.
    const BYTES_ACKED: usize = 120;
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is a writable buffer of `len` bytes for the kernel to
    // fill, `len` says so, and the descriptor is an open socket.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 || (len as usize) < BYTES_ACKED + 8 {
        return None;
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&buf[BYTES_ACKED..BYTES_ACKED + 8]);
    Some(u64::from_ne_bytes(v))
}
