//! The client modes: stream (throughput), rr (request/response latency), crr
//! (connect/request/response/close rate). Results carry their units in their names.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use socket2::Socket;

use crate::options::SocketOptions;
use crate::protocol::{self, Hello, Message, Mode, ProtocolError};
use crate::server::STREAM_BUFFER;
use crate::why::{FlowLimits, Sampler, SAMPLE_EVERY};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Options(String),
}

impl From<rustix::io::Errno> for BenchError {
    fn from(e: rustix::io::Errno) -> Self {
        std::io::Error::from(e).into()
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError::Protocol(ProtocolError::Io(e))
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;

/// Counters the client loops bump as they go, for a live line or `--json-stream`:
/// bytes moved (stream) and operations done (rr and crr transactions, udp datagrams sent).
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: std::sync::atomic::AtomicU64,
    pub ops: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn add_bytes(&self, n: u64) {
        self.bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    fn add_ops(&self, n: u64) {
        self.ops.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A TCP (STREAM) or UDP (DGRAM) socket for `addr`, with the options set.
fn new_socket(addr: SocketAddr, ty: socket2::Type, options: &SocketOptions) -> Result<Socket> {
    let socket = Socket::new(socket2::Domain::for_address(addr), ty, None)
        .map_err(|source| BenchError::Connect { addr, source })?;
    options.apply_client(&socket).map_err(BenchError::Options)?;
    Ok(socket)
}

fn connect(addr: SocketAddr, options: &SocketOptions) -> Result<TcpStream> {
    let socket = new_socket(addr, socket2::Type::STREAM, options)?;
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .map_err(|source| BenchError::Connect { addr, source })?;
    Ok(socket.into())
}

/// An id for this client's run, unlikely to be another client's.
pub fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Room below for the streams' ids; never 0 (no id).
    (nanos ^ (u64::from(std::process::id()) << 40)) & !0xff | 0x100
}

/// The server's side: its MIB counters now, and its sender's view of the
/// reversed streams `run .. run + streams`.
pub fn server_report(addr: SocketAddr, run: u64, streams: u32) -> Result<protocol::ServerReport> {
    observed_report(addr, run, streams, protocol::Observe::None)
}

/// A report that begins or ends the server's observation of its host for `run`.
pub fn observed_report(
    addr: SocketAddr,
    run: u64,
    streams: u32,
    observe: protocol::Observe,
) -> Result<protocol::ServerReport> {
    // Plain options: a test's --cork or tiny buffer is not for this.
    let mut conn = connect(addr, &SocketOptions::default())?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let hello = Hello {
        run,
        observe,
        ..Hello::new(Mode::Report, Duration::from_secs(1), streams)
    };
    protocol::write_message(&mut conn, &Message::Hello(hello))?;
    match protocol::read_message(&mut conn)? {
        Message::Report(r) => Ok(r),
        Message::Error { message } => Err(ProtocolError::Refused(message).into()),
        other => Err(ProtocolError::Unexpected(Box::new(other)).into()),
    }
}

/// Opens a session: hello, then the server's ready (or its error).
fn open(addr: SocketAddr, hello: Hello, options: &SocketOptions) -> Result<TcpStream> {
    let mut conn = connect(addr, options)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    protocol::write_message(&mut conn, &Message::Hello(hello))?;
    match protocol::read_message(&mut conn)? {
        Message::Ready => Ok(conn),
        Message::Error { message } => Err(ProtocolError::Refused(message).into()),
        other => Err(ProtocolError::Unexpected(Box::new(other)).into()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamFlow {
    /// The server sent this one.
    pub reverse: bool,
    pub sender_bytes: u64,
    pub receiver_bytes: u64,
    pub seconds: f64,
    pub receiver_bits_per_s: f64,
    /// Why it went at that rate, from the sender's tcp_info (the server's,
    /// reported after the run, when reversed).
    pub why: Option<FlowLimits>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    pub streams: Vec<StreamFlow>,
    /// Received, both directions together.
    pub receiver_bits_per_s: f64,
    /// Received by the server (client to server).
    pub upload_bits_per_s: f64,
    /// Received by the client (server to client).
    pub download_bits_per_s: f64,
    pub sender_bits_per_s: f64,
    pub seconds: f64,
    pub direction: Direction,
}

fn one_stream(
    addr: SocketAddr,
    duration: Duration,
    reverse: bool,
    run: u64,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<StreamFlow> {
    let hello = Hello {
        reverse,
        run,
        ..Hello::new(Mode::Stream, duration, 0)
    };
    let mut conn = open(addr, hello, options)?;
    conn.set_read_timeout(Some(duration + Duration::from_secs(10)))?;
    let mut buf = vec![0x5au8; STREAM_BUFFER];
    let start = Instant::now();
    if reverse {
        let mut bytes = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            progress.add_bytes(n as u64);
        }
        let seconds = start.elapsed().as_secs_f64();
        return Ok(StreamFlow {
            reverse,
            sender_bytes: bytes,
            receiver_bytes: bytes,
            seconds,
            receiver_bits_per_s: bytes as f64 * 8.0 / seconds.max(1e-9),
            why: None,
        });
    }
    let end = start + duration;
    let mut sent = 0u64;
    let mut sampler = Sampler::new();
    sampler.sample(conn.as_fd());
    let mut next_sample = start + SAMPLE_EVERY;
    while Instant::now() < end {
        conn.write_all(&buf)?;
        sent += buf.len() as u64;
        progress.add_bytes(buf.len() as u64);
        if Instant::now() >= next_sample {
            sampler.sample(conn.as_fd());
            next_sample += SAMPLE_EVERY;
        }
    }
    sampler.sample(conn.as_fd());
    let sending_s = start.elapsed().as_secs_f64();
    conn.shutdown(std::net::Shutdown::Write)?;
    match protocol::read_message(&mut conn)? {
        Message::Result(r) => {
            let bits_per_s = r.bytes as f64 * 8.0 / r.seconds.max(1e-9);
            Ok(StreamFlow {
                reverse,
                sender_bytes: sent,
                receiver_bytes: r.bytes,
                seconds: r.seconds,
                receiver_bits_per_s: bits_per_s,
                why: sampler.limits(bits_per_s, sending_s),
            })
        }
        Message::Error { message } => Err(ProtocolError::Refused(message).into()),
        other => Err(ProtocolError::Unexpected(Box::new(other)).into()),
    }
}

/// `f` on `n` threads at once (at least one); a thread that panicked is an error.
fn in_parallel<T: Send>(n: usize, what: &str, f: impl Fn() -> Result<T> + Sync) -> Vec<Result<T>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n.max(1)).map(|_| scope.spawn(&f)).collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(BenchError::Options(format!("a {what} thread failed"))))
            })
            .collect()
    })
}

