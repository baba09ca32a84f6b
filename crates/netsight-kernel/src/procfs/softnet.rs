//! /proc/net/softnet_stat: one hex row per online CPU. The column count depends on
//! the kernel: 10 (< 3.11), 11 (+flow_limit_count), 13 (5.10: +backlog_len, cpu
//! index), 15 (6.x: +input_qlen, process_qlen). Columns 3..=8 are always zero now.

use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftnetCpu {
    /// The CPU number: printed by the kernel since 5.10; before that the row
    /// position, which is wrong when a CPU is offline (rows are skipped).
    pub cpu: u32,
    /// Packets taken off the backlog and processed by NAPI/netif_receive_skb.
    pub processed: u64,
    /// Packets dropped because the backlog queue was full (net.core.netdev_max_backlog).
    pub dropped: u64,
    /// net_rx_action ran out of budget or time with work left (net.core.netdev_budget[_usecs]).
    pub time_squeeze: u64,
    /// Times this CPU was woken by an RPS inter-processor interrupt.
    pub received_rps: u64,
    /// Packets dropped by the RPS flow limit (absent before 3.11).
    pub flow_limit_count: Option<u64>,
    /// Current backlog length (gauge; 5.10+).
    pub backlog_len: Option<u64>,
}

pub fn parse(text: &str) -> Result<Vec<SoftnetCpu>> {
    let mut cpus = Vec::new();
    for (row, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let cols: Vec<u64> = line
            .split_whitespace()
            .map(|t| u64::from_str_radix(t, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| KernelError::parse("softnet_stat", format!("row {row}: {e}")))?;
        if cols.len() < 10 {
            return Err(KernelError::parse(
                "softnet_stat",
                format!("row {row}: {} columns, need at least 10", cols.len()),
            ));
        }
        cpus.push(SoftnetCpu {
            cpu: cols.get(12).map(|&c| c as u32).unwrap_or(row as u32),
            processed: cols[0],
            dropped: cols[1],
            time_squeeze: cols[2],
            received_rps: cols[9],
            flow_limit_count: cols.get(10).copied(),
            backlog_len: cols.get(11).copied(),
        });
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_x_format_has_cpu_index() {
        let rows = parse(
            "0000000f 00000001 00000002 0 0 0 0 0 0 00000003 00000004 00000005 00000007 0 0\n",
        )
        .unwrap();
        assert_eq!(rows[0].cpu, 7);
        assert_eq!(rows[0].processed, 15);
        assert_eq!(rows[0].dropped, 1);
        assert_eq!(rows[0].time_squeeze, 2);
        assert_eq!(rows[0].received_rps, 3);
        assert_eq!(rows[0].flow_limit_count, Some(4));
        assert_eq!(rows[0].backlog_len, Some(5));
    }

    #[test]
    fn old_formats_fall_back_to_row_position() {
        let rows = parse("a 1 2 0 0 0 0 0 0 4\nb 0 0 0 0 0 0 0 0 0\n").unwrap();
        assert_eq!(rows[1].cpu, 1);
        assert_eq!(rows[0].processed, 10);
        assert_eq!(rows[0].flow_limit_count, None);
        assert!(parse("1 2 3\n").is_err());
        assert!(parse("zz 0 0 0 0 0 0 0 0 0\n").is_err());
    }
}
