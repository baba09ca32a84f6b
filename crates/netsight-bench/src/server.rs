//! `bench server`: many clients at once, each session bounded in time; a
//! connection that does not open with a valid hello gets an error frame and is
//! closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::options::SocketOptions;
use crate::protocol::{
    self, Hello, Message, Mode, Observe, ProtocolError, ServerReport, ServerResult,
};
use crate::why::{FlowLimits, Sampler};

/// How long a new connection has to say what it wants.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Past its duration, a session gets this long to finish before it is cut.
const GRACE: Duration = Duration::from_secs(5);
/// Bytes per read and write in stream mode (iperf3's default for TCP).
pub const STREAM_BUFFER: usize = 128 * 1024;
/// Bytes per read of a stream receiver.
pub const RECEIVE_BUFFER: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_sessions: usize,
    pub socket: SocketOptions,
    /// Watches the server's host over a client's run, when asked to.
    pub observer: Option<Arc<dyn HostObserver>>,
}

/// What the server's host did over a client's run (the binary plugs doctor in).
pub trait HostObserver: Send + Sync + std::fmt::Debug {
    /// A run starts: remember the host's state under `run`.
    fn begin(&self, run: u64);
    /// The run is over: what happened since `begin`, or None if it was not begun.
    fn end(&self, run: u64) -> Option<serde_json::Value>;
}

/// What the server has done, for its log line and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub sessions: AtomicU64,
    pub active: AtomicUsize,
    /// The sender's view of reversed streams by the client's id, until a report
    /// takes it (at most MAX_KEPT_LIMITS: a client that never asks loses nothing
    /// but its own).
    sender_limits: std::sync::Mutex<std::collections::BTreeMap<u64, FlowLimits>>,
    /// crr: from the segment that made each connection acceptable (with Fast
    /// Open the SYN itself) to accept(), in ns, by the client's run id until a
    /// report takes it (at most MAX_KEPT_LIMITS runs).
    accept_waits: std::sync::Mutex<std::collections::BTreeMap<u64, hdrhistogram::Histogram<u64>>>,
}

const MAX_KEPT_LIMITS: usize = 4096;

impl ServerStats {
    fn keep_limits(&self, run: u64, limits: FlowLimits) {
        let mut kept = self.sender_limits.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_KEPT_LIMITS {
            kept.pop_first();
        }
        kept.insert(run, limits);
    }

    fn record_accept_wait(&self, run: u64, wait: Duration) {
        let mut waits = self.accept_waits.lock().unwrap_or_else(|e| e.into_inner());
        if !waits.contains_key(&run) && waits.len() >= MAX_KEPT_LIMITS {
            waits.pop_first();
        }
        let _ = waits
            .entry(run)
            .or_insert_with(crate::client::histogram)
            .record((wait.as_nanos() as u64).max(1));
    }

    fn take_accept_waits(&self, run: u64) -> Option<crate::client::Latency> {
        let waits = self
            .accept_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run)?;
        Some(crate::client::Latency::of(&waits))
    }

    fn take_limits(&self, run: u64, streams: u32) -> Vec<Option<FlowLimits>> {
        let mut kept = self.sender_limits.lock().unwrap_or_else(|e| e.into_inner());
        (0..u64::from(streams))
            .map(|i| kept.remove(&run.wrapping_add(i)))
            .collect()
    }
}

