//! Why a TCP flow went as fast as it did: the sender's tcp_info sampled over
//! the run (busy, receive-window-limited and send-buffer-limited time, cwnd,
//! retransmissions, RTT), a classification, and the window and loss ceilings
//! for the measured RTT and loss.

use std::os::fd::BorrowedFd;

use netsight_kernel::sockets::tcp_info::{self, TcpInfo};
use serde::{Deserialize, Serialize};

/// How often a sender's tcp_info is read during a stream (cwnd and RTT extremes).
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Below this share of the run spent busy sending, the application was the limit.
const APP_LIMITED_BUSY: f64 = 0.5;
/// A flow limited by its cwnd with at least this share of segments retransmitted
/// is loss-limited: the usual rule of thumb. The Mathis bound is reported, not
/// used: on short paths its RTT is mostly queueing and swings tenfold.
const LOSS_PERCENT: f64 = 1.0;
/// A flow between these multiples of a ceiling is held by it.
const NEAR_CEILING: f64 = 0.5;
const ABOVE_CEILING: f64 = 2.5;
/// A window below cwnd × MSS is the limit when the flow reached at least this
/// share of what the window allows at the minimum RTT.
const WINDOW_FLOOR: f64 = 0.05;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowLimits {
    /// app-limited, receiver-window-limited, send-buffer-limited, cwnd-limited or loss-limited.
    pub classification: String,
    /// Of the run, the time the sender had data in flight.
    pub busy_percent: f64,
    /// Of busy time, stalled by the receiver's window (tcpi_rwnd_limited), or
    /// the share of samples where the window was below cwnd × MSS when the flow
    /// ran near what that window allows, whichever is larger.
    pub rwnd_limited_percent: f64,
    /// Of busy time, stalled by the send buffer.
    pub sndbuf_limited_percent: f64,
    /// Of busy time, limited by the congestion window (the rest).
    pub cwnd_limited_percent: f64,
    pub segments_out: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_percent: f64,
    pub rtt_us: u32,
    pub min_rtt_us: u32,
    pub cwnd_segments: u32,
    pub max_cwnd_segments: u32,
    pub mss_bytes: u32,
    /// The receiver's advertised window at the end (tcpi_snd_wnd).
    pub peer_window_bytes: u32,
    /// The bandwidth-delay product at the measured rate and RTT.
    pub bdp_bytes: f64,
    /// peer window / RTT: what the receiver's window allows.
    pub window_ceiling_bits_per_s: Option<f64>,
    /// Mathis et al.: MSS / RTT × 1.22 / sqrt(loss).
    pub loss_ceiling_bits_per_s: Option<f64>,
    /// The measured rate over the ceiling of the limit found (None when it has none).
    pub fraction_of_ceiling: Option<f64>,
    /// One line for people.
    pub summary: String,
}

/// tcp_info samples of one socket over a run.
#[derive(Debug)]
pub struct Sampler {
    first: Option<TcpInfo>,
    last: Option<TcpInfo>,
    max_cwnd: u32,
    min_rtt: u32,
    samples: u32,
    /// Samples where the receiver's window was smaller than cwnd × MSS: what
    /// could be in flight was the window, whatever the chrono counters say.
    window_bound: u32,
    /// The kernel filled the limited-time fields (4.10 and later).
    has_limited_times: bool,
}

impl Sampler {
    pub fn new() -> Sampler {
        Sampler {
            first: None,
            last: None,
            max_cwnd: 0,
            min_rtt: u32::MAX,
            samples: 0,
            window_bound: 0,
            has_limited_times: true,
        }
    }

    pub fn sample(&mut self, fd: BorrowedFd<'_>) {
        if let Ok((info, len)) = tcp_info::of_socket(fd) {
            self.record(info, len);
        }
    }

    /// One tcp_info, of which the kernel filled `len` bytes.
    fn record(&mut self, info: TcpInfo, len: usize) {
        self.has_limited_times &= len >= tcp_info::end_offset::LIMITED_TIMES;
        self.max_cwnd = self.max_cwnd.max(info.snd_cwnd);
        self.samples += 1;
        if info.snd_wnd > 0
            && u64::from(info.snd_wnd) < u64::from(info.snd_cwnd) * u64::from(info.snd_mss)
        {
            self.window_bound += 1;
        }
        if info.min_rtt_us > 0 {
            self.min_rtt = self.min_rtt.min(info.min_rtt_us);
        }
        self.first.get_or_insert(info);
        self.last = Some(info);
    }

