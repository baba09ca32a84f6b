//! Streaming pcap / pcapng reader over pcap-parser: one callback per captured frame, constant
//! memory, and a damaged file yields every frame before the damage plus a note of where it stopped.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use serde::Serialize;

/// One captured frame as the file stores it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 1-based frame number, as Wireshark counts.
    pub number: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// LINKTYPE_* of the interface the frame came from.
    pub linktype: u32,
    /// Length of the frame on the wire (may exceed `data.len()` when a snaplen cut it).
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// What reading the file as a whole produced.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReadSummary {
    pub format: &'static str,
    pub frames: u64,
    pub captured_bytes: u64,
    /// Set when reading stopped before a clean end of file: what was wrong and where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PcapReadError {
    #[error("{0}: not a pcap or pcapng file (no known magic number in the first bytes)")]
    NotACapture(String),
    #[error("{0}: empty file")]
    Empty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The pcap header's link-type field carries FCS flags in its top bits (libpcap's LT_LINKTYPE).
const LINKTYPE_MASK: u32 = 0x03ff_ffff;
/// Records larger than this are treated as corruption rather than grown into.
const MAX_RECORD_BYTES: usize = 64 << 20;
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Per-interface facts a pcapng file declares in its Interface Description Blocks.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    ts_units_per_s: u64,
    ts_offset_s: i64,
}

