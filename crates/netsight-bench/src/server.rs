//! `bench server`: many clients at once, each session bounded in time; a
//! connection that does not open with a valid hello gets an error frame and is
//! closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::options::SocketOptions;
use crate::protocol::{self, Hello, Message, Mode, ProtocolError, ServerResult};

/// How long a new connection has to say what it wants.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Past its duration, a session gets this long to finish before it is cut.
const GRACE: Duration = Duration::from_secs(5);
/// Bytes per read and write in stream mode (iperf3's default for TCP).
pub const STREAM_BUFFER: usize = 128 * 1024;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_sessions: usize,
    pub socket: SocketOptions,
}

/// What the server has done, for its log line and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub sessions: AtomicU64,
    pub active: AtomicUsize,
}

/// A session on an accepted connection. Its read timeout, HELLO_TIMEOUT, came
/// with it from the listener (one call fewer per connection).
fn session(mut conn: TcpStream, options: &ServerOptions) -> Result<(), ProtocolError> {
    let (hello, early) = match protocol::read_first(&mut conn) {
        Ok((Message::Hello(h), early)) => (h, early),
        Ok((other, _)) => {
            let _ = protocol::write_message(
                &mut conn,
                &Message::Error {
                    message: "expected a hello".into(),
                },
            );
            return Err(ProtocolError::Unexpected(Box::new(other)));
        }
        Err(e) => {
            let message = match &e {
                ProtocolError::Io(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    format!("no hello within {} s", HELLO_TIMEOUT.as_secs())
                }
                other => other.to_string(),
            };
            let _ = protocol::write_message(&mut conn, &Message::Error { message });
            return Err(e);
        }
    };
    let socket = Socket::from(conn);
    if let Err(e) = options.socket.apply(&socket) {
        let mut conn = TcpStream::from(socket);
        let _ = protocol::write_message(&mut conn, &Message::Error { message: e.clone() });
        return Err(ProtocolError::Refused(e));
    }
    let mut conn = TcpStream::from(socket);
    if hello.mode == Mode::Crr {
        // One transaction, and the server closes first, as an HTTP/1.0 server does:
        // TIME-WAIT stays here, on the listener's port, and the client's ephemeral
        // ports are free again at once. The hello's read timeout bounds it.
        let mut buf = early;
        let size = hello.size as usize;
        if buf.len() > size {
            buf.truncate(size);
        }
        let have = buf.len();
        buf.resize(size, 0);
        conn.read_exact(&mut buf[have..])?;
        // A response that fits the socket buffer never blocks; a larger one is bounded.
        if size > 64 * 1024 {
            conn.set_write_timeout(Some(HELLO_TIMEOUT))?;
        }
        conn.write_all(&buf)?;
        return Ok(());
    }
    if !early.is_empty() {
        // Only a crr client may send before the server is ready.
        let _ = protocol::write_message(
            &mut conn,
            &Message::Error {
                message: "data before ready".into(),
            },
        );
        return Err(ProtocolError::Refused("data before ready".into()));
    }
    let deadline = Instant::now() + Duration::from_millis(hello.duration_ms) + GRACE;
    conn.set_read_timeout(Some(Duration::from_millis(hello.duration_ms) + GRACE))?;
    conn.set_write_timeout(Some(Duration::from_millis(hello.duration_ms) + GRACE))?;
    if hello.mode != Mode::Udp {
        protocol::write_message(&mut conn, &Message::Ready)?;
    }
    match hello {
        Hello {
            mode: Mode::Stream,
            reverse: false,
            ..
        } => receive(&mut conn, deadline),
        Hello {
            mode: Mode::Stream,
            reverse: true,
            duration_ms,
            ..
        } => send(&mut conn, Duration::from_millis(duration_ms)),
        Hello {
            mode: Mode::Rr,
            size,
            ..
        } => echo(&mut conn, size as usize, deadline),
        Hello {
            mode: Mode::Crr, ..
        } => Ok(()),
        Hello {
            mode: Mode::Udp,
            size,
            ..
        } => udp(&mut conn, size as usize, deadline),
    }
}

/// Counts what arrives until the client half-closes, then says how much.
fn receive(conn: &mut TcpStream, deadline: Instant) -> Result<(), ProtocolError> {
    let mut buf = vec![0u8; STREAM_BUFFER];
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 || Instant::now() > deadline {
            break;
        }
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
    }
    let seconds = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    protocol::write_message(conn, &Message::Result(ServerResult { bytes, seconds }))?;
    Ok(())
}

