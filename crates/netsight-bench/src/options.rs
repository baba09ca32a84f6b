//! Socket options as flags, the same on client and server.

use std::time::Duration;

use serde::Serialize;
use socket2::Socket;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SocketOptions {
    pub nodelay: bool,
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
}
