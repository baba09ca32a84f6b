//! Settings that protect the host and conntrack sizing.

use super::*;

pub(super) fn safety(a: &mut Auditor) {
    if a.current("net.ipv4.tcp_tw_recycle").is_some() {
        let target = (a.number("net.ipv4.tcp_tw_recycle") != Some(0)).then(|| "0".to_string());
        a.sysctl_as(
            "net.ipv4.tcp_tw_recycle",
            target,
            Status::Danger,
            "dangerous: drops connections from clients behind NAT (per-host timestamps); removed in Linux 4.12".into(),
            None,
        );
    }
    for (key, good, why) in [
        (
            "net.ipv4.tcp_syncookies",
            "1",
            "without SYN cookies a SYN flood fills the SYN queue and real clients are refused",
        ),
        (
            "net.ipv4.tcp_window_scaling",
            "1",
            "without window scaling no connection can have more than 64 KiB in flight",
        ),
        (
            "net.ipv4.tcp_sack",
            "1",
            "without SACK every loss costs a full window of retransmissions",
        ),
        (
            "net.ipv4.tcp_timestamps",
            "1",
            "timestamps give RTT samples, PAWS and safe TIME-WAIT reuse",
        ),
    ] {
        let target = (a.number(key) == Some(0)).then(|| good.to_string());
        a.sysctl_as(key, target, Status::Danger, why.to_string(), None);
    }
}

pub(super) fn conntrack(a: &mut Auditor) {
    let Some(ct) = &a.snap.conntrack else { return };
    let (Some(count), Some(max)) = (ct.count, ct.max) else {
        return;
    };
    let dropped = a.activity.conntrack_dropped;
    let secs = a.activity.interval_s;
    let fill = if max > 0 {
        count as f64 / max as f64
    } else {
        0.0
    };
    let need = fill > 0.7 || dropped > 0 || (a.wants(&[Profile::Connections]) && max < 262_144);
    let target = need.then(|| max.saturating_mul(2).max(262_144).to_string());
    a.sysctl(
        "net.netfilter.nf_conntrack_max",
        target,
        format!(
            "{count} of {max} tracked connections ({:.0} %), {dropped} dropped for a full table in {secs:.1} s; each entry costs ~300 bytes",
            fill * 100.0
        ),
        None,
    );
}