/// Which way a stream test's data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The client sends (upload).
    Send,
    /// The server sends (download).
    Receive,
    /// Both at once: `streams` each way.
    Both,
}

/// `streams` parallel TCP streams (each way, for Both) for `duration`;
/// throughput per stream and in total.
pub fn stream(
    addr: SocketAddr,
    streams: usize,
    duration: Duration,
    direction: Direction,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<StreamResult> {
    let streams = streams.max(1);
    let reversed: Vec<bool> = match direction {
        Direction::Send => vec![false; streams],
        Direction::Receive => vec![true; streams],
        Direction::Both => (0..2 * streams).map(|i| i % 2 == 1).collect(),
    };
    // Reversed, the server is the sender and keeps its tcp_info view of each
    // stream under the stream's id, for the report that follows.
    let first_run = run_id();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let flows = in_parallel(reversed.len(), "stream", || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reverse = reversed.get(i).copied().unwrap_or(false);
        let run = first_run + i as u64;
        one_stream(addr, duration, reverse, run, options, progress).map(|f| (i, f))
    });
    let mut flows = flows.into_iter().collect::<Result<Vec<_>>>()?;
    flows.sort_by_key(|(i, _)| *i);
    let mut flows: Vec<StreamFlow> = flows.into_iter().map(|(_, f)| f).collect();
    if direction != Direction::Send {
        let report = server_report(addr, first_run, reversed.len() as u32)?;
        for (flow, limits) in flows.iter_mut().zip(report.sender_limits) {
            if flow.reverse {
                flow.why = limits;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let rate = |reverse: bool| -> f64 {
        flows
            .iter()
            .filter(|f| f.reverse == reverse)
            .fold(0.0, |sum, f| sum + f.receiver_bits_per_s)
    };
    let (upload_bits_per_s, download_bits_per_s) = (rate(false), rate(true));
    let sender_bits_per_s = flows
        .iter()
        .map(|f| f.sender_bytes as f64 * 8.0 / f.seconds.max(1e-9))
        .sum();
    Ok(StreamResult {
        receiver_bits_per_s: upload_bits_per_s + download_bits_per_s,
        upload_bits_per_s,
        download_bits_per_s,
        sender_bits_per_s,
        streams: flows,
        seconds,
        direction,
    })
}

/// Latency percentiles in microseconds, from an HDR histogram of nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Latency {
    pub count: u64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1e3;
        Latency {
            count: h.len(),
            min_us: us(h.min()),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1e3,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RrResult {
    pub size_bytes: u32,
    /// Writes each request was sent in.
    pub writes: u32,
    pub nodelay: bool,
    pub transactions: u64,
    pub transactions_per_s: f64,
    pub seconds: f64,
    /// Fixed-rate mode: the target, and latency measured from each request's
    /// intended send time (no coordinated omission).
    pub rate_per_s: Option<f64>,
    pub latency: Latency,
}

pub(crate) fn histogram() -> Histogram<u64> {
    // 1 ns .. 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// Request/response on one connection for `duration`: as fast as possible, or
/// at `rate` per second with latency counted from each intended send time.
///
/// Each request goes out in `writes` pieces (1: one write): with more than one
/// and without TCP_NODELAY, Nagle holds each later piece until the first is
/// acknowledged, which the server delays (its delayed ACK) while it waits for
/// the rest: the classic write-write-read stall, which `bench ab` shows.
pub fn rr(
    addr: SocketAddr,
    size: u32,
    writes: u32,
    duration: Duration,
    rate: Option<f64>,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<RrResult> {
    rr_scheduled(addr, size, writes, duration, rate, false, options, progress)
}

/// rr at `rate`, and with `paced`, latency measured from each actual send
/// (a request waits for the previous response): each sample is one round
/// trip, as a latency probe beside a load wants, not the queue of requests a
/// fixed-rate client builds up behind a slow one.
#[allow(clippy::too_many_arguments)]
fn rr_scheduled(
    addr: SocketAddr,
    size: u32,
    writes: u32,
    duration: Duration,
    rate: Option<f64>,
    paced: bool,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<RrResult> {
    let hello = Hello::new(Mode::Rr, duration, size);
    let mut conn = open(addr, hello, options)?;
    let mut buf = vec![0x42u8; size as usize];
    let piece = (size as usize).div_ceil(writes.clamp(1, size.max(1)) as usize);
    let mut h = histogram();
    let start = Instant::now();
    let end = start + duration;
    let gap = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut n: u64 = 0;
    let mut last_send: Option<Instant> = None;
    loop {
        let intended = match gap {
            Some(g) => {
                // Paced, the next one is a gap after the last send (a slow
                // response delays it); otherwise on the fixed schedule.
                let at = if paced {
                    last_send.map_or(start, |t| t + g)
                } else {
                    start + g.mul_f64(n as f64)
                };
                if at >= end {
                    break;
                }
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if paced {
                    let now = Instant::now();
                    last_send = Some(now);
                    now
                } else {
                    at
                }
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        for chunk in buf.chunks(piece) {
            conn.write_all(chunk)?;
        }
        conn.read_exact(&mut buf)?;
        let ns = intended.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        let _ = h.record(ns.max(1));
        n += 1;
        progress.add_ops(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(RrResult {
        size_bytes: size,
        writes: writes.max(1),
        nodelay: options.nodelay,
        transactions: n,
        transactions_per_s: n as f64 / seconds.max(1e-9),
        seconds,
        rate_per_s: rate,
        latency: Latency::of(&h),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct CrrResult {
    pub size_bytes: u32,
    /// Connection loops run at once.
    pub parallel: usize,
    pub connections: u64,
    pub errors: u64,
    pub connections_per_s: f64,
    pub seconds: f64,
    /// connect() until it returned (the SYN, SYN-ACK round trip).
    pub connect_latency: Latency,
    /// The whole transaction: connect, request, response, close.
    pub transaction_latency: Latency,
}

/// A new connection per transaction for `duration`, `parallel` of them in
/// flight at once.
/// `run` (0: none) lets the server time each accept for the report that ends it.
pub fn crr(
    addr: SocketAddr,
    size: u32,
    duration: Duration,
    parallel: usize,
    run: u64,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<CrrResult> {
    let parallel = parallel.max(1);
    // A thread per CPU, each driving its share of the connections: a thread
    // that waits on one response at a time sleeps and wakes once per connection.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = parallel.min(cpus);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let loops = in_parallel(threads, "crr", || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let depth = parallel / threads + usize::from(i < parallel % threads);
        crr_thread(addr, size, duration, depth, run, options, progress)
    });
    let seconds = start.elapsed().as_secs_f64();
    let (mut connect_h, mut total_h) = (histogram(), histogram());
    let (mut n, mut errors) = (0u64, 0u64);
    for l in loops {
        let l = l?;
        let _ = connect_h.add(&l.connect);
        let _ = total_h.add(&l.total);
        n += l.connections;
        errors += l.errors;
    }
    Ok(CrrResult {
        size_bytes: size,
        parallel,
        connections: n,
        errors,
        connections_per_s: n as f64 / seconds.max(1e-9),
        seconds,
        connect_latency: Latency::of(&connect_h),
        transaction_latency: Latency::of(&total_h),
    })
}

struct CrrLoop {
    connections: u64,
    errors: u64,
    connect: Histogram<u64>,
    total: Histogram<u64>,
}

/// A connection of crr's in flight: nonblocking, driven by epoll.
struct Transaction {
    socket: Socket,
    started: Instant,
    connected: bool,
    sent: usize,
    received: usize,
}

/// A transaction not done in this long is an error (a lost SYN, a stuck server).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// `depth` transactions in flight on this thread until `duration` is up; each
/// one done (or failed) is replaced by a new connection.
fn crr_thread(
    addr: SocketAddr,
    size: u32,
    duration: Duration,
    depth: usize,
    run: u64,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<CrrLoop> {
    use rustix::event::epoll;
    let hello = protocol::encode(&Message::Hello(Hello {
        run,
        ..Hello::new(Mode::Crr, TRANSACTION_TIMEOUT, size)
    }));
    // One write each way: Nagle never holds it, so no TCP_NODELAY call is needed.
    let mut request = hello;
    request.extend(std::iter::repeat_n(0x43u8, size as usize));
    let mut response = vec![0u8; size as usize];
    let mut result = CrrLoop {
        connections: 0,
        errors: 0,
        connect: histogram(),
        total: histogram(),
    };
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut slots: Vec<Option<Transaction>> = (0..depth).map(|_| None).collect();
    let end = Instant::now() + duration;
    // Starts a transaction in `slot` (another, if it is done at once, as on
    // a fast path it can be); a failure is counted, and the slot stays empty
    // until the next sweep, so a refusing server is not spun on.
    let begin =
        |slot: usize, result: &mut CrrLoop, response: &mut [u8]| -> Result<Option<Transaction>> {
            loop {
                let started = Instant::now();
                let socket = new_socket(addr, socket2::Type::STREAM.nonblocking(), options)?;
                // Delayed-ACK ("ping-pong") mode from the start: the handshake's last
                // ACK goes out with the request, and the ACK of the response with our
                // FIN, as an HTTP client's would: two segments fewer per connection.
                if !options.quickack {
                    let _ = socket.set_tcp_quickack(false);
                }
                match socket.connect(&addr.into()) {
                    Ok(()) => {}
                    Err(e)
                        if e.raw_os_error()
                            == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
                    Err(_) => {
                        result.errors += 1;
                        return Ok(None);
                    }
                }
                epoll::add(
                    &poll,
                    &socket,
                    epoll::EventData::new_u64(slot as u64),
                    epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET,
                )?;
                let mut t = Transaction {
                    socket,
                    started,
                    connected: false,
                    sent: 0,
                    received: 0,
                };
                // On loopback the handshake is often done by now: write at once.
                match advance(&mut t, &request, response, result) {
                    Step::Waiting => return Ok(Some(t)),
                    Step::Done => {
                        result.connections += 1;
                        progress.add_ops(1);
                        if Instant::now() >= end {
                            return Ok(None);
                        }
                    }
                    Step::Failed => return Ok(None),
                }
            }
        };
    for (slot, state) in slots.iter_mut().enumerate() {
        *state = begin(slot, &mut result, &mut response)?;
    }
    let mut events = Vec::with_capacity(depth.max(1));
    let tick = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let mut last_sweep = Instant::now();
    while Instant::now() < end {
        events.clear();
        match epoll::wait(
            &poll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&tick),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        let sweep = now.duration_since(last_sweep) > Duration::from_millis(500);
        if sweep {
            last_sweep = now;
        }
        for slot in events
            .iter()
            .map(|e| e.data.u64() as usize)
            .chain((0..depth).filter(|_| sweep))
        {
            let Some(slot_state) = slots.get_mut(slot) else {
                continue;
            };
            let finished = match slot_state {
                Some(t) => {
                    let state = advance(t, &request, &mut response, &mut result);
                    match state {
                        Step::Waiting if t.started.elapsed() > TRANSACTION_TIMEOUT => {
                            result.errors += 1;
                            true
                        }
                        Step::Waiting => false,
                        Step::Done => {
                            result.connections += 1;
                            progress.add_ops(1);
                            true
                        }
                        Step::Failed => true,
                    }
                }
                None => true,
            };
            if finished && Instant::now() < end {
                // Dropping the socket closes it and takes it out of the epoll set.
                *slot_state = None;
                *slot_state = begin(slot, &mut result, &mut response)?;
            } else if finished {
                *slot_state = None;
            }
        }
    }
    Ok(result)
}

enum Step {
    Waiting,
    Done,
    Failed,
}

/// Moves a transaction on as far as the socket allows without waiting:
/// request out, response in. Records its latencies when it gets there.
fn advance(t: &mut Transaction, request: &[u8], response: &mut [u8], result: &mut CrrLoop) -> Step {
    use rustix::io::Errno;
    while t.sent < request.len() {
        match rustix::net::send(
            &t.socket,
            &request[t.sent..],
            rustix::net::SendFlags::NOSIGNAL,
        ) {
            Ok(n) => t.sent += n,
            // Still connecting (or the buffer is full): wait for writable.
            Err(Errno::AGAIN | Errno::NOTCONN | Errno::INPROGRESS | Errno::ALREADY) => {
                return Step::Waiting
            }
            Err(Errno::INTR) => {}
            Err(_) => {
                result.errors += 1;
                return Step::Failed;
            }
        }
        if !t.connected {
            t.connected = true;
            let _ = result
                .connect
                .record((t.started.elapsed().as_nanos() as u64).max(1));
        }
    }
    while t.received < response.len() {
        match rustix::net::recv(
            &t.socket,
            &mut response[t.received..],
            rustix::net::RecvFlags::empty(),
        ) {
            Ok((0, _)) => {
                result.errors += 1;
                return Step::Failed;
            }
            Ok((n, _)) => t.received += n,
            Err(Errno::AGAIN) => return Step::Waiting,
            Err(Errno::INTR) => {}
            Err(_) => {
                result.errors += 1;
                return Step::Failed;
            }
        }
    }
    let _ = result
        .total
        .record((t.started.elapsed().as_nanos() as u64).max(1));
    Step::Done
}

#[derive(Debug, Clone, Serialize)]
pub struct UdpResult {
    pub size_bytes: u32,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub reordered: u64,
    /// Received datagrams per second, over the receiver's time.
    pub packets_per_s: f64,
    pub sender_packets_per_s: f64,
    pub receiver_bits_per_s: f64,
    pub seconds: f64,
    /// The asked rate (None: as fast as possible).
    pub rate_pps: Option<u64>,
}

/// Datagrams this many at a time (sendmmsg).
const UDP_BATCH: usize = 64;

/// `size`-byte datagrams for `duration`, at `rate_pps` or as fast as sendmmsg goes.
pub fn udp(
    addr: SocketAddr,
    size: u32,
    duration: Duration,
    rate_pps: Option<u64>,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<UdpResult> {
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
    let hello = Hello {
        rate_pps: rate_pps.unwrap_or(0),
        ..Hello::new(Mode::Udp, duration, size)
    };
    let mut control = connect(addr, options)?;
    control.set_read_timeout(Some(Duration::from_secs(10)))?;
    protocol::write_message(&mut control, &Message::Hello(hello))?;
    let port = match protocol::read_message(&mut control)? {
        Message::UdpReady { port } => port,
        Message::Error { message } => return Err(ProtocolError::Refused(message).into()),
        other => return Err(ProtocolError::Unexpected(Box::new(other)).into()),
    };
    let target = SocketAddr::new(addr.ip(), port);
    let socket = new_socket(target, socket2::Type::DGRAM, options)?;
    socket
        .connect(&target.into())
        .map_err(|source| BenchError::Connect {
            addr: target,
            source,
        })?;
    let socket = std::net::UdpSocket::from(socket);
    let mut buffers = vec![vec![0x55u8; size as usize]; UDP_BATCH];
    let start = Instant::now();
    let end = start + duration;
    let mut sent: u64 = 0;
    while Instant::now() < end {
        if let Some(rate) = rate_pps.filter(|r| *r > 0) {
            // Paced: the batch waits until its first datagram is due.
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let batch = match rate_pps.filter(|r| *r > 0) {
            Some(rate) => (rate / 1000).clamp(1, UDP_BATCH as u64) as usize,
            None => UDP_BATCH,
        };
        for (i, b) in buffers.iter_mut().take(batch).enumerate() {
            b[..protocol::UDP_HEADER].copy_from_slice(&(sent + i as u64).to_le_bytes());
        }
        let iovs: Vec<[std::io::IoSlice<'_>; 1]> = buffers
            .iter()
            .take(batch)
            .map(|b| [std::io::IoSlice::new(b)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..batch).map(|_| SendAncillaryBuffer::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, c)| MMsgHdr::new(iov, c))
            .collect();
        match sendmmsg(&socket, &mut msgs, SendFlags::empty()) {
            Ok(n) => {
                sent += n as u64;
                progress.add_ops(n as u64);
            }
            // A full socket buffer or device queue: the datagrams were not sent.
            Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::AGAIN) => {}
            // The receiver's port closed (ICMP): the server says why on control.
            Err(rustix::io::Errno::CONNREFUSED) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let sending_s = start.elapsed().as_secs_f64();
    protocol::write_message(&mut control, &Message::UdpDone { sent })?;
    let counts = match protocol::read_message(&mut control)? {
        Message::UdpResult(c) => c,
        Message::Error { message } => return Err(ProtocolError::Refused(message).into()),
        other => return Err(ProtocolError::Unexpected(Box::new(other)).into()),
    };
    let lost = sent.saturating_sub(counts.received);
    Ok(UdpResult {
        size_bytes: size,
        sent,
        received: counts.received,
        lost,
        loss_percent: lost as f64 * 100.0 / sent.max(1) as f64,
        reordered: counts.reordered,
        packets_per_s: counts.received as f64 / counts.seconds.max(1e-9),
        sender_packets_per_s: sent as f64 / sending_s.max(1e-9),
        receiver_bits_per_s: counts.bytes as f64 * 8.0 / counts.seconds.max(1e-9),
        seconds: counts.seconds,
        rate_pps,
    })
}

/// One phase of rrul: the probe's latency under that load, and the load's throughput.
#[derive(Debug, Clone, Serialize)]
pub struct RrulPhase {
    /// idle, upload, download or bidirectional.
    pub phase: &'static str,
    pub latency: Latency,
    /// The probe's p50 and p99 over the idle phase's: the latency the load added.
    pub bloat_p50_us: f64,
    pub bloat_p99_us: f64,
    pub upload_bits_per_s: f64,
    pub download_bits_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RrulResult {
    pub phases: Vec<RrulPhase>,
    /// Load streams per direction.
    pub streams: usize,
    pub probe_rate_per_s: f64,
    /// The worst phase's median added latency.
    pub worst_bloat_p50_us: f64,
    /// A+ (< 5 ms added), A (< 30), B (< 60), C (< 200), D (< 400), F: the
    /// usual bufferbloat grades, from the worst phase's median added latency.
    pub grade: &'static str,
}

/// Probes per second in rrul (a small request every 10 ms).
const RRUL_PROBE_RATE: f64 = 100.0;

/// The usual bufferbloat grade for a median added latency.
pub fn bloat_grade(added_us: f64) -> &'static str {
    match added_us / 1000.0 {
        ms if ms < 5.0 => "A+",
        ms if ms < 30.0 => "A",
        ms if ms < 60.0 => "B",
        ms if ms < 200.0 => "C",
        ms if ms < 400.0 => "D",
        _ => "F",
    }
}

/// Latency under load: a fixed-rate probe alone (idle), then beside `streams`
/// streams up, down, and both ways, `phase` each. The probe runs over the
/// middle three fifths of a loaded phase, after the load has ramped up and
/// before it winds down.
pub fn rrul(
    addr: SocketAddr,
    phase: Duration,
    streams: usize,
    options: &SocketOptions,
    progress: &Progress,
) -> Result<RrulResult> {
    let probe_options = SocketOptions {
        nodelay: true,
        cork: false,
        ..options.clone()
    };
    let probe = |d: Duration| {
        rr_scheduled(
            addr,
            64,
            1,
            d,
            Some(RRUL_PROBE_RATE),
            true,
            &probe_options,
            progress,
        )
    };
    let idle = probe(phase)?.latency;
    let mut phases = vec![RrulPhase {
        phase: "idle",
        latency: idle.clone(),
        bloat_p50_us: 0.0,
        bloat_p99_us: 0.0,
        upload_bits_per_s: 0.0,
        download_bits_per_s: 0.0,
    }];
    for (name, direction) in [
        ("upload", Direction::Send),
        ("download", Direction::Receive),
        ("bidirectional", Direction::Both),
    ] {
        let (load, probed) = std::thread::scope(|scope| {
            let load = scope.spawn(|| stream(addr, streams, phase, direction, options, progress));
            std::thread::sleep(phase / 5);
            let probed = probe(phase * 3 / 5);
            let load = load
                .join()
                .unwrap_or_else(|_| Err(BenchError::Options("an rrul load thread failed".into())));
            (load, probed)
        });
        let (load, latency) = (load?, probed?.latency);
        phases.push(RrulPhase {
            phase: name,
            bloat_p50_us: (latency.p50_us - idle.p50_us).max(0.0),
            bloat_p99_us: (latency.p99_us - idle.p99_us).max(0.0),
            latency,
            upload_bits_per_s: load.upload_bits_per_s,
            download_bits_per_s: load.download_bits_per_s,
        });
    }
    let worst = phases.iter().map(|p| p.bloat_p50_us).fold(0.0, f64::max);
    Ok(RrulResult {
        phases,
        streams: streams.max(1),
        probe_rate_per_s: RRUL_PROBE_RATE,
        worst_bloat_p50_us: worst,
        grade: bloat_grade(worst),
    })
}
