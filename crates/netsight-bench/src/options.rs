//! Socket options as flags, the same on client and server.

use std::time::Duration;

use serde::Serialize;
use socket2::Socket;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SocketOptions {
    pub nodelay: bool,
    /// TCP_QUICKACK after connect: ACK at once rather than delayed (the kernel
    /// may return to delayed ACKs later; crr otherwise asks for delayed ones).
    pub quickack: bool,
    /// TCP_CORK: send only full segments until the socket is uncorked (or 200 ms).
    pub cork: bool,
    /// SO_REUSEPORT: several listeners on one port (the kernel spreads connections).
    pub reuseport: bool,
    /// SO_BUSY_POLL in microseconds: spin on the device queue before sleeping in
    /// a read (above net.core.busy_read it needs CAP_NET_ADMIN).
    pub busy_poll_us: Option<u32>,
    /// TCP Fast Open: data in the SYN (TCP_FASTOPEN_CONNECT on a client, a
    /// TCP_FASTOPEN queue on a listener).
    pub fastopen: bool,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    /// TCP congestion control by name (cubic, bbr, reno).
    pub cc: Option<String>,
    pub tos: Option<u32>,
    pub keepalive: Option<Duration>,
}

impl SocketOptions {
    /// Sets each option given; an error names the option and what the kernel said.
    pub fn apply(&self, socket: &Socket) -> Result<(), String> {
        let named = |what: &str, e: std::io::Error| format!("{what}: {e}");
        if self.nodelay {
            socket
                .set_tcp_nodelay(true)
                .map_err(|e| named("TCP_NODELAY", e))?;
        }
        if self.quickack {
            socket
                .set_tcp_quickack(true)
                .map_err(|e| named("TCP_QUICKACK", e))?;
        }
        if self.cork {
            socket
                .set_tcp_cork(true)
                .map_err(|e| named("TCP_CORK", e))?;
        }
        if self.reuseport {
            socket
                .set_reuse_port(true)
                .map_err(|e| named("SO_REUSEPORT", e))?;
        }
        if let Some(us) = self.busy_poll_us {
            socket.set_busy_poll(us).map_err(|e| {
                named(
                    "SO_BUSY_POLL (above net.core.busy_read it needs CAP_NET_ADMIN)",
                    e,
                )
            })?;
        }
        if let Some(n) = self.rcvbuf {
            socket
                .set_recv_buffer_size(n)
                .map_err(|e| named("SO_RCVBUF", e))?;
        }
        if let Some(n) = self.sndbuf {
            socket
                .set_send_buffer_size(n)
                .map_err(|e| named("SO_SNDBUF", e))?;
        }
        if let Some(cc) = &self.cc {
            socket.set_tcp_congestion(cc.as_bytes()).map_err(|e| {
                named(
                    &format!("TCP_CONGESTION {cc} (see net.ipv4.tcp_available_congestion_control)"),
                    e,
                )
            })?;
        }
        if let Some(tos) = self.tos {
            socket.set_tos_v4(tos).map_err(|e| named("IP_TOS", e))?;
        }
        if let Some(idle) = self.keepalive {
            socket
                .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))
                .map_err(|e| named("SO_KEEPALIVE", e))?;
        }
        Ok(())
    }

    /// Options set on a client socket before connect(): [`apply`](Self::apply)
    /// and, with fastopen, TCP_FASTOPEN_CONNECT (net.ipv4.tcp_fastopen bit 1).
    pub fn apply_client(&self, socket: &Socket) -> Result<(), String> {
        self.apply(socket)?;
        if self.fastopen {
            use std::os::fd::AsFd;
            netsight_kernel::sockets::own_options::set_fastopen_connect(socket.as_fd())
                .map_err(|e| format!("TCP_FASTOPEN_CONNECT: {e}"))?;
        }
        Ok(())
    }

    /// Options set on a listener: [`apply`](Self::apply) (accepted sockets
    /// inherit them) and, with fastopen, a TCP_FASTOPEN queue (net.ipv4.tcp_fastopen
    /// bit 2 enables the server side).
    pub fn apply_listener(&self, socket: &Socket) -> Result<(), String> {
        self.apply(socket)?;
        if self.fastopen {
            use std::os::fd::AsFd;
            netsight_kernel::sockets::own_options::set_fastopen_listener(socket.as_fd(), 1024)
                .map_err(|e| format!("TCP_FASTOPEN: {e}"))?;
        }
        Ok(())
    }
}
