//! AF_PACKET capture over a TPACKET_V3 mmap ring: the kernel fills blocks of frames, we write
//! them out and hand each block back. The filter runs in the kernel (classic BPF on the socket),
//! and privileges are dropped once the socket, ring and output file are open.

use std::ffi::CString;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dissect::linktype;
use crate::filter::{self, BpfInstruction, FilterError};
use crate::pcap_write::{Format, PcapWriter};

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Interface name, or "any".
    pub interface: String,
    /// tcpdump filter expression; empty = everything.
    pub filter: String,
    pub snaplen: u32,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub format: Format,
    /// User to switch to after opening the socket (when running as root).
    pub user: Option<String>,
    /// Ring size: blocks of [`BLOCK_BYTES`].
    pub ring_bytes: usize,
    /// Flush the file after every packet (tcpdump -U); otherwise at most
    /// [`FLUSH_EVERY`] of captured packets waits in the (bounded) buffer.
    pub packet_buffered: bool,
}

/// How long captured packets may wait in memory before they are written out, so
/// a capture killed with SIGKILL loses at most this much.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            interface: "any".into(),
            filter: String::new(),
            snaplen: 262_144,
            count: None,
            duration: None,
            format: Format::Pcap,
            user: None,
            ring_bytes: 64 << 20,
            packet_buffered: false,
        }
    }
}