/// A session on an accepted connection. Its read timeout, HELLO_TIMEOUT, came
/// with it from the listener (one call fewer per connection).
fn session(
    mut conn: TcpStream,
    received: Vec<u8>,
    options: &ServerOptions,
    stats: &ServerStats,
) -> Result<(), ProtocolError> {
    let (hello, early) = match protocol::read_first(&mut conn, received) {
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
    if hello.mode == Mode::Report {
        let observer = options.observer.as_ref().filter(|_| hello.run != 0);
        let host = match (hello.observe, observer) {
            (Observe::Begin, Some(o)) => {
                o.begin(hello.run);
                None
            }
            (Observe::End, Some(o)) => o.end(hello.run),
            _ => None,
        };
        let report = ServerReport {
            mib: netsight_kernel::procfs::snmp::read_now(),
            sender_limits: stats.take_limits(hello.run, hello.size),
            accept_wait: (hello.observe == Observe::End)
                .then(|| stats.take_accept_waits(hello.run))
                .flatten(),
            host,
        };
        return Ok(protocol::write_message(
            &mut conn,
            &Message::Report(report),
        )?);
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
            run,
            ..
        } => {
            let limits = send(&mut conn, Duration::from_millis(duration_ms))?;
            if let (Some(limits), true) = (limits, run != 0) {
                stats.keep_limits(run, limits);
            }
            Ok(())
        }
        Hello {
            mode: Mode::Rr,
            size,
            ..
        } => echo(&mut conn, size as usize, deadline),
        Hello {
            mode: Mode::Crr | Mode::Report,
            ..
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
    let mut buf = vec![0u8; RECEIVE_BUFFER];
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

/// Sends for `duration` (a reversed stream), sampling tcp_info as the client's
/// sender does; returns why it went at the rate it did.
fn send(conn: &mut TcpStream, duration: Duration) -> Result<Option<FlowLimits>, ProtocolError> {
    let buf = vec![0x5au8; STREAM_BUFFER];
    let start = Instant::now();
    let end = start + duration;
    let mut sampler = Sampler::new();
    sampler.sample(conn.as_fd());
    let mut next_sample = start + crate::why::SAMPLE_EVERY;
    let mut sent = 0u64;
    while Instant::now() < end {
        conn.write_all(&buf)?;
        sent += buf.len() as u64;
        if Instant::now() >= next_sample {
            sampler.sample(conn.as_fd());
            next_sample += crate::why::SAMPLE_EVERY;
        }
    }
    sampler.sample(conn.as_fd());
    let seconds = start.elapsed().as_secs_f64();
    conn.shutdown(std::net::Shutdown::Write)?;
    // Wait for the client to close, so its last reads are not cut by a reset.
    let mut sink = [0u8; 64];
    let _ = conn.read(&mut sink);
    // The receiver got all of it (TCP), in about the time it took to send.
    Ok(sampler.limits(sent as f64 * 8.0 / seconds.max(1e-9), seconds))
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

/// One accepting thread per CPU. A crr transaction whose request is already
/// there (TCP_DEFER_ACCEPT waits for it) is answered on the accepting thread,
/// which under load never sleeps; any other session gets a thread of its own,
/// up to `max_sessions` at once. (A thread per connection, or hundreds of threads
/// all waiting in accept, each cost a wake-up per connection, and wake-ups were
/// most of a connection-rate test's time.) Returns when every accepting thread's
/// listener has failed.
pub fn serve(listener: TcpListener, options: ServerOptions, stats: Arc<ServerStats>) {
    // A second socket that wants receive timestamps, held while serving: the
    // kernel counts such sockets, and each time the count falls to one (the
    // listener alone, as crr's connections come and go one at a time) it turns
    // timestamping off system-wide by patching its code, and the next connection
    // turns it back on: about a millisecond each time.
    let _timestamps_held = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| {
        netsight_kernel::sockets::own_options::set_receive_timestamps(s.as_fd(), true)?;
        Ok(s)
    });
    let options = Arc::new(options);
    let listener = Arc::new(listener);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let acceptors: Vec<_> = (0..cpus.min(options.max_sessions.max(1)))
        .filter_map(|_| {
            let (listener, options, stats) = (listener.clone(), options.clone(), stats.clone());
            std::thread::Builder::new()
                .name("bench-accept".into())
                .spawn(move || accept_loop(&listener, &options, &stats))
                .ok()
        })
        .collect();
    for a in acceptors {
        let _ = a.join();
    }
}

fn accept_loop(listener: &TcpListener, options: &Arc<ServerOptions>, stats: &Arc<ServerStats>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut conn = match listener.accept() {
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
        let accepted = std::time::SystemTime::now();
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        // What has arrived, without waiting for more, and when it arrived.
        let (have, arrived) =
            netsight_kernel::sockets::own_options::recv_stamped(conn.as_fd(), &mut buf[..])
                .unwrap_or((0, None));
        if let Some((run, response)) = crr_response(&buf[..have]) {
            if let (Some(arrived), true) = (arrived, run != 0) {
                let wait = accepted.duration_since(arrived).unwrap_or_default();
                stats.record_accept_wait(run, wait);
            }
            // An option the kernel refuses is reported by the session below.
            if options.socket.apply(&socket2::SockRef::from(&conn)).is_ok() {
                // MSG_MORE holds the response back until close, which sends
                // it with the FIN: one segment fewer per connection.
                let flags = rustix::net::SendFlags::MORE | rustix::net::SendFlags::NOSIGNAL;
                if rustix::net::send(&conn, response, flags) != Ok(response.len()) {
                    let _ = conn.write_all(response);
                }
                continue;
            }
        }
        let early = buf[..have].to_vec();
        // Inherited from the listener for crr's accept wait; a session does not
        // need it, and a stream receiver would pay for it on every read.
        let _ = netsight_kernel::sockets::own_options::set_receive_timestamps(conn.as_fd(), false);
        if stats.active.fetch_add(1, Ordering::Relaxed) >= options.max_sessions {
            stats.active.fetch_sub(1, Ordering::Relaxed);
            let message = format!("server busy: {} sessions at once", options.max_sessions);
            let _ = protocol::write_message(&mut conn, &Message::Error { message });
            continue;
        }
        let (options, session_stats) = (options.clone(), stats.clone());
        let spawned = std::thread::Builder::new()
            .name("bench-session".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let _ = session(conn, early, &options, &session_stats);
                session_stats.active.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            stats.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The run and the response of a crr transaction whose hello and request are
/// all in `bytes` (a small one, which fits the socket buffer), or None.
fn crr_response(bytes: &[u8]) -> Option<(u64, &[u8])> {
    match protocol::decode(bytes) {
        Ok((Message::Hello(hello), used))
            if hello.mode == Mode::Crr
                && hello.size <= 64 * 1024
                && bytes.len() - used == hello.size as usize =>
        {
            Some((hello.run, &bytes[used..]))
        }
        _ => None,
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
        .apply_listener(&socket)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // Inherited by every accepted socket: how long a new connection has to say
    // what it wants (it also wakes the accepting threads, which go on waiting).
    socket.set_read_timeout(Some(HELLO_TIMEOUT))?;
    // accept() once the client has said something (a silent one after about a
    // second, to be told it was silent): the accepting thread does not wait.
    netsight_kernel::sockets::own_options::set_defer_accept(socket.as_fd(), 1)?;
    // Accepted sockets inherit it: crr's accept wait is timed from the arrival.
    netsight_kernel::sockets::own_options::set_receive_timestamps(socket.as_fd(), true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
