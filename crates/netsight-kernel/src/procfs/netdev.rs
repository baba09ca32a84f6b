//! /proc/net/dev: the fallback for link counters when rtnetlink is not available
//! (and what sar reads). Column sums follow the kernel's dev_seq_printf_stats.

use crate::error::{KernelError, Result};

/// One row of /proc/net/dev, columns in the kernel's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcNetDevRow {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    /// rx_dropped + rx_missed_errors
    pub rx_drop: u64,
    pub rx_fifo: u64,
    /// rx_length + rx_over + rx_crc + rx_frame errors
    pub rx_frame: u64,
    pub rx_compressed: u64,
    pub rx_multicast: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
    pub tx_fifo: u64,
    pub tx_colls: u64,
    /// tx_carrier + tx_aborted + tx_window + tx_heartbeat errors
    pub tx_carrier: u64,
    pub tx_compressed: u64,
}

pub fn parse(text: &str) -> Result<Vec<(String, ProcNetDevRow)>> {
    let mut rows = Vec::new();
    // Two header lines ("Inter-|   Receive ..." and " face |bytes ...").
    for line in text.lines().skip(2).filter(|l| !l.trim().is_empty()) {
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| KernelError::parse("dev", format!("no interface in {line:.40}")))?;
        let values: Vec<u64> = rest
            .split_whitespace()
            .map(|t| t.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|e| KernelError::parse("dev", format!("{}: {e}", name.trim())))?;
        let [rx_bytes, rx_packets, rx_errs, rx_drop, rx_fifo, rx_frame, rx_compressed, rx_multicast, tx_bytes, tx_packets, tx_errs, tx_drop, tx_fifo, tx_colls, tx_carrier, tx_compressed] =
            values[..]
        else {
            return Err(KernelError::parse(
                "dev",
                format!("{}: {} columns, expected 16", name.trim(), values.len()),
            ));
        };
        rows.push((
            name.trim().to_string(),
            ProcNetDevRow {
                rx_bytes,
                rx_packets,
                rx_errs,
                rx_drop,
                rx_fifo,
                rx_frame,
                rx_compressed,
                rx_multicast,
                tx_bytes,
                tx_packets,
                tx_errs,
                tx_drop,
                tx_fifo,
                tx_colls,
                tx_carrier,
                tx_compressed,
            },
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    #[test]
    fn parses_rows() {
        let text = format!("{HEADER}    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\nveth-a: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        let rows = parse(&text).unwrap();
        assert_eq!(rows[0].0, "lo");
        assert_eq!(rows[0].1.rx_bytes, 3193);
        assert_eq!(rows[1].0, "veth-a");
        assert_eq!(rows[1].1.tx_carrier, 15);
        assert_eq!(rows[1].1.tx_compressed, 16);
    }

    #[test]
    fn rejects_short_rows() {
        let text = format!("{HEADER}eth0: 1 2 3\n");
        assert!(parse(&text).unwrap_err().to_string().contains("3 columns"));
    }
}