fn send(conn: &mut TcpStream, duration: Duration) -> Result<(), ProtocolError> {
    let buf = vec![0x5au8; STREAM_BUFFER];
    let end = Instant::now() + duration;
    while Instant::now() < end {
        conn.write_all(&buf)?;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    // Wait for the client to close, so its last reads are not cut by a reset.
    let mut sink = [0u8; 64];
    let _ = conn.read(&mut sink);
    Ok(())
}

/// Answers every `size`-byte request with `size` bytes until the client closes.
fn echo(conn: &mut TcpStream, size: usize, deadline: Instant) -> Result<(), ProtocolError> {
    let mut buf = vec![0u8; size];
    loop {
        let mut got = 0;
        while got < size {
            let n = conn.read(&mut buf[got..])?;
            if n == 0 {
                return Ok(());
            }
            got += n;
        }
        conn.write_all(&buf)?;
        if Instant::now() > deadline {
            return Ok(());
        }
    }
}

/// Counts datagrams on a port of its own until the client says it is done
/// (and a moment more for the last ones in flight), then reports.
fn udp(conn: &mut TcpStream, size: usize, deadline: Instant) -> Result<(), ProtocolError> {
    let ip = conn.local_addr()?.ip();
    let socket = Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // As much buffer as net.core.rmem_max allows: loss should be the path's, not ours.
    let _ = socket.set_recv_buffer_size(8 << 20);
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    let socket = std::net::UdpSocket::from(socket);
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let port = socket.local_addr()?.port();
    protocol::write_message(conn, &Message::UdpReady { port })?;
    let done = AtomicBool::new(false);
    let counts = std::thread::scope(|scope| {
        let counter = scope.spawn(|| count_datagrams(&socket, size, deadline, &done));
        let said = protocol::read_message(conn);
        done.store(true, Ordering::Relaxed);
        let counts = counter.join().unwrap_or_default();
        said.map(|_| counts)
    })?;
    protocol::write_message(conn, &Message::UdpResult(counts))?;
    Ok(())
}

fn count_datagrams(
    socket: &std::net::UdpSocket,
    size: usize,
    deadline: Instant,
    done: &AtomicBool,
) -> protocol::UdpCounts {
    let mut buf = vec![0u8; size.max(protocol::UDP_HEADER) + 1];
    let mut counts = protocol::UdpCounts::default();
    let mut highest: Option<u64> = None;
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    let mut quiet_since_done: Option<Instant> = None;
    while Instant::now() < deadline {
        match socket.recv(&mut buf) {
            Ok(n) if n >= protocol::UDP_HEADER => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                counts.received += 1;
                counts.bytes += n as u64;
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&buf[..protocol::UDP_HEADER]);
                let seq = u64::from_le_bytes(seq);
                match highest {
                    Some(h) if seq < h => counts.reordered += 1,
                    _ => highest = Some(seq),
                }
                quiet_since_done = None;
            }
            Ok(_) => {}
            // A read timeout: once the client is done, 200 ms of quiet ends it.
            Err(_) if done.load(Ordering::Relaxed) => {
                let quiet = *quiet_since_done.get_or_insert_with(Instant::now);
                if quiet.elapsed() > Duration::from_millis(200) {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    counts.seconds = first
        .map(|f| last.duration_since(f).as_secs_f64())
        .unwrap_or(0.0);
    counts
}

/// `max_sessions` threads, each accepting and serving one session at a time: no
/// thread is started per connection (that cost dominated a connection-rate
/// test), and a connection beyond them waits in the listen backlog. Returns
/// when every worker's listener has failed.
pub fn serve(listener: TcpListener, options: ServerOptions, stats: Arc<ServerStats>) {
    let options = Arc::new(options);
    let listener = Arc::new(listener);
    let workers: Vec<_> = (0..options.max_sessions.max(1))
        .filter_map(|_| {
            let (listener, options, stats) = (listener.clone(), options.clone(), stats.clone());
            std::thread::Builder::new()
                .name("bench-session".into())
                .stack_size(256 * 1024)
                .spawn(move || loop {
                    let conn = match listener.accept() {
                        Ok((conn, _)) => conn,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::Interrupted
                                    | std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            continue
                        }
                        // Out of descriptors and the like: wait, do not spin.
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    stats.active.fetch_add(1, Ordering::Relaxed);
                    stats.sessions.fetch_add(1, Ordering::Relaxed);
                    let _ = session(conn, &options);
                    stats.active.fetch_sub(1, Ordering::Relaxed);
                })
                .ok()
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

/// Binds `addr` with the server's socket options set on the listener (so
/// accepted sockets inherit buffer sizes before the handshake).
pub fn bind(addr: SocketAddr, options: &SocketOptions) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    options
        .apply(&socket)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // Inherited by every accepted socket: how long a new connection has to say
    // what it wants (it also wakes the accepting threads, which go on waiting).
    socket.set_read_timeout(Some(HELLO_TIMEOUT))?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
