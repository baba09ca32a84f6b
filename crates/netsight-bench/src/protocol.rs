//! The control protocol between `bench` clients and `bench server`: each
//! connection opens with a frame saying what it is for. A frame is the magic
//! `NSB` and a version byte, a big-endian u32 length, then that many bytes of
//! JSON. The version is in every frame, so a server can refuse a client it does
//! not understand with an error frame rather than misreading it.

use std::io::{Read, Write};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const VERSION: u8 = 1;
const MAGIC: [u8; 3] = *b"NSB";
/// No control message is larger (a server's report, with every MIB counter,
/// is the largest); a length above it is garbage, not a reason to allocate.
pub const MAX_FRAME: u32 = 128 * 1024;
/// The longest session a server accepts.
pub const MAX_DURATION_MS: u64 = 600_000;
/// The largest request/response size.
pub const MAX_SIZE: u32 = 1 << 20;
/// The most reversed streams one report covers (stream's -P limit).
pub const MAX_REPORTED_STREAMS: u32 = 128;
/// A udp datagram starts with its sequence number (u64, little-endian).
pub const UDP_HEADER: usize = 8;
/// The largest udp payload.
pub const MAX_DATAGRAM: u32 = 65_507;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Bulk transfer: the client sends (or, reversed, the server sends) for the duration.
    Stream,
    /// Request/response on one connection: the server answers `size` bytes with `size` bytes.
    Rr,
    /// One transaction per connection: request, response, close.
    Crr,
    /// Datagrams of `size` bytes at `rate_pps` (0: as fast as possible), counted,
    /// with loss and reordering, by the server.
    Udp,
    /// The server's side of a run: its MIB counters now, and what it measured
    /// as the sender of reversed streams `run .. run + size`.
    Report,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub mode: Mode,
    pub duration_ms: u64,
    /// Request and response size (rr, crr); ignored by stream.
    pub size: u32,
    /// stream: the server sends and the client receives.
    pub reverse: bool,
    /// udp: datagrams per second (0: as fast as possible).
    #[serde(default)]
    pub rate_pps: u64,
    /// The client's id for this session (0: none), for a later report.
    #[serde(default)]
    pub run: u64,
    /// report: the start of a run (the server begins observing its host under
    /// `run`) or its end (it says what it saw); neither: counters only.
    #[serde(default)]
    pub observe: Observe,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observe {
    #[default]
    None,
    Begin,
    End,
}

impl Hello {
    pub fn new(mode: Mode, duration: std::time::Duration, size: u32) -> Hello {
        Hello {
            mode,
            duration_ms: duration.as_millis().min(u128::from(u64::MAX)) as u64,
            size,
            reverse: false,
            rate_pps: 0,
            run: 0,
            observe: Observe::None,
        }
    }
}

/// A server's side of a run (the answer to a report hello).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerReport {
    /// The server's MIB counters (its network namespace), as /proc/net/snmp names them.
    pub mib: BTreeMap<String, BTreeMap<String, i64>>,
    /// For each reversed stream asked for: the server's view as its sender.
    pub sender_limits: Vec<Option<crate::why::FlowLimits>>,
    /// At the end of an observed run with crr: from the segment that made each
    /// connection acceptable (the SYN, with Fast Open) to the server's accept().
    #[serde(default)]
    pub accept_wait: Option<crate::client::Latency>,
    /// At the end of an observed run: what the server's observer made of its
    /// host over the run (netsight's: doctor's findings), if it has one.
    #[serde(default)]
    pub host: Option<serde_json::Value>,
}

/// What the server measured on its side of a stream (the receiver's count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerResult {
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    Hello(Hello),
    Ready,
    Result(ServerResult),
    /// udp: the port the datagrams go to.
    UdpReady {
        port: u16,
    },
    /// udp: the client has sent this many.
    UdpDone {
        sent: u64,
    },
    UdpResult(UdpCounts),
    Report(ServerReport),
    Error {
        message: String,
    },
}

/// What the server counted of a udp session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpCounts {
    pub received: u64,
    pub bytes: u64,
    /// Datagrams that arrived after one with a higher sequence number.
    pub reordered: u64,
    /// From the first datagram to the last.
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("need {0} more bytes")]
    Incomplete(usize),
    #[error("not a netsight bench frame (no NSB magic)")]
    BadMagic,
    #[error("protocol version {0}; this side speaks version {VERSION}")]
    Version(u8),
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLong(u32),
    #[error("bad message: {0}")]
    Json(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the other side said: {0}")]
    Refused(String),
    #[error("unexpected message {0:?}")]
    Unexpected(Box<Message>),
}