/// Reads every frame of `input` (named `name` in errors) and calls `on_frame` for each.
pub fn read_frames<R: Read + Send>(
    name: &str,
    input: R,
    mut on_frame: impl FnMut(&Frame<'_>),
) -> Result<ReadSummary, PcapReadError> {
    let mut reader = match pcap_parser::create_reader(READ_BUFFER_BYTES, input) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err(PcapReadError::Empty(name.to_string())),
        Err(PcapError::ReadError) => {
            return Err(PcapReadError::Io {
                path: name.to_string(),
                source: std::io::Error::other("the first block could not be read"),
            })
        }
        Err(_) => return Err(PcapReadError::NotACapture(name.to_string())),
    };
    let mut summary = ReadSummary {
        format: "pcap",
        ..ReadSummary::default()
    };
    // Legacy pcap: one link type and one timestamp unit for the whole file.
    let mut legacy = Interface {
        linktype: 1,
        ts_units_per_s: 1_000_000,
        ts_offset_s: 0,
    };
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut buffer_bytes = READ_BUFFER_BYTES;
    let mut stalled_refills = 0;
    loop {
        let consumed_before = reader.consumed();
        match reader.next() {
            Ok((offset, block)) => {
                stalled_refills = 0;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy.linktype = h.network.0 as u32 & LINKTYPE_MASK;
                        if h.is_nanosecond_precision() {
                            legacy.ts_units_per_s = 1_000_000_000;
                        }
                    }
                    PcapBlockOwned::Legacy(b) => {
                        summary.frames += 1;
                        summary.captured_bytes += b.data.len() as u64;
                        let frac = b.ts_usec as i64 * 1_000_000_000 / legacy.ts_units_per_s as i64;
                        on_frame(&Frame {
                            number: summary.frames,
                            ts_ns: b.ts_sec as i64 * 1_000_000_000 + frac,
                            linktype: legacy.linktype,
                            wire_len: b.origlen,
                            data: b.data,
                        });
                    }
                    PcapBlockOwned::NG(block) => {
                        summary.format = "pcapng";
                        match block {
                            Block::SectionHeader(_) => interfaces.clear(),
                            Block::InterfaceDescription(idb) => interfaces.push(Interface {
                                linktype: idb.linktype.0 as u32 & LINKTYPE_MASK,
                                ts_units_per_s: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                                ts_offset_s: idb.ts_offset(),
                            }),
                            Block::EnhancedPacket(epb) => {
                                // The block's data includes its padding to 32 bits.
                                let epb_data =
                                    &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                                summary.frames += 1;
                                summary.captured_bytes += epb_data.len() as u64;
                                match interfaces.get(epb.if_id as usize) {
                                    Some(iface) => {
                                        let ticks =
                                            ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                                        on_frame(&Frame {
                                            number: summary.frames,
                                            ts_ns: ticks_to_ns(ticks, iface),
                                            linktype: iface.linktype,
                                            wire_len: epb.origlen,
                                            data: epb_data,
                                        });
                                    }
                                    // A packet naming an interface the file never described: counted, not decodable.
                                    None => on_frame(&Frame {
                                        number: summary.frames,
                                        ts_ns: 0,
                                        linktype: u32::MAX,
                                        wire_len: epb.origlen,
                                        data: epb_data,
                                    }),
                                }
                            }
                            Block::SimplePacket(spb) => {
                                let spb_data =
                                    &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                                summary.frames += 1;
                                summary.captured_bytes += spb_data.len() as u64;
                                let linktype = interfaces.first().map_or(u32::MAX, |i| i.linktype);
                                on_frame(&Frame {
                                    number: summary.frames,
                                    ts_ns: 0,
                                    linktype,
                                    wire_len: spb.origlen,
                                    data: spb_data,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                // Without shifting: refill() moves the unread tail once per buffer, where
                // consume() would move it after every block past the middle (a fifth of the time).
                reader.consume_noshift(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::UnexpectedEof) => {
                summary.stopped = Some(format!(
                    "file ends inside a record at byte {consumed_before} (truncated capture)"
                ));
                break;
            }
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    summary.stopped = Some(format!(
                        "file ends inside a record at byte {} (truncated capture)",
                        consumed_before
                    ));
                    break;
                }
                let before = reader.data().len();
                if reader.refill().is_err() {
                    summary.stopped = Some(format!("read error at byte {consumed_before}"));
                    break;
                }
                if reader.data().len() == before && !reader.reader_exhausted() {
                    // The buffer is full and still holds no complete record: grow, within reason.
                    stalled_refills += 1;
                    buffer_bytes *= 2;
                    if buffer_bytes > MAX_RECORD_BYTES
                        || stalled_refills > 8
                        || !reader.grow(buffer_bytes)
                    {
                        summary.stopped = Some(format!(
                            "record at byte {consumed_before} is larger than {} MiB (corrupt length field)",
                            MAX_RECORD_BYTES >> 20
                        ));
                        break;
                    }
                }
            }
            Err(e) => {
                summary.stopped = Some(format!(
                    "corrupt record at byte {consumed_before}: {}",
                    describe(&e)
                ));
                break;
            }
        }
    }
    Ok(summary)
}

fn ticks_to_ns(ticks: u64, iface: &Interface) -> i64 {
    let units = iface.ts_units_per_s;
    // if_tsoffset comes from the file: hostile values must saturate, not overflow.
    let secs = i64::try_from(ticks / units)
        .unwrap_or(i64::MAX)
        .saturating_add(iface.ts_offset_s);
    let frac = (ticks % units) as u128 * 1_000_000_000 / units as u128;
    secs.saturating_mul(1_000_000_000)
        .saturating_add(frac as i64)
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(..) | PcapError::OwnedNomError(..) => {
            "the block's fields do not parse (bad block length, type or option layout)".into()
        }
        PcapError::HeaderNotRecognized => "block header not recognized".into(),
        PcapError::BufferTooSmall => "record larger than the read buffer".into(),
        PcapError::UnexpectedEof => "unexpected end of file".into(),
        other => format!("unreadable block ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_timestamps_saturate() {
        let iface = |offset| Interface {
            linktype: 1,
            ts_units_per_s: 1,
            ts_offset_s: offset,
        };
        assert_eq!(ticks_to_ns(u64::MAX, &iface(i64::MAX)), i64::MAX);
        assert_eq!(ticks_to_ns(0, &iface(i64::MIN)), i64::MIN);
        assert_eq!(ticks_to_ns(5, &iface(2)), 7_000_000_000);
    }
}
