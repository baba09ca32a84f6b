//! Socket buffers sized for the link's bandwidth-delay product.

use super::*;

/// Without a link speed there is no BDP to size buffers from: say so, change nothing.
pub(super) fn buffers_unsized(a: &mut Auditor) {
    for key in [
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.core.rmem_max",
        "net.core.wmem_max",
    ] {
        a.sysctl(
            key,
            None,
            "left as it is: no NIC reports a link speed, so there is no bandwidth-delay product to size it from (pass --link-speed and --rtt)".into(),
            None,
        );
    }
}

pub(super) fn buffers(a: &mut Auditor, path: &Bdp) {
    let buffer = path.buffer_bytes.max(KERNEL_TCP_RMEM_MAX);
    let basis = format!(
        "BDP {} x {:.1} ms = {}; one flow needs about twice that in buffer ({})",
        human_speed(path.speed_bits_per_s),
        path.rtt_us as f64 / 1000.0,
        human_bytes(path.bdp_bytes),
        human_bytes(buffer)
    );
    for (key, default_floor, tuned) in [
        ("net.ipv4.tcp_rmem", 131_072u64, TUNED_THROUGHPUT_RMEM),
        ("net.ipv4.tcp_wmem", 16_384, TUNED_THROUGHPUT_WMEM),
    ] {
        let target = a.words(key).filter(|w| w.len() == 3).and_then(|w| {
            let want = [w[0].max(4096), w[1].max(default_floor), w[2].max(buffer)];
            (want != [w[0], w[1], w[2]]).then(|| format!("{} {} {}", want[0], want[1], want[2]))
        });
        let small_default = a
            .words(key)
            .is_some_and(|w| w.len() == 3 && w[1] < default_floor);
        let reason = if target.is_some() {
            format!(
                "min/default/max per TCP socket (autotuned). {basis}{}",
                if small_default {
                    format!("; a default below {default_floor} starts every connection small")
                } else {
                    String::new()
                }
            )
        } else {
            format!("large enough: {basis}")
        };
        a.sysctl(key, target, reason, Some(tuned));
    }
    for key in ["net.core.rmem_max", "net.core.wmem_max"] {
        a.at_least(
            key,
            buffer,
            format!("caps SO_RCVBUF/SO_SNDBUF set by applications (iperf3 -w, databases); {basis}"),
            None,
        );
    }
}