pub fn encode(message: &Message) -> Vec<u8> {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// One frame from the start of `buf`: the message and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    if buf.len() < 8 {
        // A wrong magic is known before the header is complete.
        if !MAGIC.starts_with(&buf[..buf.len().min(3)]) {
            return Err(DecodeError::BadMagic);
        }
        return Err(DecodeError::Incomplete(8 - buf.len()));
    }
    if buf[..3] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if buf[3] != VERSION {
        return Err(DecodeError::Version(buf[3]));
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len > MAX_FRAME {
        return Err(DecodeError::TooLong(len));
    }
    let end = 8 + len as usize;
    if buf.len() < end {
        return Err(DecodeError::Incomplete(end - buf.len()));
    }
    let message: Message =
        serde_json::from_slice(&buf[8..end]).map_err(|e| DecodeError::Json(e.to_string()))?;
    if let Message::Hello(h) = &message {
        validate(h).map_err(DecodeError::Json)?;
    }
    Ok((message, end))
}

/// A hello the server will act on: bounded in time and size.
fn validate(h: &Hello) -> Result<(), String> {
    if h.duration_ms == 0 || h.duration_ms > MAX_DURATION_MS {
        return Err(format!(
            "duration_ms {} is outside 1..={MAX_DURATION_MS}",
            h.duration_ms
        ));
    }
    if h.mode == Mode::Report {
        return match h.size {
            0..=MAX_REPORTED_STREAMS => Ok(()),
            n => Err(format!(
                "a report covers at most {MAX_REPORTED_STREAMS} streams, not {n}"
            )),
        };
    }
    if h.mode != Mode::Stream && (h.size == 0 || h.size > MAX_SIZE) {
        return Err(format!("size {} is outside 1..={MAX_SIZE}", h.size));
    }
    if h.mode == Mode::Udp && !(UDP_HEADER as u32..=MAX_DATAGRAM).contains(&h.size) {
        return Err(format!(
            "size {} is outside {UDP_HEADER}..={MAX_DATAGRAM} for udp",
            h.size
        ));
    }
    Ok(())
}

/// Reads exactly one frame (never more: what follows is the test's data).
pub fn read_message(r: &mut impl Read) -> Result<Message, ProtocolError> {
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    match decode(&header) {
        Err(DecodeError::Incomplete(n)) => {
            let mut frame = header.to_vec();
            frame.resize(8 + n, 0);
            r.read_exact(&mut frame[8..])?;
            Ok(decode(&frame)?.0)
        }
        Ok((m, _)) => Ok(m),
        Err(e) => Err(e.into()),
    }
}

/// Reads the first frame of a connection with as few reads as the bytes allow
/// (a crr request arrives in the same segment as its hello); returns the frame
/// and whatever followed it, which is the test's data.
pub fn read_first(
    r: &mut impl Read,
    received: Vec<u8>,
) -> Result<(Message, Vec<u8>), ProtocolError> {
    let mut have = received.len();
    let mut buf = received;
    buf.resize(have.max(4096), 0);
    loop {
        match decode(&buf[..have]) {
            Ok((m, used)) => return Ok((m, buf[used..have].to_vec())),
            Err(DecodeError::Incomplete(need)) => {
                if buf.len() < have + need {
                    buf.resize(have + need, 0);
                }
                let n = r.read(&mut buf[have..])?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                }
                have += n;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn write_message(w: &mut impl Write, message: &Message) -> std::io::Result<()> {
    w.write_all(&encode(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_garbage_is_named() {
        let hello = Message::Hello(Hello::new(Mode::Rr, std::time::Duration::from_secs(1), 64));
        let bytes = encode(&hello);
        assert_eq!(decode(&bytes), Ok((hello, bytes.len())));
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(DecodeError::BadMagic));
        assert_eq!(decode(b"NS"), Err(DecodeError::Incomplete(6)));
        assert_eq!(decode(b"NSB\x02\0\0\0\x02{}"), Err(DecodeError::Version(2)));
        assert_eq!(
            decode(b"NSB\x01\xff\xff\xff\xff"),
            Err(DecodeError::TooLong(u32::MAX))
        );
        let huge =
            br#"{"type":"hello","mode":"rr","duration_ms":99999999,"size":64,"reverse":false}"#;
        let mut frame = b"NSB\x01".to_vec();
        frame.extend_from_slice(&(huge.len() as u32).to_be_bytes());
        frame.extend_from_slice(huge);
        assert!(matches!(decode(&frame), Err(DecodeError::Json(_))));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn valid_headers_with_any_body_decode_without_panicking(body in prop::collection::vec(any::<u8>(), 0..128)) {
            let mut frame = b"NSB\x01".to_vec();
            frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
            frame.extend_from_slice(&body);
            let _ = decode(&frame);
        }
    }
}
