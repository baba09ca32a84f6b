//! The one place that sends netlink requests. Replies are kept as raw bytes (that
//! is what a bundle stores); decoding happens in `rtnl` and `ethtool`.

use std::io;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};

use crate::error::{KernelError, Result};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// Message types below this are netlink control messages (noop, error, done, overrun).
const NLMSG_MIN_TYPE: u16 = 0x10;
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Set on dump messages when the kernel's table changed during the dump.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// A kernel that does not answer a request within this is not going to.
const RECV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Dumps retried when interrupted by a concurrent change, before the last one is used.
const DUMP_TRIES: usize = 3;

/// Splits a buffer of concatenated netlink messages, skipping control messages.
/// A truncated tail ends the iteration; it never panics on hostile bytes.
pub fn data_messages(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || loop {
        if rest.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return None;
        }
        let msg_type = u16::from_ne_bytes([rest[4], rest[5]]);
        let (msg, tail) = rest.split_at(len);
        // Messages are 4-byte aligned in a multipart reply.
        rest = tail
            .get((len.next_multiple_of(4) - len).min(tail.len())..)
            .unwrap_or(&[]);
        if msg_type >= NLMSG_MIN_TYPE {
            return Some(msg);
        }
    })
}

/// Checks that a dump is whole netlink messages end to end: bytes that are not
/// (garbage, a cut-off tail, a file of something else) are an error to report,
/// never a silently shorter (or empty) dump.
pub fn check_framing(buf: &[u8], family: &'static str, what: &str) -> crate::error::Result<()> {
    let mut rest = buf;
    while !rest.is_empty() {
        let bad = |detail: String| crate::error::KernelError::NetlinkDecode {
            family,
            what: what.to_string(),
            detail,
        };
        if rest.len() < 16 {
            return Err(bad(format!(
                "{} trailing bytes are not a netlink message",
                rest.len()
            )));
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return Err(bad(format!(
                "message at byte {} claims {len} bytes with {} left: not a netlink dump, or a truncated one",
                buf.len() - rest.len(),
                rest.len()
            )));
        }
        rest = rest
            .get(len.next_multiple_of(4).min(rest.len())..)
            .unwrap_or(&[]);
    }
    Ok(())
}

/// Attribute types carry NLA_F_NESTED / NLA_F_NET_BYTEORDER in their top bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Iterates (type, payload) of netlink attributes, rejecting lengths that overrun.
pub fn attributes(
    mut buf: &[u8],
) -> impl Iterator<Item = std::result::Result<(u16, &[u8]), String>> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            buf = &[];
            return Some(Err(format!(
                "attribute {kind} length {len} overruns its message"
            )));
        }
        let value = &buf[4..len];
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Ok((kind, value)))
    })
}

/// Sends `payload` as a request (a dump when `dump`) on a fresh socket of
/// `protocol` and returns every reply byte up to NLMSG_DONE (or the first reply
/// when not a dump).
pub fn request<I>(protocol: isize, family: &'static str, payload: I, dump: bool) -> Result<Vec<u8>>
where
    I: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug + Clone,
{
    let mut out: Vec<u8> = Vec::with_capacity(RECV_BUFFER_BYTES);
    // A dump the kernel marks interrupted (its table changed meanwhile) may hold
    // duplicates or miss entries: dump again, a few times, then use the last one.
    for _ in 0..DUMP_TRIES {
        out.clear();
        let consistent = request_each(protocol, family, payload.clone(), dump, |reply| {
            out.extend_from_slice(reply)
        })?;
        if consistent {
            break;
        }
    }
    Ok(out)
}

/// Like `request`, handing each reply (whole messages) to `on_reply` as it
/// arrives, so a caller can decode while the kernel is still dumping. The
/// callee may take the buffer (leaving another in its place) to avoid a copy.
/// Returns false when the kernel flagged the dump as interrupted (NLM_F_DUMP_INTR).
pub fn request_each<I>(
    protocol: isize,
    family: &'static str,
    payload: I,
    dump: bool,
    on_reply: impl FnMut(&mut Vec<u8>),
) -> Result<bool>
where
    I: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
    exchange(protocol, family, payload, flags, dump, on_reply)
}

/// Sends `payload` as a change (NLM_F_ACK) and waits for the kernel's answer:
/// Ok once it is acknowledged, the kernel's errno otherwise.
pub fn command<I>(protocol: isize, family: &'static str, payload: I) -> Result<()>
where
    I: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    exchange(
        protocol,
        family,
        payload,
        NLM_F_REQUEST | NLM_F_ACK,
        false,
        |_| {},
    )?;
    Ok(())
}