/// The counts tcpdump prints when it stops, plus where they went.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaptureReport {
    pub interface: String,
    pub file: PathBuf,
    pub linktype: u32,
    pub filter: String,
    pub packets_captured: u64,
    /// Packets that matched the filter (including the ones the kernel then dropped).
    pub packets_received_by_filter: u64,
    /// Matched packets lost because the ring was full (tcpdump's "dropped by kernel").
    pub packets_dropped_by_kernel: u64,
    pub bytes_written: u64,
    pub duration_s: f64,
    /// The user the capture ran as after opening the socket, if privileges were dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_as: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capturing needs CAP_NET_RAW: run as root, or grant it once with `setcap cap_net_raw+ep {exe}` ({source})")]
    NeedCapability { exe: String, source: std::io::Error },
    #[error("no interface named {0:?} (`ip link` lists them; \"any\" captures on all)")]
    UnknownInterface(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{call}: {source}")]
    Syscall {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dropping privileges to {user:?}: {detail}")]
    Privileges { user: String, detail: String },
}

/// Size of one ring block; a block must hold the largest frame (64 KiB GSO on loopback).
pub const BLOCK_BYTES: usize = 4 << 20;
/// A partly filled block is handed to us after this many milliseconds.
const BLOCK_TIMEOUT_MS: u32 = 50;
const ETH_P_ALL: u16 = 0x0003;
/// enum tpacket_versions { TPACKET_V1, TPACKET_V2, TPACKET_V3 }
const TPACKET_V3: i32 = 2;
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;
const PACKET_OUTGOING: u8 = 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Captures until `count`, `duration` or `stop` and writes to `path`.
/// `ready` is called once the socket is attached and the file header is on disk.
pub fn capture(
    opts: &CaptureOptions,
    path: &Path,
    stop: &AtomicBool,
    ready: &mut dyn FnMut(),
) -> Result<CaptureReport, CaptureError> {
    let ifindex = interface_index(&opts.interface)?;
    let hatype = if ifindex == 0 {
        None
    } else {
        interface_type(&opts.interface)
    };
    // Ethernet-framed devices (lo included) are captured whole; others, and "any", are
    // captured from the network header and written with a Linux cooked (SLL) header.
    let cooked = !matches!(hatype, Some(ARPHRD_ETHER | ARPHRD_LOOPBACK));
    let (file_linktype, filter_linktype) = if cooked {
        (linktype::LINUX_SLL, linktype::RAW)
    } else {
        (linktype::ETHERNET, linktype::ETHERNET)
    };
    let program = if opts.filter.trim().is_empty() {
        // Accept everything, cut to the snaplen in the kernel.
        vec![BpfInstruction {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: opts.snaplen,
        }]
    } else {
        filter::compile(&opts.filter, filter_linktype, opts.snaplen)?
    };
    let loopback_index = interface_index("lo").unwrap_or(0);

    let socket = PacketSocket::open(cooked, &program, opts.ring_bytes, ifindex)?;
    // "-" is standard output; a file is never opened through a symlink (as root, a
    // link planted in /tmp would aim the write elsewhere).
    let file = if path.as_os_str() == "-" {
        use std::os::fd::AsFd as _;
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
    } else {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    std::io::Error::other("is a symbolic link: refusing to write through it")
                }
                _ => e,
            })
    }
    .map_err(|source| CaptureError::Output {
        path: path.display().to_string(),
        source,
    })?;
    let ran_as = drop_privileges(opts.user.as_deref())?;

    let output_error = |source| CaptureError::Output {
        path: path.display().to_string(),
        source,
    };
    let mut writer = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        opts.format,
        file_linktype,
        opts.snaplen,
        &opts.interface,
    )
    .map_err(output_error)?;
    // The file header is on disk before the first packet: an interrupted capture is a valid file.
    writer.flush().map_err(output_error)?;
    let mut last_flush = Instant::now();
    ready();

    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let mut captured = 0u64;
    let mut bytes_written = 0u64;
    let mut frame_buf = Vec::with_capacity(opts.snaplen as usize + 20);
    let mut block = 0usize;
    // After a stop (signal or --duration), blocks the kernel is still filling are
    // retired within BLOCK_TIMEOUT_MS: keep reading that long so no packet taken is lost.
    let mut draining_until: Option<Instant> = None;
    'outer: loop {
        let now = Instant::now();
        if draining_until.is_none()
            && (stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d))
        {
            draining_until = Some(now + Duration::from_millis(2 * u64::from(BLOCK_TIMEOUT_MS)));
        }
        if draining_until.is_some_and(|d| now >= d) {
            break;
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            writer.flush().map_err(output_error)?;
            last_flush = Instant::now();
        }
        let Some(ready) = socket.take_block(block) else {
            let wait_ms = draining_until.or(deadline).map_or(100, |d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(100) as i32
            });
            socket.poll(wait_ms.max(1))?;
            continue;
        };
        // Frames borrow from `ready`; the block goes back to the kernel when it drops.
        for frame in ready.frames() {
            if frame.pkttype == PACKET_OUTGOING
                && (frame.hatype == ARPHRD_LOOPBACK as u16
                    || (cooked && frame.ifindex == loopback_index))
            {
                continue; // loopback shows every packet twice: keep the incoming copy, as libpcap does
            }
            frame_buf.clear();
            if cooked {
                frame_buf.extend_from_slice(&frame.sll_header());
                frame_buf.extend_from_slice(frame.data);
            } else if frame.vlan_valid {
                // The kernel stripped the 802.1Q tag into metadata; put it back as libpcap does.
                let tpid = if frame.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    frame.vlan_tpid
                } else {
                    0x8100
                };
                let split = frame.data.len().min(12);
                frame_buf.extend_from_slice(&frame.data[..split]);
                frame_buf.extend_from_slice(&tpid.to_be_bytes());
                frame_buf.extend_from_slice(&(frame.vlan_tci as u16).to_be_bytes());
                frame_buf.extend_from_slice(&frame.data[split..]);
            } else {
                frame_buf.extend_from_slice(frame.data);
            }
            let extra = frame_buf.len() as u32 - frame.data.len() as u32;
            frame_buf.truncate(opts.snaplen as usize);
            writer
                .write_frame(frame.ts_ns, frame.wire_len + extra, &frame_buf)
                .map_err(output_error)?;
            if opts.packet_buffered {
                writer.flush().map_err(output_error)?;
            }
            captured += 1;
            bytes_written += frame_buf.len() as u64;
            if opts.count.is_some_and(|c| captured >= c) {
                break 'outer;
            }
        }
        drop(ready);
        block = (block + 1) % socket.blocks;
    }
    writer.flush().map_err(output_error)?;
    let (received, dropped) = socket.statistics()?;
    Ok(CaptureReport {
        interface: opts.interface.clone(),
        file: path.to_path_buf(),
        linktype: file_linktype,
        filter: opts.filter.clone(),
        packets_captured: captured,
        packets_received_by_filter: received,
        packets_dropped_by_kernel: dropped,
        bytes_written,
        duration_s: started.elapsed().as_secs_f64(),
        ran_as,
    })
}