    /// The verdict over what was sampled, for a flow that moved `bits_per_s`
    /// over `seconds`; None without two samples or the limited-time fields.
    pub fn limits(&self, bits_per_s: f64, seconds: f64) -> Option<FlowLimits> {
        let (a, b) = (self.first?, self.last?);
        if !self.has_limited_times || seconds <= 0.0 {
            return None;
        }
        let busy_us = b.busy_time_us.saturating_sub(a.busy_time_us) as f64;
        let rwnd_us = b.rwnd_limited_us.saturating_sub(a.rwnd_limited_us) as f64;
        let sndbuf_us = b.sndbuf_limited_us.saturating_sub(a.sndbuf_limited_us) as f64;
        let busy = (busy_us / (seconds * 1e6)).min(1.0);
        let share = |us: f64| {
            if busy_us > 0.0 {
                (us / busy_us).min(1.0)
            } else {
                0.0
            }
        };
        let (rwnd, sndbuf) = (share(rwnd_us), share(sndbuf_us));
        let cwnd = (1.0 - rwnd - sndbuf).max(0.0);
        let segments_out = u64::from(b.segs_out.wrapping_sub(a.segs_out));
        let retransmitted = u64::from(b.total_retrans.saturating_sub(a.total_retrans));
        let retransmitted_percent = if segments_out > 0 {
            retransmitted as f64 * 100.0 / segments_out as f64
        } else {
            0.0
        };
        let rtt_s = f64::from(b.rtt_us.max(1)) / 1e6;
        let mss = b.snd_mss.max(1);
        let bdp_bytes = bits_per_s / 8.0 * rtt_s;
        let window_ceiling = (b.snd_wnd > 0).then(|| f64::from(b.snd_wnd) * 8.0 / rtt_s);
        let loss = retransmitted as f64 / segments_out.max(1) as f64;
        let loss_ceiling = (loss > 0.0).then(|| f64::from(mss) * 8.0 / rtt_s * 1.22 / loss.sqrt());
        // A limit counts when the flow ran close to the ceiling it sets: a window or
        // a loss rate that would allow far more than was measured is not the limit.
        // A window far above what was reached is not the limit.
        let near = |ceiling: Option<f64>| {
            ceiling.is_some_and(|c| (NEAR_CEILING * c..=ABOVE_CEILING * c).contains(&bits_per_s))
        };
        // Samples where the window sat below cwnd × MSS count when the window
        // could be what held the rate: within WINDOW_FLOOR of what it allows at
        // the path's minimum RTT. (The smoothed RTT swings with the receiver's
        // scheduling; a large window on a fast path, several hundred times the
        // rate, is not the limit.)
        let window_bound = f64::from(self.window_bound) / f64::from(self.samples.max(1));
        let min_rtt_s = f64::from(if self.min_rtt == u32::MAX {
            b.rtt_us.max(1)
        } else {
            self.min_rtt.max(1)
        }) / 1e6;
        let best_case = f64::from(b.snd_wnd) * 8.0 / min_rtt_s;
        let window_could_hold = b.snd_wnd > 0
            && (WINDOW_FLOOR * best_case..=ABOVE_CEILING * best_case).contains(&bits_per_s);
        let rwnd_score = if window_could_hold || near(window_ceiling) {
            rwnd.max(window_bound)
        } else {
            rwnd
        };
        let lossy = retransmitted_percent >= LOSS_PERCENT;
        let classification = if busy < APP_LIMITED_BUSY {
            "app-limited"
        } else if rwnd_score >= sndbuf && rwnd_score >= cwnd {
            "receiver-window-limited"
        } else if sndbuf >= cwnd {
            "send-buffer-limited"
        } else if lossy {
            "loss-limited"
        } else {
            "cwnd-limited"
        };
        let rwnd = rwnd_score;
        let ceiling = match classification {
            "receiver-window-limited" => window_ceiling,
            "loss-limited" => loss_ceiling,
            _ => None,
        };
        let kib = |b: f64| b / 1024.0;
        let summary = match classification {
            "app-limited" => format!(
                "app-limited: the sender had data in flight {:.0} % of the run",
                busy * 100.0
            ),
            "receiver-window-limited" => format!(
                "receiver-window-limited {:.0} % of busy time; the receiver's window of {:.0} KiB allows {:.1} Mbit/s at RTT {} µs ({:.0} % reached); fix: a larger receive buffer on the receiver (SO_RCVBUF, net.ipv4.tcp_rmem max ≥ the BDP at the rate wanted)",
                rwnd * 100.0,
                kib(f64::from(b.snd_wnd)),
                window_ceiling.unwrap_or(0.0) / 1e6,
                b.rtt_us,
                bits_per_s / window_ceiling.unwrap_or(1.0).max(1.0) * 100.0
            ),
            "send-buffer-limited" => format!(
                "send-buffer-limited {:.0} % of busy time; fix: a larger send buffer (SO_SNDBUF, net.ipv4.tcp_wmem max) on the sender",
                sndbuf * 100.0
            ),
            "loss-limited" => format!(
                "loss-limited: {:.2} % of segments retransmitted; at RTT {:.0} µs and MSS {mss} that loss allows about {:.1} Mbit/s (Mathis); fix: find the loss (netsight doctor, netsight trace drops)",
                retransmitted_percent,
                b.rtt_us,
                loss_ceiling.unwrap_or(0.0) / 1e6
            ),
            _ => format!(
                "cwnd-limited {:.0} % of busy time{}: the path (or the CPU) is the limit",
                cwnd * 100.0,
                if retransmitted > 0 {
                    format!(", {retransmitted_percent:.2} % retransmitted (below {LOSS_PERCENT} %)")
                } else {
                    ", no loss".to_string()
                }
            ),
        };
        Some(FlowLimits {
            classification: classification.to_string(),
            busy_percent: busy * 100.0,
            rwnd_limited_percent: rwnd * 100.0,
            sndbuf_limited_percent: sndbuf * 100.0,
            cwnd_limited_percent: cwnd * 100.0,
            segments_out,
            retransmitted_segments: retransmitted,
            retransmitted_percent,
            rtt_us: b.rtt_us,
            min_rtt_us: if self.min_rtt == u32::MAX {
                0
            } else {
                self.min_rtt
            },
            cwnd_segments: b.snd_cwnd,
            max_cwnd_segments: self.max_cwnd,
            mss_bytes: mss,
            peer_window_bytes: b.snd_wnd,
            bdp_bytes,
            window_ceiling_bits_per_s: window_ceiling,
            loss_ceiling_bits_per_s: loss_ceiling,
            fraction_of_ceiling: ceiling.map(|c| bits_per_s / c.max(1.0)),
            summary,
        })
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two samples a second apart of a flow busy all the time, with `wnd` the
    /// peer's window and the chrono counters saying `rwnd_share` of it was rwnd-limited.
    fn flow(
        wnd: u32,
        cwnd: u32,
        mss: u32,
        srtt_us: u32,
        min_rtt_us: u32,
        rwnd_share: f64,
    ) -> Sampler {
        let mut s = Sampler::new();
        let at = |t_us: u64| TcpInfo {
            busy_time_us: t_us,
            rwnd_limited_us: (t_us as f64 * rwnd_share) as u64,
            snd_wnd: wnd,
            snd_cwnd: cwnd,
            snd_mss: mss,
            rtt_us: srtt_us,
            min_rtt_us,
            segs_out: (t_us / 10) as u32,
            ..TcpInfo::default()
        };
        s.record(at(0), tcp_info::TCP_INFO_LEN);
        s.record(at(1_000_000), tcp_info::TCP_INFO_LEN);
        s
    }

    #[test]
    fn a_window_below_cwnd_holds_the_rate_even_when_the_smoothed_rtt_swings() {
        // 10 KiB window, 148 × 1448 B cwnd, 1.4 Gbit/s measured; the chrono
        // counters saw rwnd-limited time only 40 % of the time, and the smoothed
        // RTT (200 µs, the receiver's scheduling) makes the window look like a
        // 400 Mbit/s ceiling. At the 6 µs minimum RTT it allows 13.5 Gbit/s.
        let limits = flow(10_136, 148, 1448, 200, 6, 0.4)
            .limits(1.4e9, 1.0)
            .unwrap();
        assert_eq!(
            limits.classification, "receiver-window-limited",
            "{}",
            limits.summary
        );
    }

    #[test]
    fn a_large_window_on_a_fast_path_is_not_the_limit() {
        // Loopback: a 3 MiB window below cwnd × 64 KiB MSS, at 20 Gbit/s: the
        // window would allow thousands of Gbit/s at the 5 µs minimum RTT.
        let limits = flow(3 << 20, 200, 65_483, 60, 5, 0.05)
            .limits(20e9, 1.0)
            .unwrap();
        assert_eq!(limits.classification, "cwnd-limited", "{}", limits.summary);
    }
}
