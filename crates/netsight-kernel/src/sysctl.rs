//! The sysctls that matter for diagnosis and tuning. Read from /proc/sys; a name
//! missing on this kernel (tcp_tw_recycle since 4.12, netfilter without the module)
//! is simply absent from the snapshot.

pub const DIAGNOSTIC_SYSCTLS: &[&str] = &[
    // Core: backlog, budget, buffers, qdisc, busy polling.
    "net.core.somaxconn",
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.dev_weight",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.core.optmem_max",
    "net.core.default_qdisc",
    "net.core.busy_read",
    "net.core.busy_poll",
    "net.core.rps_sock_flow_entries",
    // TCP buffers, memory and congestion control.
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_mem",
    "net.ipv4.tcp_moderate_rcvbuf",
    "net.ipv4.tcp_adv_win_scale",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_available_congestion_control",
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_ecn",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
    "net.ipv4.tcp_limit_output_bytes",
    "net.ipv4.tcp_autocorking",
    "net.ipv4.tcp_no_metrics_save",
    "net.ipv4.tcp_mtu_probing",
    "net.ipv4.tcp_fastopen",
    // Connection setup and teardown.
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_recycle",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_max_orphans",
    "net.ipv4.tcp_orphan_retries",
    "net.ipv4.tcp_retries2",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.ip_local_port_range",
    // UDP.
    "net.ipv4.udp_mem",
    "net.ipv4.udp_rmem_min",
    "net.ipv4.udp_wmem_min",
    // IP: forwarding, PMTU, fragments, reverse-path filter.
    "net.ipv4.ip_forward",
    "net.ipv4.ip_no_pmtu_disc",
    "net.ipv4.ipfrag_high_thresh",
    "net.ipv4.ipfrag_low_thresh",
    "net.ipv4.ipfrag_time",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.icmp_ratelimit",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.all.forwarding",
    // Conntrack (present only with nf_conntrack loaded).
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
];

/// "net.ipv4.tcp_rmem" → "sys/net/ipv4/tcp_rmem" (relative to the proc root), by
/// sysctl(8)'s rule (see `SysctlKey::parse`): "net.ipv4.conf.eth0/100.rp_filter"
/// → "sys/net/ipv4/conf/eth0.100/rp_filter".
pub fn proc_relative_path(name: &str) -> String {
    let mut path = String::from("sys");
    for component in crate::sysctl_tree::components(name) {
        path.push('/');
        path.push_str(&component);
    }
    path
}

/// A name as typed or pasted: "/proc/sys/net/core/somaxconn" or "net/core/somaxconn"
/// → "net.core.somaxconn"; a dotted name is returned as is.
pub fn name_from_path(text: &str) -> String {
    let rel = text.strip_prefix("/proc/sys/").unwrap_or(text);
    crate::sysctl_tree::components(rel)
        .iter()
        .map(|c| c.replace('.', "/"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Sysctl values as `sysctl -n` shows them, with tabs folded to single spaces.
pub fn normalize_value(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The numeric fields of a sysctl value ("4096 131072 6291456" → [4096, 131072, 6291456]).
pub fn numbers(value: &str) -> Vec<i64> {
    value
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// How many ports `net.ipv4.ip_local_port_range` ("32768 60999") leaves for
/// outgoing connections; None unless it is two numbers, low <= high.
pub fn port_range_size(value: &str) -> Option<u64> {
    let [low, high] = numbers(value)[..] else {
        return None;
    };
    (0 <= low && low <= high).then(|| high.abs_diff(low) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_values() {
        assert_eq!(
            proc_relative_path("net.ipv4.tcp_rmem"),
            "sys/net/ipv4/tcp_rmem"
        );
        assert_eq!(
            proc_relative_path("net.ipv4.conf.eth0/100.rp_filter"),
            "sys/net/ipv4/conf/eth0.100/rp_filter"
        );
        assert_eq!(
            name_from_path("/proc/sys/net/core/somaxconn"),
            "net.core.somaxconn"
        );
        assert_eq!(
            name_from_path("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        assert_eq!(name_from_path("tcp_rmem"), "tcp_rmem");
        assert_eq!(
            normalize_value("4096\t131072\t6291456\n"),
            "4096 131072 6291456"
        );
        assert_eq!(numbers("4096 131072 6291456"), vec![4096, 131072, 6291456]);
        assert!(numbers("cubic").is_empty());
        assert_eq!(port_range_size("32768\t60999"), Some(28232));
        assert_eq!(port_range_size("9223372036854775807 1"), None);
        assert_eq!(
            port_range_size("-9223372036854775808 9223372036854775807"),
            None
        );
        assert_eq!(port_range_size("5"), None);
    }
}
