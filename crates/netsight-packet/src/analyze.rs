//! `netsight analyze`: one pass over a capture file → flows, expert counts, diagnoses.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::diagnose::{diagnose, Diagnosis};
use crate::dissect::{decode, Transport, Undecodable};
use crate::flows::{ExpertCounts, Flow, FlowTable};
use crate::pcap_read::{read_frames, PcapReadError, ReadSummary};

/// Frames by what the decoder made of them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PacketCounts {
    pub frames: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp_errors: u64,
    pub other_ip: u64,
    /// Frames not decoded, by reason; never an error.
    pub skipped_link_type: u64,
    pub skipped_not_ip: u64,
    pub skipped_truncated: u64,
    pub skipped_fragment: u64,
}

/// Everything `analyze` reports; `--json` prints exactly this.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub file: String,
    pub capture: ReadSummary,
    pub packets: PacketCounts,
    pub flows: Vec<Flow>,
    /// Half-open TCP attempts aggregated per server (SYN floods: see FOLD_HALF_OPEN_AT).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub half_open_folded: Vec<crate::flows::HalfOpenAttempts>,
    pub expert: ExpertCounts,
    pub diagnoses: Vec<Diagnosis>,
}

/// Analyses the capture at `path`.
pub fn analyze_file(path: &Path) -> Result<Analysis, PcapReadError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| PcapReadError::Io {
        path: name.clone(),
        source,
    })?;
    // pcap-parser buffers reads itself (1 MiB), so the file goes in unbuffered.
    analyze_reader(&name, file)
}

/// Analyses a capture read from `input`, called `name` in the report and in errors.
pub fn analyze_reader<R: Read + Send>(name: &str, input: R) -> Result<Analysis, PcapReadError> {
    let mut table = FlowTable::new();
    let mut counts = PacketCounts::default();
    let capture = read_frames(name, input, |frame| {
        counts.frames += 1;
        match decode(frame.linktype, frame.data) {
            Ok(packet) => {
                match packet.transport {
                    Transport::Tcp(_) => counts.tcp += 1,
                    Transport::Udp { .. } => counts.udp += 1,
                    Transport::IcmpError(_) => counts.icmp_errors += 1,
                    Transport::Other { .. } => counts.other_ip += 1,
                }
                table.add(frame.ts_ns, frame.wire_len, &packet);
            }
            Err(Undecodable::LinkType) => counts.skipped_link_type += 1,
            Err(Undecodable::NotIp) => counts.skipped_not_ip += 1,
            Err(Undecodable::Truncated) => counts.skipped_truncated += 1,
            Err(Undecodable::Fragment) => counts.skipped_fragment += 1,
        }
    })?;
    let unmatched_icmp = table.unmatched_icmp_errors;
    let half_open_folded = table.folded();
    let flows = table.finish();
    let expert = total_expert(&flows);
    let diagnoses = diagnose(&flows, &half_open_folded, unmatched_icmp);
    Ok(Analysis {
        file: name.to_string(),
        capture,
        packets: counts,
        flows,
        half_open_folded,
        expert,
        diagnoses,
    })
}

impl Analysis {
    /// Keeps only the flows `filter` names (see [`Flow::matches`]) and recounts expert info
    /// and diagnoses over them.
    pub fn retain_flows(&mut self, filter: &crate::flows::FlowFilter) {
        self.flows.retain(|f| f.matches(filter));
        self.half_open_folded.retain(|h| {
            h.server.is_some_and(|s| match *filter {
                crate::flows::FlowFilter::Stream(_) => false,
                crate::flows::FlowFilter::Port(p) => s.port() == p,
                crate::flows::FlowFilter::Endpoint(e) => s == e,
                crate::flows::FlowFilter::Address(a) => s.ip() == a,
            })
        });
        self.expert = total_expert(&self.flows);
        self.diagnoses = diagnose(&self.flows, &self.half_open_folded, 0);
    }
}

fn total_expert(flows: &[Flow]) -> ExpertCounts {
    let mut expert = ExpertCounts::default();
    for f in flows {
        expert.add(&f.expert);
    }
    expert
}
