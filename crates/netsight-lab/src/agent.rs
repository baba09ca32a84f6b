//! Traffic agents, run inside a namespace as `netsight lab agent KIND ARGS...`.
//! Each is bounded in time (at most MAX_SECONDS) and in count.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::LabError;

pub const MAX_SECONDS: f64 = 60.0;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, LabError> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| LabError::Agent(format!("argument {i} ({what}) missing or invalid")))
}

/// A time bound (2, 2.5, 500ms), capped at MAX_SECONDS; NaN and negatives are errors.
fn seconds(args: &[String], i: usize) -> Result<Duration, LabError> {
    let text = args
        .get(i)
        .ok_or_else(|| LabError::Agent(format!("argument {i} (seconds) missing")))?;
    let d = netsight_kernel::units::parse_duration(text)
        .map_err(|e| LabError::Agent(format!("argument {i} (seconds): {e}")))?;
    Ok(d.min(Duration::from_secs_f64(MAX_SECONDS)))
}

fn io(what: &str) -> impl Fn(std::io::Error) -> LabError + '_ {
    move |e| LabError::Agent(format!("{what}: {e}"))
}

/// A target the agent may send to: loopback, or an address of the lab's (10.77/16)
/// or the test suite's (10.231/16) plan, and then only from inside one of their
/// namespaces. The agents generate floods and spoofed SYNs: never toward anything else.
fn addr(args: &[String], i: usize) -> Result<SocketAddr, LabError> {
    let ip: std::net::IpAddr = arg(args, i, "address")?;
    let port: u16 = arg(args, i + 1, "port")?;
    check_target(ip, &lab_namespace_of_self())?;
    Ok(SocketAddr::new(ip, port))
}

/// Namespace name prefixes whose namespaces agents may run in: the lab's and the tests'.
const AGENT_NAMESPACE_PREFIXES: &[&str] = &[crate::topology::PREFIX, "nst-"];

/// The name under /run/netns of the namespace this process is in, if it is a lab or test one.
fn lab_namespace_of_self() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = u64::from(netsight_kernel::netns::self_inode()?);
    std::fs::read_dir("/run/netns")
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = AGENT_NAMESPACE_PREFIXES.iter().any(|p| name.starts_with(p));
            (ours && e.metadata().ok()?.ino() == me).then_some(name)
        })
}

pub fn check_target(ip: std::net::IpAddr, namespace: &Option<String>) -> Result<(), LabError> {
    if ip.is_loopback() {
        return Ok(());
    }
    let in_plan = match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 10 && (o[1] == 77 || o[1] == 231)
        }
        // The tests' IPv6 plan: fd00:77::/32 (unique local, never routed).
        std::net::IpAddr::V6(v6) => v6.segments()[..2] == [0xfd00, 0x77],
    };
    if !in_plan {
        return Err(LabError::Agent(format!(
            "refusing target {ip}: agents send only to loopback or to the lab's own addresses (10.77.0.0/16, tests 10.231.0.0/16 and fd00:77::/32)"
        )));
    }
    if namespace.is_none() {
        return Err(LabError::Agent(format!(
            "refusing target {ip}: agents run only inside the lab's own network namespaces (nsl-*, nst-*), started by `netsight lab run`"
        )));
    }
    Ok(())
}

/// Dispatches `args` = [KIND, ...].
pub fn run(args: &[String]) -> Result<(), LabError> {
    let kind = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or(&[]);
    match kind {
        "listen" => listen(rest),
        "connect" => connect(rest),
        "bulk" => bulk(rest),
        "udp-sink" => udp_sink(rest),
        "tap-blast" => tap_blast(rest),
        "udp-blast" => udp_blast(rest),
        "udp-read" => udp_read(rest),
        "rr" => request_response(rest),
        "syn-flood" => syn_flood(rest),
        "churn" => churn(rest),
        // Fault setup inside the agent's namespace: RPS steers receive work to other CPUs.
        "rps" => match rest {
            [nic, queue, mask] => netsight_kernel::host_layout::write_rps_cpus(nic, queue, mask)
                .map_err(LabError::Agent),
            _ => Err(LabError::Agent("rps takes INTERFACE rx-N MASK".into())),
        },
        other => Err(LabError::Agent(format!("unknown agent {other:?}"))),
    }
}

