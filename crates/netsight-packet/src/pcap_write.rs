//! pcap (nanosecond) and pcapng writers: a file header, then one record per frame. Small enough
//! to write directly; pcap-parser's serializer allocates per block.

use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap with the nanosecond magic (0xa1b23c4d).
    Pcap,
    /// pcapng: one section, one interface with if_tsresol = 9 (nanoseconds).
    PcapNg,
}

/// Writes frames of one link type to `out`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for frames of `linktype` cut to `snaplen` bytes.
    pub fn new(
        mut out: W,
        format: Format,
        linktype: u32,
        snaplen: u32,
        interface_name: &str,
    ) -> io::Result<Self> {
        match format {
            Format::Pcap => {
                out.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
                out.write_all(&2u16.to_le_bytes())?;
                out.write_all(&4u16.to_le_bytes())?;
                out.write_all(&0i32.to_le_bytes())?; // thiszone
                out.write_all(&0u32.to_le_bytes())?; // sigfigs
                out.write_all(&snaplen.to_le_bytes())?;
                out.write_all(&linktype.to_le_bytes())?;
            }
            Format::PcapNg => {
                // Section Header Block: byte-order magic, version 1.0, section length unknown.
                let mut shb = Vec::with_capacity(28);
                shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                write_block(&mut out, 0x0a0d_0d0a, &shb)?;
                // Interface Description Block with if_name and if_tsresol options.
                let mut idb = Vec::with_capacity(64);
                idb.extend_from_slice(&(linktype as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&snaplen.to_le_bytes());
                push_option(&mut idb, 2, interface_name.as_bytes());
                push_option(&mut idb, 9, &[9]);
                push_option(&mut idb, 0, &[]);
                write_block(&mut out, 1, &idb)?;
            }
        }
        Ok(Self { out, format })
    }

    /// Appends one frame captured at `ts_ns` (ns since the epoch), `wire_len` bytes on the wire.
    pub fn write_frame(&mut self, ts_ns: i64, wire_len: u32, data: &[u8]) -> io::Result<()> {
        let caplen = data.len() as u32;
        match self.format {
            Format::Pcap => {
                let mut header = [0u8; 16];
                header[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
                header[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
                header[8..12].copy_from_slice(&caplen.to_le_bytes());
                header[12..16].copy_from_slice(&wire_len.to_le_bytes());
                self.out.write_all(&header)?;
                self.out.write_all(data)
            }
            Format::PcapNg => {
                // Enhanced Packet Block: interface 0, 64-bit timestamp in ns, lengths, padded data.
                let padded = caplen.div_ceil(4) * 4;
                let total = 32 + padded;
                let ts = ts_ns as u64;
                let mut header = [0u8; 28];
                header[0..4].copy_from_slice(&6u32.to_le_bytes());
                header[4..8].copy_from_slice(&total.to_le_bytes());
                header[8..12].copy_from_slice(&0u32.to_le_bytes());
                header[12..16].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
                header[16..20].copy_from_slice(&(ts as u32).to_le_bytes());
                header[20..24].copy_from_slice(&caplen.to_le_bytes());
                header[24..28].copy_from_slice(&wire_len.to_le_bytes());
                self.out.write_all(&header)?;
                self.out.write_all(data)?;
                self.out
                    .write_all(&[0u8; 3][..(padded - caplen) as usize])?;
                self.out.write_all(&total.to_le_bytes())
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + (4 - value.len() % 4) % 4, 0);
}

fn write_block(out: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pcap_read::read_frames;

    #[test]
    fn both_formats_read_back_with_nanosecond_timestamps() {
        for format in [Format::Pcap, Format::PcapNg] {
            let mut w = PcapWriter::new(Vec::new(), format, 113, 128, "any").unwrap();
            w.write_frame(1_700_000_000_123_456_789, 1500, &[1, 2, 3, 4, 5])
                .unwrap();
            w.write_frame(1_700_000_001_000_000_001, 7, &[9; 7])
                .unwrap();
            let bytes = w.into_inner();
            let mut seen = Vec::new();
            let summary = read_frames("mem", std::io::Cursor::new(bytes), |f| {
                seen.push((f.number, f.ts_ns, f.linktype, f.wire_len, f.data.to_vec()))
            })
            .unwrap();
            assert_eq!(summary.frames, 2, "{format:?}");
            assert!(summary.stopped.is_none());
            assert_eq!(
                seen[0],
                (1, 1_700_000_000_123_456_789, 113, 1500, vec![1, 2, 3, 4, 5])
            );
            assert_eq!(seen[1], (2, 1_700_000_001_000_000_001, 113, 7, vec![9; 7]));
        }
    }
}
