//! /proc/net/stat/nf_conntrack: a header of names, then one hex row per CPU.
//! Names differ between kernels (4.x has searched/delete_list, 5.x+ clashres/chainlength),
//! so columns are read by header name. `entries` is global and repeated on every row.

use std::collections::BTreeMap;

use crate::error::{KernelError, Result};

/// Per-name sums over all CPUs (except `entries`, taken once).
pub fn parse_stats(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| KernelError::parse("nf_conntrack stat", "empty file"))?
        .split_whitespace()
        .collect();
    let mut sums: BTreeMap<String, u64> = header.iter().map(|n| (n.to_string(), 0)).collect();
    for (row, line) in lines.enumerate() {
        let values: Vec<u64> = line
            .split_whitespace()
            .map(|t| u64::from_str_radix(t, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| KernelError::parse("nf_conntrack stat", format!("row {row}: {e}")))?;
        if values.len() != header.len() {
            return Err(KernelError::parse(
                "nf_conntrack stat",
                format!(
                    "row {row}: {} values for {} names",
                    values.len(),
                    header.len()
                ),
            ));
        }
        for (name, value) in header.iter().zip(values) {
            let sum = sums.entry(name.to_string()).or_default();
            *sum = if *name == "entries" {
                value
            } else {
                sum.saturating_add(value)
            };
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_cpu_but_not_entries() {
        let text = "entries found drop\n00000021 00000005 00000003\n00000021 00000002 00000001\n";
        let stats = parse_stats(text).unwrap();
        assert_eq!(stats["entries"], 0x21);
        assert_eq!(stats["found"], 7);
        assert_eq!(stats["drop"], 4);
        assert!(parse_stats("a b\n1\n").is_err());
        assert!(parse_stats("").is_err());
    }
}