fn interface_index(name: &str) -> Result<u32, CaptureError> {
    if name == "any" {
        return Ok(0);
    }
    let c = CString::new(name).map_err(|_| CaptureError::UnknownInterface(name.to_string()))?;
    // SAFETY: if_nametoindex reads a NUL-terminated string and returns 0 when there is none.
    #[allow(unsafe_code)]
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(CaptureError::UnknownInterface(name.to_string()))
    } else {
        Ok(index)
    }
}

/// ARPHRD_* of an interface: the hardware address family SIOCGIFHWADDR reports
/// (what `ip link` shows as link/ether, link/none...).
#[allow(unsafe_code)]
fn interface_type(name: &str) -> Option<u32> {
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: socket() takes no pointers; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the NUL-terminated name and writes the union of this ifreq.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    // SAFETY: on success the kernel filled ifru_hwaddr.
    (rc == 0).then(|| u32::from(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family }))
}

/// One frame in a ring block, borrowed until the block is released.
#[derive(Debug)]
struct RingFrame<'a> {
    ts_ns: i64,
    wire_len: u32,
    status: u32,
    vlan_valid: bool,
    vlan_tci: u32,
    vlan_tpid: u16,
    protocol_be: u16,
    ifindex: u32,
    hatype: u16,
    pkttype: u8,
    addr_len: u8,
    addr: [u8; 8],
    data: &'a [u8],
}

impl RingFrame<'_> {
    /// The 16-byte LINKTYPE_LINUX_SLL header for this frame.
    fn sll_header(&self) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[0..2].copy_from_slice(&(self.pkttype as u16).to_be_bytes());
        h[2..4].copy_from_slice(&self.hatype.to_be_bytes());
        h[4..6].copy_from_slice(&(self.addr_len as u16).to_be_bytes());
        h[6..14].copy_from_slice(&self.addr);
        h[14..16].copy_from_slice(&self.protocol_be.to_be_bytes());
        h
    }
}

/// struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 (40 bytes).
const BLOCK_DESC_BYTES: usize = 48;

/// A ring block the kernel handed to us. Frames borrow from it, so none can be
/// used after it is released; releasing is its Drop.
struct ReadyBlock<'s> {
    socket: &'s PacketSocket,
    block: usize,
    /// Offset in the mapping and length of the packet area (after the descriptor).
    packets_at: usize,
    packets_len: usize,
    num: usize,
}

impl Drop for ReadyBlock<'_> {
    fn drop(&mut self) {
        self.socket.release_block(self.block);
    }
}

#[allow(unsafe_code)]
impl ReadyBlock<'_> {
    /// The frames of the block, parsed from its packet area.
    fn frames(&self) -> Vec<RingFrame<'_>> {
        // SAFETY: the packet area lies inside the mapping, after the block descriptor
        // (so it does not overlap the status word), and the kernel does not write to a
        // block while it is ours; the slice lives no longer than `self`, which gives
        // the block back when dropped.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.socket.ring.add(self.packets_at), self.packets_len)
        };
        parse_frames(bytes, self.num)
    }
}

