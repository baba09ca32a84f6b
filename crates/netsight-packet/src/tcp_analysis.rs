//! TCP sequence analysis with Wireshark's definitions (epan/dissectors/packet-tcp.c,
//! `tcp_analyze_sequence_number`, as tshark 4.0 applies it in one pass), so a flag here means
//! what `tshark -Y tcp.analysis.<flag>` means. Deliberate differences are listed in
//! ARCHITECTURE.md ("analyze: differences from tshark").

use crate::dissect::{tcp_flags::*, TcpSegment};

/// Per-segment analysis flags (Wireshark's TCP_A_*).
pub mod flag {
    pub const RETRANSMISSION: u32 = 0x0001;
    pub const LOST_SEGMENT: u32 = 0x0002;
    pub const ACK_LOST_SEGMENT: u32 = 0x0004;
    pub const KEEP_ALIVE: u32 = 0x0008;
    pub const DUPLICATE_ACK: u32 = 0x0010;
    pub const ZERO_WINDOW: u32 = 0x0020;
    pub const ZERO_WINDOW_PROBE: u32 = 0x0040;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 0x0080;
    pub const KEEP_ALIVE_ACK: u32 = 0x0100;
    pub const OUT_OF_ORDER: u32 = 0x0200;
    pub const FAST_RETRANSMISSION: u32 = 0x0400;
    pub const WINDOW_UPDATE: u32 = 0x0800;
    pub const WINDOW_FULL: u32 = 0x1000;
    pub const REUSED_PORTS: u32 = 0x2000;
    pub const SPURIOUS_RETRANSMISSION: u32 = 0x4000;
}

/// Wireshark keeps at most this many unacknowledged segments per direction.
const MAX_UNACKED_SEGMENTS: usize = 1000;
/// A retransmission within this time of the last duplicate ACK is a fast retransmission.
const FAST_RETRANSMISSION_WINDOW_NS: i64 = 20_000_000;
/// Out-of-order threshold before the handshake RTT is known.
const DEFAULT_OUT_OF_ORDER_NS: i64 = 3_000_000;

/// Window scale state: a shift, or not known yet, or known to be unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowScale {
    Unknown,
    NotUsed,
    Shift(u8),
}

#[derive(Debug, Clone, Copy)]
struct Unacked {
    seq: u32,
    nextseq: u32,
    ts_ns: i64,
    /// Bytes in flight right after this segment was sent.
    in_flight: Option<u32>,
}

/// One direction of a conversation (Wireshark's `tcp_flow_t` plus its seq info).
#[derive(Debug, Clone)]
struct Direction {
    base_seq: Option<u32>,
    nextseq: u32,
    nextseq_ts_ns: i64,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_ts_ns: i64,
    /// Last window field sent, unscaled.
    window: u32,
    win_scale: WindowScale,
    is_first_ack: bool,
    dupacknum: i32,
    lastsegmentflags: u32,
    /// Oldest first.
    unacked: Vec<Unacked>,
}

impl Default for Direction {
    fn default() -> Self {
        Self {
            base_seq: None,
            nextseq: 0,
            nextseq_ts_ns: 0,
            maxseqtobeacked: 0,
            lastack: 0,
            lastack_ts_ns: 0,
            window: 0,
            win_scale: WindowScale::Unknown,
            is_first_ack: false,
            dupacknum: 0,
            lastsegmentflags: 0,
            unacked: Vec::new(),
        }
    }
}

/// What the analysis concluded about one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentVerdict {
    /// `flag::*` bits.
    pub flags: u32,
    /// This segment newly acknowledges data: the time since the newest such segment was sent.
    pub ack_rtt_ns: Option<i64>,
    /// Bytes in flight when that newest segment was sent: the queue its RTT waited behind.
    pub ack_rtt_in_flight: Option<u32>,
    /// Length of the largest segment of the other direction this ACK fully acknowledged.
    pub acked_segment_len: Option<u32>,
}

/// Sequence analysis of one TCP conversation (both directions).
#[derive(Debug, Clone, Default)]
pub struct SeqAnalysis {
    dirs: [Direction; 2],
    /// Time of the most recent SYN (without ACK).
    mru_syn_ts_ns: Option<i64>,
    /// SYN → first pure ACK: Wireshark's initial RTT, also its out-of-order threshold.
    first_rtt_ns: Option<i64>,
}

fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl SeqAnalysis {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a SYN without ACK should open a new conversation on this address/port pair
    /// (the port is reused with a new initial sequence number).
    pub fn syn_reuses_ports(&self, dir: usize, seg: &TcpSegment) -> bool {
        seg.flags & (SYN | ACK) == SYN && self.dirs[dir].base_seq.is_some_and(|b| b != seg.seq)
    }

    /// Analyses one segment sent in direction `dir` (0 = from the conversation's first sender).
    pub fn on_segment(&mut self, dir: usize, ts_ns: i64, seg: &TcpSegment) -> SegmentVerdict {
        let mut verdict = SegmentVerdict::default();
        let (fwd_i, rev_i) = (dir & 1, (dir & 1) ^ 1);
        // A retransmitted SYN (same ISN) restores nextseq (Wireshark issue 17616).
        if seg.flags & (SYN | ACK) == SYN && self.dirs[fwd_i].base_seq == Some(seg.seq) {
            let d = &mut self.dirs[fwd_i];
            d.nextseq = d.maxseqtobeacked;
            verdict.flags |= flag::REUSED_PORTS;
        }
        if seg.flags & (SYN | ACK) == (SYN | ACK) {
            let d = &mut self.dirs[fwd_i];
            if d.base_seq.is_some_and(|b| b != seg.seq) {
                d.base_seq = Some(seg.seq);
                verdict.flags |= flag::REUSED_PORTS;
            }
        }
        self.analyze_sequence(fwd_i, ts_ns, seg, &mut verdict);
        self.after_analysis(fwd_i, rev_i, ts_ns, seg);
        verdict
    }

    fn analyze_sequence(
        &mut self,
        fwd_i: usize,
        ts_ns: i64,
        seg: &TcpSegment,
        verdict: &mut SegmentVerdict,
    ) {
        let (seq, ack, seglen, flags, window) =
            (seg.seq, seg.ack, seg.seglen, seg.flags, seg.window as u32);
        let first_rtt_ns = self.first_rtt_ns;
        let [d0, d1] = &mut self.dirs;
        let (fwd, rev) = if fwd_i == 0 { (d0, d1) } else { (d1, d0) };
        let mut f = 0u32;

        if fwd.base_seq.is_none() {
            fwd.base_seq = Some(if flags & SYN != 0 {
                seq
            } else {
                seq.wrapping_sub(1)
            });
        }
        if rev.base_seq.is_none() && flags & ACK != 0 {
            rev.base_seq = Some(ack.wrapping_sub(1));
        }

        'fwd: {
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                f |= flag::ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && flags & (RST | FIN | SYN) == 0 {
                f |= flag::ZERO_WINDOW;
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && flags & RST == 0 {
                f |= flag::LOST_SEGMENT;
            }
            let plain = flags & (SYN | FIN | RST) == 0;
            if (seglen == 0 || seglen == 1) && seq == fwd.nextseq.wrapping_sub(1) && plain {
                f |= flag::KEEP_ALIVE;
            }
            if seglen == 0
                && window != 0
                && window != fwd.window
                && seq == fwd.nextseq
                && ack == fwd.lastack
                && plain
            {
                f |= flag::WINDOW_UPDATE;
            }
            if seglen > 0 && rev.win_scale != WindowScale::Unknown && plain {
                let shift = match (rev.is_first_ack, rev.win_scale) {
                    (false, WindowScale::Shift(s)) => s as u32,
                    _ => 0,
                };
                if seq.wrapping_add(seglen) == rev.lastack.wrapping_add(rev.window << shift) {
                    f |= flag::WINDOW_FULL;
                }
            }
            let repeats_ack = seglen == 0
                && window == fwd.window
                && seq == fwd.nextseq
                && ack == fwd.lastack
                && plain;
            if repeats_ack && window != 0 && rev.lastsegmentflags & flag::KEEP_ALIVE != 0 {
                f |= flag::KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if repeats_ack && window == 0 && rev.lastsegmentflags & flag::ZERO_WINDOW_PROBE != 0 {
                f |= flag::ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if repeats_ack && window != 0 {
                fwd.dupacknum = if fwd.dupacknum == -1 {
                    1
                } else {
                    fwd.dupacknum + 1
                };
                f |= flag::DUPLICATE_ACK;
            }
        }
        if ack != fwd.lastack {
            fwd.dupacknum = 0;
        }

        // ACKed unseen segment: this ACK covers data we never saw going the other way.
        // As tshark 4.0 (the oracle) does it: flag, then move the mark to what was seen,
        // so the same gap is reported once.
        if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
            f |= flag::ACK_LOST_SEGMENT;
            rev.maxseqtobeacked = rev.nextseq;
        }

        if seglen > 0 || flags & (SYN | FIN) != 0 {
            'retrans: {
                if f & flag::KEEP_ALIVE != 0 {
                    break 'retrans;
                }
                let mut seq_not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
                // One byte beyond a zero-window probe: new data, not a retransmission.
                if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                    seq_not_advanced = false;
                }
                if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                    f |= flag::SPURIOUS_RETRANSMISSION;
                    break 'retrans;
                }
                // Time deltas are unsigned in Wireshark: a timestamp earlier than the
                // last one (a capture concatenated with itself) is never "within" a window.
                let within = |since: i64, window: i64| (0..window).contains(&since);
                if seq_not_advanced
                    && rev.dupacknum >= 2
                    && rev.lastack == seq
                    && within(ts_ns - rev.lastack_ts_ns, FAST_RETRANSMISSION_WINDOW_NS)
                {
                    f |= flag::FAST_RETRANSMISSION;
                    break 'retrans;
                }
                let ooo_threshold = first_rtt_ns
                    .filter(|&r| r != 0)
                    .unwrap_or(DEFAULT_OUT_OF_ORDER_NS);
                let syn_fin = u32::from(flags & (SYN | FIN) != 0);
                if seq_not_advanced
                    && within(ts_ns - fwd.nextseq_ts_ns, ooo_threshold)
                    && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
                {
                    f |= flag::OUT_OF_ORDER;
                    break 'retrans;
                }
                if seq_not_advanced {
                    f |= flag::RETRANSMISSION;
                }
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if flags & (SYN | FIN) != 0 {
            nextseq = nextseq.wrapping_add(1);
        }
        let unacked_len = fwd.unacked.len();
        if (seglen > 0 || flags & (SYN | FIN) != 0) && unacked_len < MAX_UNACKED_SEGMENTS {
            fwd.unacked.push(Unacked {
                seq,
                nextseq,
                ts_ns,
                in_flight: None,
            });
        }
        let probe = f & flag::ZERO_WINDOW_PROBE != 0;
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !probe {
            fwd.nextseq = nextseq;
            fwd.nextseq_ts_ns = ts_ns;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !probe {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_ts_ns = ts_ns;
        fwd.lastsegmentflags = f;

        // Drop what this ACK covers from the other direction. The RTT sample is the time since
        // the newest segment this ACK newly covers, wholly or in part: with TSO/GSO captures an
        // ACK rarely ends exactly on a captured segment (Wireshark's ack_rtt needs that).
        let mut newest_covered: Option<(i64, Option<u32>)> = None;
        let mut acked_len: Option<u32> = None;
        let is_ack = flags & ACK != 0;
        rev.unacked.retain_mut(|u| {
            let covered = is_ack && gt(ack, u.seq);
            if covered && newest_covered.is_none_or(|(t, _)| u.ts_ns >= t) {
                newest_covered = Some((u.ts_ns, u.in_flight));
            }
            let keep = if ack == u.nextseq {
                false
            } else if gt(ack, u.seq) && le(ack, u.nextseq) {
                u.seq = ack;
                return true;
            } else {
                gt(u.nextseq, ack)
            };
            if !keep && is_ack {
                let len = u.nextseq.wrapping_sub(u.seq);
                acked_len = Some(acked_len.map_or(len, |l| l.max(len)));
            }
            keep
        });
        verdict.ack_rtt_ns = newest_covered.map(|(sent, _)| ts_ns - sent);
        verdict.ack_rtt_in_flight = newest_covered.and_then(|(_, in_flight)| in_flight);
        verdict.acked_segment_len = acked_len;
        if seglen > 0 {
            // Bytes sent and not yet acknowledged (Wireshark's bytes_in_flight).
            if let Some(sent) = fwd.unacked.get_mut(unacked_len) {
                sent.in_flight = Some(fwd.nextseq.wrapping_sub(rev.lastack))
                    .filter(|&b| b > 0 && b < 2_000_000_000);
            }
        }
        verdict.flags |= f;
    }

    /// State Wireshark updates after the sequence analysis of a segment: SYN time, initial RTT,
    /// first-ACK marker and window scaling.
    fn after_analysis(&mut self, fwd_i: usize, rev_i: usize, ts_ns: i64, seg: &TcpSegment) {
        if seg.has(SYN) {
            if !seg.has(ACK) {
                self.mru_syn_ts_ns = Some(ts_ns);
            }
            self.dirs[fwd_i].is_first_ack = true;
        }
        if seg.flags & (SYN | ACK) == ACK {
            if let (Some(syn), None) = (self.mru_syn_ts_ns, self.first_rtt_ns) {
                self.first_rtt_ns = Some(ts_ns - syn);
            }
            self.dirs[fwd_i].is_first_ack = false;
        }
        if let Some(shift) = seg.wscale {
            self.dirs[fwd_i].win_scale = WindowScale::Shift(shift);
        }
        if seg.has(SYN) {
            // Wireshark's verify_tcp_window_scaling.
            if self.dirs[fwd_i].win_scale == WindowScale::Unknown {
                self.dirs[fwd_i].win_scale = WindowScale::NotUsed;
                self.dirs[rev_i].win_scale = WindowScale::NotUsed;
            } else if seg.has(ACK) && self.dirs[rev_i].win_scale == WindowScale::NotUsed {
                self.dirs[fwd_i].win_scale = WindowScale::NotUsed;
            }
        }
    }
}