fn exchange<I>(
    protocol: isize,
    family: &'static str,
    payload: I,
    flags: u16,
    dump: bool,
    mut on_reply: impl FnMut(&mut Vec<u8>),
) -> Result<bool>
where
    I: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    let io_err = |operation: &'static str| {
        move |source: io::Error| KernelError::Netlink {
            family,
            operation,
            source,
        }
    };
    let mut socket = Socket::new(protocol).map_err(io_err("socket"))?;
    socket.bind_auto().map_err(io_err("bind"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(io_err("connect"))?;
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(RECV_TIMEOUT),
    )
    .map_err(|e| io_err("setsockopt(SO_RCVTIMEO)")(e.into()))?;

    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    message.finalize();
    let mut buf = vec![0u8; message.buffer_len()];
    message.serialize(&mut buf);
    socket.send(&buf, 0).map_err(io_err("send"))?;

    // A large receive buffer matters: the kernel sizes dump messages by the
    // reader's buffer, and a verbose ethtool features reply outgrows one page (EMSGSIZE).
    let mut reply: Vec<u8> = Vec::with_capacity(RECV_BUFFER_BYTES);
    let mut consistent = true;
    loop {
        reply.clear();
        reply.reserve(RECV_BUFFER_BYTES);
        socket.recv(&mut reply, 0).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                io_err("recv")(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {} s", RECV_TIMEOUT.as_secs()),
                ))
            } else {
                io_err("recv")(e)
            }
        })?;
        if reply.is_empty() {
            break;
        }
        consistent &= !dump_interrupted(&reply);
        let finished = control_status(&reply).map_err(io_err("reply"))?;
        on_reply(&mut reply);
        if finished || !dump {
            break;
        }
    }
    Ok(consistent)
}

/// Whether any message in the buffer carries NLM_F_DUMP_INTR.
fn dump_interrupted(buf: &[u8]) -> bool {
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        if u16::from_ne_bytes([rest[6], rest[7]]) & NLM_F_DUMP_INTR != 0 {
            return true;
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    false
}

/// Ok(true) when the buffer holds NLMSG_DONE or an ACK; Err for an NLMSG_ERROR
/// with errno, or an NLMSG_DONE carrying one (a dump that failed midway).
fn control_status(buf: &[u8]) -> Result<bool, io::Error> {
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        match u16::from_ne_bytes([rest[4], rest[5]]) {
            NLMSG_DONE | NLMSG_ERROR if len >= 20 => {
                let errno = i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]);
                if errno == 0 {
                    return Ok(true);
                }
                return Err(io::Error::from_raw_os_error(-errno));
            }
            NLMSG_DONE => return Ok(true),
            _ => {}
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(msg_type: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&msg_type.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
        m
    }

    #[test]
    fn splits_and_skips_control_messages() {
        let mut buf = msg(16, &[1, 2, 3]);
        buf.extend(msg(NLMSG_DONE, &[0; 4]));
        buf.extend(msg(20, &[9; 8]));
        let parts: Vec<&[u8]> = data_messages(&buf).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 19);
        assert_eq!(&parts[1][16..], &[9; 8]);
    }

    #[test]
    fn interrupted_dumps_are_recognised() {
        let mut buf = msg(16, &[1, 2, 3]);
        assert!(!dump_interrupted(&buf));
        buf[6..8].copy_from_slice(&NLM_F_DUMP_INTR.to_ne_bytes());
        assert!(dump_interrupted(&buf));
        assert!(!dump_interrupted(&[0xff; 8]));
    }

    #[test]
    fn hostile_lengths_end_iteration() {
        let mut buf = msg(16, &[1, 2, 3, 4]);
        buf[0] = 0xff; // claims to be longer than the buffer
        assert_eq!(data_messages(&buf).count(), 0);
        assert_eq!(data_messages(&[1, 2, 3]).count(), 0);
        assert!(check_framing(&buf, "t", "t").is_err());
        assert!(check_framing(&[1, 2, 3], "t", "t").is_err());
        assert!(check_framing(b"this is not netlink, only text of some length", "t", "t").is_err());
        let mut whole = msg(16, &[1, 2, 3]);
        whole.extend(msg(NLMSG_DONE, &[0; 4]));
        assert!(check_framing(&whole, "t", "t").is_ok());
        assert!(check_framing(&[], "t", "t").is_ok());
        whole.extend_from_slice(&[40, 0, 0, 0, 16, 0]);
        assert!(check_framing(&whole, "t", "t").is_err());
    }

    #[test]
    fn error_reply_carries_errno() {
        let buf = msg(NLMSG_ERROR, &(-95i32).to_ne_bytes());
        let err = control_status(&buf).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(95));
        assert!(control_status(&msg(NLMSG_DONE, &[0; 4])).unwrap());
        let failed_dump = msg(NLMSG_DONE, &(-90i32).to_ne_bytes());
        assert_eq!(
            control_status(&failed_dump).unwrap_err().raw_os_error(),
            Some(90)
        );
    }
}