/// listen PORT BACKLOG MODE SECONDS; MODE: noaccept | hold | sink | echo
fn listen(args: &[String]) -> Result<(), LabError> {
    let port: u16 = arg(args, 0, "port")?;
    let backlog: i32 = arg(args, 1, "backlog")?;
    let mode: String = arg(args, 2, "mode")?;
    let until = Instant::now() + seconds(args, 3)?;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(io("socket"))?;
    socket.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
    socket
        .bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())
        .map_err(io("bind"))?;
    socket.listen(backlog).map_err(io("listen"))?;
    println!("READY");
    if mode == "noaccept" {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        return Ok(());
    }
    socket.set_nonblocking(true).map_err(io("nonblocking"))?;
    let listener: std::net::TcpListener = socket.into();
    let mut held = Vec::new();
    while Instant::now() < until {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                match mode.as_str() {
                    "hold" => held.push(stream),
                    "sink" => {
                        std::thread::spawn(move || drain(stream, until));
                    }
                    "echo" => {
                        std::thread::spawn(move || echo(stream, until));
                    }
                    other => return Err(LabError::Agent(format!("unknown listen mode {other}"))),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(io("accept")(e)),
        }
    }
    Ok(())
}

fn drain(mut stream: TcpStream, until: Instant) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Answers every 100-byte request with 100 bytes.
fn echo(mut stream: TcpStream, until: Instant) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut req = [0u8; 100];
    while Instant::now() < until {
        if stream.read_exact(&mut req).is_err() || stream.write_all(&req).is_err() {
            return;
        }
    }
}

/// connect ADDR PORT COUNT MODE SECONDS; MODE: hold (non-blocking connects kept
/// open until SECONDS) | close (connect then close, stopping at SECONDS)
fn connect(args: &[String]) -> Result<(), LabError> {
    let target = addr(args, 0)?;
    let count: usize = arg(args, 2, "count")?;
    let mode: String = arg(args, 3, "mode")?;
    let until = Instant::now() + seconds(args, 4)?;
    let mut held = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..count.min(100_000) {
        if Instant::now() >= until {
            break;
        }
        match mode.as_str() {
            "hold" => {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(io("socket"))?;
                s.set_nonblocking(true).map_err(io("nonblocking"))?;
                let _ = s.connect(&target.into()); // EINPROGRESS is the point
                held.push(s);
            }
            "close" => match TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                Ok(s) => {
                    ok += 1;
                    drop(s);
                }
                Err(_) => failed += 1,
            },
            other => return Err(LabError::Agent(format!("unknown connect mode {other}"))),
        }
    }
    println!("connected {ok} failed {failed}");
    if mode == "hold" {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

/// bulk ADDR PORT SECONDS: write as fast as the connection allows.
fn bulk(args: &[String]) -> Result<(), LabError> {
    let target = addr(args, 0)?;
    let until = Instant::now() + seconds(args, 2)?;
    let mut stream =
        TcpStream::connect_timeout(&target, Duration::from_secs(3)).map_err(io("connect"))?;
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .map_err(io("timeout"))?;
    let buf = vec![0x5au8; 1 << 16];
    let mut sent: u64 = 0;
    while Instant::now() < until {
        match stream.write(&buf) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(io("write")(e)),
        }
    }
    println!("sent {sent}");
    Ok(())
}

/// udp-sink PORT RCVBUF SECONDS: a socket that never reads.
fn udp_sink(args: &[String]) -> Result<(), LabError> {
    let port: u16 = arg(args, 0, "port")?;
    let rcvbuf: usize = arg(args, 1, "rcvbuf")?;
    let wait = seconds(args, 2)?;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(io("socket"))?;
    s.set_recv_buffer_size(rcvbuf).map_err(io("SO_RCVBUF"))?;
    s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())
        .map_err(io("bind"))?;
    println!("READY");
    std::thread::sleep(wait);
    Ok(())
}

/// The optional time bound at `i` (default DEFAULT_BURST_SECONDS): bursts stop
/// at their count or their time, whichever comes first.
fn deadline(args: &[String], i: usize) -> Result<Instant, LabError> {
    let bound = match args.get(i) {
        Some(_) => seconds(args, i)?,
        None => Duration::from_secs(DEFAULT_BURST_SECONDS),
    };
    Ok(Instant::now() + bound)
}

const DEFAULT_BURST_SECONDS: u64 = 10;

/// udp-read PORT SECONDS: a socket that reads everything; prints the count.
fn udp_read(args: &[String]) -> Result<(), LabError> {
    let port: u16 = arg(args, 0, "port")?;
    let until = Instant::now() + seconds(args, 1)?;
    let s = UdpSocket::bind(("0.0.0.0", port)).map_err(io("bind"))?;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io("SO_RCVTIMEO"))?;
    println!("READY");
    let mut buf = vec![0u8; 65_536];
    let mut received = 0u64;
    while Instant::now() < until {
        if s.recv(&mut buf).is_ok() {
            received += 1;
        }
    }
    println!("received {received}");
    Ok(())
}