/// Frames of a block's packet area: tpacket3_hdr + sockaddr_ll + data, chained by
/// tp_next_offset. Bounds are checked: a bad offset ends the block.
fn parse_frames(bytes: &[u8], num: usize) -> Vec<RingFrame<'_>> {
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let mut offset = 0usize;
    let mut frames = Vec::with_capacity(num.min(bytes.len() / 68));
    for _ in 0..num {
        if offset + 68 > bytes.len() {
            break;
        }
        let h = offset;
        let snaplen = u32_at(h + 12) as usize;
        let mac = u16_at(h + 24) as usize;
        let status = u32_at(h + 20);
        // sockaddr_ll follows the 48-byte tpacket3_hdr.
        let sll = h + 48;
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&bytes[sll + 12..sll + 20]);
        let start = h + mac;
        if let Some(data) = bytes.get(start..start.saturating_add(snaplen)) {
            frames.push(RingFrame {
                ts_ns: u32_at(h + 4) as i64 * 1_000_000_000 + u32_at(h + 8) as i64,
                wire_len: u32_at(h + 16),
                status,
                vlan_valid: status & libc::TP_STATUS_VLAN_VALID != 0,
                vlan_tci: u32_at(h + 32),
                vlan_tpid: u16_at(h + 36),
                protocol_be: u16::from_be(u16_at(sll + 2)),
                ifindex: u32_at(sll + 4),
                hatype: u16_at(sll + 8),
                pkttype: bytes[sll + 10],
                addr_len: bytes[sll + 11],
                addr,
                data,
            });
        }
        let next = u32_at(h) as usize;
        if next == 0 {
            break;
        }
        offset += next;
    }
    frames
}

/// An AF_PACKET socket with its TPACKET_V3 receive ring mapped.
#[derive(Debug)]
struct PacketSocket {
    fd: i32,
    ring: *mut u8,
    ring_len: usize,
    blocks: usize,
}

