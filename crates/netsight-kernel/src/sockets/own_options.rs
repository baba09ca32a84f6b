//! Options on this process's own TCP sockets that socket2 and rustix do not
//! wrap: TCP Fast Open (both ends), TCP_DEFER_ACCEPT, and receive timestamps
//! (rustix's recvmsg has no timestamp messages).

use std::os::fd::{AsRawFd, BorrowedFd};

fn set_tcp_int(fd: BorrowedFd<'_>, name: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, name, value)
}

#[allow(unsafe_code)]
fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: value is a live c_int and the length says so; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
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

/// SO_TIMESTAMPNS: the kernel stamps each received segment with its arrival
/// time (CLOCK_REALTIME), which `recv_stamped` returns. Set on a listener,
/// accepted sockets inherit it.
pub fn set_receive_timestamps(fd: BorrowedFd<'_>, on: bool) -> std::io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, i32::from(on))
}

/// A non-blocking read of what has arrived, with the arrival time of its first
/// segment when SO_TIMESTAMPNS is on (None otherwise). WouldBlock when nothing has.
#[allow(unsafe_code)]
pub fn recv_stamped(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<std::time::SystemTime>)> {
    // Room for one cmsghdr with a timespec, 8-byte aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the lengths it gives.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within msg_control/msg_controllen, which the
    // kernel set; a timespec is read only from a header of that type and size.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET
                && h.cmsg_type == libc::SCM_TIMESTAMPNS
                && h.cmsg_len as usize
                    >= libc::CMSG_LEN(std::mem::size_of::<libc::timespec>() as u32) as usize
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec) {
                    stamp = Some(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                    );
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}