/// udp-blast ADDR PORT COUNT SIZE [SECONDS [PER_SECOND]]: as fast as possible,
/// or paced at PER_SECOND datagrams.
fn udp_blast(args: &[String]) -> Result<(), LabError> {
    let target = addr(args, 0)?;
    let count: usize = arg(args, 2, "count")?;
    let size: usize = arg(args, 3, "size")?;
    let until = deadline(args, 4)?;
    let pace: Option<f64> = match args.get(5) {
        Some(_) => Some(arg::<f64>(args, 5, "per_second")?).filter(|p| *p > 0.0 && p.is_finite()),
        None => None,
    };
    let any = if target.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let s = UdpSocket::bind(any).map_err(io("bind"))?;
    let payload = vec![0u8; size.min(65_000)];
    let mut sent = 0;
    let started = Instant::now();
    for i in 0..count.min(1_000_000) {
        if let Some(per_s) = pace {
            let due = started + Duration::from_secs_f64(i as f64 / per_s);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if Instant::now() >= until {
                break;
            }
        } else if i % 256 == 0 && Instant::now() >= until {
            break;
        }
        if s.send_to(&payload, target).is_ok() {
            sent += 1;
        }
    }
    // The sending time alone: what a rate is computed from (no process start).
    println!("sent {sent} in {:.6} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// rr ADDR PORT SECONDS: requests written in two small pieces (no TCP_NODELAY),
/// the classic Nagle + delayed-ACK stall, then the 100-byte answer is read.
fn request_response(args: &[String]) -> Result<(), LabError> {
    let target = addr(args, 0)?;
    let until = Instant::now() + seconds(args, 2)?;
    let mut stream =
        TcpStream::connect_timeout(&target, Duration::from_secs(3)).map_err(io("connect"))?;
    let mut answer = [0u8; 100];
    let mut rounds = 0;
    while Instant::now() < until {
        stream.write_all(&[1u8; 50]).map_err(io("write"))?;
        stream.write_all(&[2u8; 50]).map_err(io("write"))?;
        stream.read_exact(&mut answer).map_err(io("read"))?;
        rounds += 1;
    }
    println!("rounds {rounds}");
    Ok(())
}

/// churn SECONDS: connect, accept and close loopback connections as fast as one
/// thread can (the server side closes first, so no client port stays in TIME-WAIT);
/// prints the rate. Used to measure tracer overhead.
fn churn(args: &[String]) -> Result<(), LabError> {
    let until = Instant::now() + seconds(args, 0)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("bind"))?;
    let target = listener.local_addr().map_err(io("local_addr"))?;
    let started = Instant::now();
    let mut done: u64 = 0;
    while Instant::now() < until {
        let client = TcpStream::connect(target).map_err(io("connect"))?;
        let (server, _) = listener.accept().map_err(io("accept"))?;
        drop(server);
        drop(client);
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("connections {done} rate {:.0}", done as f64 / secs);
    Ok(())
}

/// syn-flood ADDR PORT COUNT [SECONDS [PER_SECOND]]: SYNs from spoofed, unreachable
/// sources in 10.77.1.100-249 (no host answers the SYN-ACKs), sent on a raw socket,
/// as fast as possible or paced at PER_SECOND.
fn syn_flood(args: &[String]) -> Result<(), LabError> {
    let target = addr(args, 0)?;
    let count: u32 = arg(args, 2, "count")?;
    let until = deadline(args, 3)?;
    let pace: Option<f64> = match args.get(4) {
        Some(_) => Some(arg::<f64>(args, 4, "per_second")?).filter(|p| *p > 0.0 && p.is_finite()),
        None => None,
    };
    let started = Instant::now();
    let std::net::IpAddr::V4(dst) = target.ip() else {
        return Err(LabError::Agent("syn-flood needs an IPv4 target".into()));
    };
    let raw = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(socket2::Protocol::from(libc_ipproto_raw())),
    )
    .map_err(io("raw socket (needs CAP_NET_RAW)"))?;
    let mut sent = 0;
    for i in 0..count.min(1_000_000) {
        if let Some(per_s) = pace {
            let due = started + Duration::from_secs_f64(f64::from(i) / per_s);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if Instant::now() >= until {
                break;
            }
        } else if i % 256 == 0 && Instant::now() >= until {
            break;
        }
        let src = std::net::Ipv4Addr::new(10, 77, 1, 100 + (i % 150) as u8);
        let sport = 1024 + (i % 60_000) as u16;
        let packet = syn_packet(
            src,
            dst,
            sport,
            target.port(),
            i.wrapping_mul(2_654_435_761),
        );
        if raw
            .send_to(&packet, &SocketAddr::new(dst.into(), 0).into())
            .is_ok()
        {
            sent += 1;
        }
    }
    println!("sent {sent} in {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// tap-blast DEV ADDR PORT SECONDS: writes Ethernet frames (IPv4 UDP, 64-byte
/// payload, to ADDR:PORT and DEV's own MAC) into the existing tap device DEV as
/// fast as possible: to the kernel they arrive as a NIC's would, so an XDP
/// program on DEV runs before any sk_buff is built.
fn tap_blast(args: &[String]) -> Result<(), LabError> {
    use std::io::Write as _;
    let dev = args
        .first()
        .ok_or_else(|| LabError::Agent("tap-blast needs a tap device".into()))?;
    let target = addr(args, 1)?;
    let until = deadline(args, 3)?;
    let std::net::IpAddr::V4(dst) = target.ip() else {
        return Err(LabError::Agent("tap-blast needs an IPv4 target".into()));
    };
    let links = netsight_kernel::link::dump_links()
        .and_then(|buf| netsight_kernel::link::parse_link_dump(&buf))
        .map_err(|e| LabError::Agent(format!("listing links: {e}")))?;
    let mac_text = links
        .into_iter()
        .find(|l| &l.name == dev)
        .and_then(|l| l.mac)
        .unwrap_or_default();
    let mac: Vec<u8> = mac_text
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    if mac.len() != 6 {
        return Err(LabError::Agent(format!("{dev}: no MAC address")));
    }
    let mut tap = open_tap(dev)?;
    let mut frame = vec![0u8; 14 + 20 + 8 + 64];
    frame[..6].copy_from_slice(&mac);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut frame[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + 64) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    let src = std::net::Ipv4Addr::new(
        dst.octets()[0],
        dst.octets()[1],
        dst.octets()[2],
        dst.octets()[3] ^ 3,
    );
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut frame[34..42];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&target.port().to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + 64) as u16).to_be_bytes());
    let started = Instant::now();
    let mut sent: u64 = 0;
    loop {
        if sent.is_multiple_of(1024) && Instant::now() >= until {
            break;
        }
        if tap.write(&frame).is_ok() {
            sent += 1;
        }
    }
    println!("sent {sent} in {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Opens the existing tap device `dev` (TUNSETIFF, IFF_TAP | IFF_NO_PI).
#[allow(unsafe_code)]
fn open_tap(dev: &str) -> Result<std::fs::File, LabError> {
    use std::os::fd::AsRawFd as _;
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TAP: libc::c_short = 0x0002;
    const IFF_NO_PI: libc::c_short = 0x1000;
    if dev.is_empty() || dev.len() >= libc::IFNAMSIZ {
        return Err(LabError::Agent(format!("{dev:?}: not an interface name")));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(io("/dev/net/tun"))?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(dev.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
    // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `req` is.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
        return Err(io("TUNSETIFF")(std::io::Error::last_os_error()));
    }
    Ok(file)
}

/// IPPROTO_RAW: the socket supplies its own IP header.
const fn libc_ipproto_raw() -> i32 {
    255
}

/// A 40-byte IPv4 + TCP SYN with valid checksums.
pub fn syn_packet(
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45; // version 4, header 20 bytes
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64; // TTL
    p[9] = 6; // TCP
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let ip_sum = checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4; // data offset 5 words
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // Pseudo-header: src, dst, zero, protocol, TCP length.
    let mut pseudo = 0u32;
    for chunk in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
        pseudo += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
    }
    pseudo += 6 + 20;
    let tcp_sum = checksum(&p[20..], pseudo);
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) of `data`, starting from `initial`.
fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_outside_the_lab_are_refused() {
        let lab = Some("nsl-x-c".to_string());
        for ip in ["10.77.2.2", "10.231.4.2", "127.0.0.1", "::1"] {
            assert!(check_target(ip.parse().unwrap(), &lab).is_ok(), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "2001:db8::1",
            "10.78.0.1",
        ] {
            assert!(check_target(ip.parse().unwrap(), &lab).is_err(), "{ip}");
        }
        // Lab addresses from outside a lab namespace (a container, the host): refused.
        assert!(check_target("10.77.2.2".parse().unwrap(), &None).is_err());
        assert!(run(&[
            "syn-flood".into(),
            "8.8.8.8".into(),
            "80".into(),
            "10".into()
        ])
        .is_err());
        assert!(run(&[
            "udp-blast".into(),
            "10.77.2.2".into(),
            "9".into(),
            "10".into(),
            "10".into()
        ])
        .is_err_and(|e| e.to_string().contains("lab's own network namespaces")));
    }

    #[test]
    fn syn_packet_checksums_verify() {
        let p = syn_packet([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1234, 80, 7);
        // A correct header sums to 0xffff (checksum field included), i.e. checksum() == 0.
        assert_eq!(checksum(&p[..20], 0), 0);
        let mut pseudo = 0u32;
        for w in [0x0a00u32, 0x0001, 0x0a00, 0x0002] {
            pseudo += w;
        }
        assert_eq!(checksum(&p[20..], pseudo + 6 + 20), 0);
        assert_eq!(p[33], 0x02, "SYN flag");
    }
}
