//! /proc/net/sockstat and sockstat6: "TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 1".

use std::collections::BTreeMap;

use super::parse_i64;
use crate::error::{KernelError, Result};

/// `sockstat["TCP"]["tw"]`; `sockets: used N` becomes `sockstat["sockets"]["used"]`.
/// TCP `mem` is in pages, as the kernel prints it.
pub type Sockstat = BTreeMap<String, BTreeMap<String, i64>>;

pub fn parse(source_name: &str, text: &str, out: &mut Sockstat) -> Result<()> {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (group, rest) = line
            .split_once(':')
            .ok_or_else(|| KernelError::parse(source_name, format!("no group in {line:.40}")))?;
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        if !tokens.len().is_multiple_of(2) {
            return Err(KernelError::parse(
                source_name,
                format!("odd name/value count in {line:.60}"),
            ));
        }
        let entry = out.entry(group.trim().to_string()).or_default();
        for pair in tokens.chunks_exact(2) {
            let value = parse_i64(pair[1]).ok_or_else(|| {
                KernelError::parse(source_name, format!("{group} {}: bad value", pair[0]))
            })?;
            entry.insert(pair[0].to_string(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups() {
        let mut s = Sockstat::new();
        parse(
            "sockstat",
            "sockets: used 8\nTCP: inuse 1 orphan 0 tw 3 alloc 1 mem 91\nFRAG: inuse 0 memory 0\n",
            &mut s,
        )
        .unwrap();
        assert_eq!(s["sockets"]["used"], 8);
        assert_eq!(s["TCP"]["tw"], 3);
        assert_eq!(s["TCP"]["mem"], 91);
        assert!(parse("sockstat", "TCP: inuse\n", &mut s).is_err());
    }
}