#[allow(unsafe_code)]
impl PacketSocket {
    fn open(
        cooked: bool,
        program: &[BpfInstruction],
        ring_bytes: usize,
        ifindex: u32,
    ) -> Result<Self, CaptureError> {
        let sock_type = if cooked {
            libc::SOCK_DGRAM
        } else {
            libc::SOCK_RAW
        };
        // Protocol 0: the socket receives nothing until bind, so no unfiltered packet slips in
        // before the filter is attached.
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, sock_type | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let source = std::io::Error::last_os_error();
            let exe = std::env::current_exe()
                .map_or_else(|_| "netsight".into(), |p| p.display().to_string());
            return Err(match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => CaptureError::NeedCapability { exe, source },
                _ => CaptureError::Syscall {
                    call: "socket(AF_PACKET)",
                    source,
                },
            });
        }
        let mut socket = Self {
            fd,
            ring: std::ptr::null_mut(),
            ring_len: 0,
            blocks: 0,
        };
        socket.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &TPACKET_V3,
            "setsockopt(PACKET_VERSION, TPACKET_V3)",
        )?;
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        socket.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog,
            "setsockopt(SO_ATTACH_FILTER)",
        )?;
        let blocks = (ring_bytes / BLOCK_BYTES).max(2);
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_BYTES as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: 2048,
            tp_frame_nr: (BLOCK_BYTES / 2048 * blocks) as u32,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        socket.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
        )?;
        let ring_len = blocks * BLOCK_BYTES;
        // SAFETY: maps the ring the kernel just allocated for this socket; unmapped in Drop.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(CaptureError::Syscall {
                call: "mmap(packet ring)",
                source: std::io::Error::last_os_error(),
            });
        }
        socket.ring = ring as *mut u8;
        socket.ring_len = ring_len;
        socket.blocks = blocks;
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: bind with a valid sockaddr_ll of the right size.
        let rc = unsafe {
            libc::bind(
                fd,
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Syscall {
                call: "bind(AF_PACKET)",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(socket)
    }

    fn setsockopt<T>(
        &self,
        level: i32,
        name: i32,
        value: &T,
        call: &'static str,
    ) -> Result<(), CaptureError> {
        // SAFETY: `value` is a live, properly sized option struct for this option.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                level,
                name,
                value as *const T as *const libc::c_void,
                std::mem::size_of::<T>() as u32,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Syscall {
                call,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The block's status word: the kernel and we hand the block over through it.
    fn block_status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: block_status is the 4-byte-aligned u32 at offset 8 of each block
        // descriptor inside our live mapping; it is only ever accessed atomically
        // (no slice we hand out covers it).
        unsafe { AtomicU32::from_ptr(self.ring.add(block * BLOCK_BYTES + 8).cast()) }
    }

    /// The block if the kernel has handed it to us (TP_STATUS_USER); it goes back
    /// to the kernel when the returned value drops.
    fn take_block(&self, block: usize) -> Option<ReadyBlock<'_>> {
        if self.block_status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let base = block * BLOCK_BYTES;
        // SAFETY: num_pkts and offset_to_first_pkt are u32s at offsets 12 and 16 of the
        // descriptor, inside the mapping; the kernel does not write a user-owned block.
        let (num, first) = unsafe {
            (
                std::ptr::read_volatile(self.ring.add(base + 12).cast::<u32>()),
                std::ptr::read_volatile(self.ring.add(base + 16).cast::<u32>()),
            )
        };
        // Packets start after the 48-byte descriptor: the slice never covers the status word.
        let first = (first as usize).clamp(BLOCK_DESC_BYTES, BLOCK_BYTES);
        Some(ReadyBlock {
            socket: self,
            block,
            packets_at: base + first,
            packets_len: BLOCK_BYTES - first,
            num: num as usize,
        })
    }

    fn release_block(&self, block: usize) {
        self.block_status(block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    fn poll(&self, timeout_ms: i32) -> Result<(), CaptureError> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(CaptureError::Syscall {
                    call: "poll",
                    source: err,
                });
            }
        }
        Ok(())
    }

    /// (received by filter, dropped by kernel) since the socket opened.
    fn statistics(&self) -> Result<(u64, u64), CaptureError> {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as u32;
        // SAFETY: getsockopt into a correctly sized tpacket_stats_v3.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut stats as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Syscall {
                call: "getsockopt(PACKET_STATISTICS)",
                source: std::io::Error::last_os_error(),
            });
        }
        // The kernel's tp_packets already includes tp_drops.
        Ok((stats.tp_packets as u64, stats.tp_drops as u64))
    }
}

#[allow(unsafe_code)]
impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping and closing our own descriptor, once.
        unsafe {
            if !self.ring.is_null() {
                libc::munmap(self.ring as *mut libc::c_void, self.ring_len);
            }
            libc::close(self.fd);
        }
    }
}

/// After the socket is open nothing else needs privilege: as root switch to `user` (default
/// "nobody"); otherwise clear any file capabilities. Returns the user now running, if changed.
#[allow(unsafe_code)]
fn drop_privileges(user: Option<&str>) -> Result<Option<String>, CaptureError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        clear_capabilities();
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    let fail = |detail: String| CaptureError::Privileges {
        user: name.to_string(),
        detail,
    };
    let c = CString::new(name).map_err(|_| fail("bad user name".into()))?;
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy the ids at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(fail("no such user (pass --user)".into()));
    }
    // SAFETY: pw is non-null and points to a valid passwd entry.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain credential syscalls; order matters (groups and gid before uid).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(fail(std::io::Error::last_os_error().to_string()));
        }
    }
    Ok(Some(name.to_string()))
}

/// Clears the effective, permitted and inheritable capability sets (capset v3).
#[allow(unsafe_code)]
fn clear_capabilities() {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset with a v3 header and two data words, as capset(2) defines; failure leaves
    // the capabilities as they were, which only means less hardening.
    unsafe {
        libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr());
    }
}
