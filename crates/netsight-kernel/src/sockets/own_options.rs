//! Options on this process's own TCP sockets that socket2 and rustix do not
//! wrap: TCP Fast Open (both ends) and TCP_DEFER_ACCEPT.

use std::os::fd::{AsRawFd, BorrowedFd};

#[allow(unsafe_code)]
fn set_tcp_int(fd: BorrowedFd<'_>, name: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: value is a live c_int and the length says so; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// TCP_FASTOPEN on a listener: accept data in the SYN, with at most `queue`
/// such connections not yet accepted. Works only when net.ipv4.tcp_fastopen has
/// bit 2 (server) set.
pub fn set_fastopen_listener(fd: BorrowedFd<'_>, queue: u32) -> std::io::Result<()> {
    set_tcp_int(
        fd,
        libc::TCP_FASTOPEN,
        queue.min(i32::MAX as u32) as libc::c_int,
    )
}

/// TCP_FASTOPEN_CONNECT on a client socket: connect() returns at once and the
/// first write goes out in the SYN (with a cookie from an earlier connection).
pub fn set_fastopen_connect(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    set_tcp_int(fd, libc::TCP_FASTOPEN_CONNECT, 1)
}

/// TCP_DEFER_ACCEPT on a listener: accept() returns a connection only once
/// data has arrived on it (or after about `seconds`).
pub fn set_defer_accept(fd: BorrowedFd<'_>, seconds: u32) -> std::io::Result<()> {
    set_tcp_int(
        fd,
        libc::TCP_DEFER_ACCEPT,
        seconds.min(i32::MAX as u32) as libc::c_int,
    )
}
