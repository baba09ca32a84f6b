//! netsight's packet layer: read pcap/pcapng, decode, analyse TCP the way Wireshark does, and
//! capture from AF_PACKET.

pub mod analyze;
pub mod capture;
pub mod diagnose;
pub mod dissect;
pub mod filter;
pub mod flows;
pub mod pcap_read;
pub mod pcap_write;
pub mod tcp_analysis;

pub use analyze::{analyze_file, analyze_reader, Analysis};
