//! /proc/net/snmp and /proc/net/netstat (pairs of "Group: names" / "Group: values"
//! lines) and /proc/net/snmp6 ("Ip6InReceives 123" lines).

use std::collections::BTreeMap;

use super::parse_i64;
use crate::error::{KernelError, Result};

/// MIB counters grouped as the kernel groups them: `mib["TcpExt"]["ListenOverflows"]`.
pub type Mib = BTreeMap<String, BTreeMap<String, i64>>;

/// This network namespace's MIB counters now, from /proc/net/{snmp,netstat,snmp6}
/// (a file that is missing or malformed is left out): the cheap part of a
/// snapshot, for counting what a run did.
pub fn read_now() -> Mib {
    let mut mib = Mib::new();
    for (file, name) in [("/proc/net/snmp", "snmp"), ("/proc/net/netstat", "netstat")] {
        if let Ok(t) = std::fs::read_to_string(file) {
            let _ = parse_paired(name, &t, &mut mib);
        }
    }
    if let Ok(t) = std::fs::read_to_string("/proc/net/snmp6") {
        let _ = parse_snmp6(&t, &mut mib);
    }
    mib
}

/// The counters that moved from `before` to `after`, as "Group.Name" → change
/// (gauges such as Tcp.CurrEstab can go down).
pub fn changed(before: &Mib, after: &Mib) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (group, names) in after {
        for (name, v) in names {
            let was = before
                .get(group)
                .and_then(|g| g.get(name))
                .copied()
                .unwrap_or(0);
            if *v != was {
                out.insert(format!("{group}.{name}"), v.wrapping_sub(was));
            }
        }
    }
    out
}

/// Parses the header/value line pairs of /proc/net/snmp or /proc/net/netstat into `mib`.
/// Unknown groups and new counters are kept as they come: the kernel adds names often.
pub fn parse_paired(source_name: &str, text: &str, mib: &mut Mib) -> Result<()> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(header) = lines.next() {
        let values = lines.next().ok_or_else(|| {
            KernelError::parse(source_name, format!("header without values: {header:.40}"))
        })?;
        let (group, names) = split_group(header)
            .ok_or_else(|| KernelError::parse(source_name, format!("no group in {header:.40}")))?;
        let (value_group, values) = split_group(values)
            .ok_or_else(|| KernelError::parse(source_name, format!("no group in {values:.40}")))?;
        if group != value_group {
            return Err(KernelError::parse(
                source_name,
                format!("header group {group} followed by values of {value_group}"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(KernelError::parse(
                source_name,
                format!("{group}: {} names but {} values", names.len(), values.len()),
            ));
        }
        let entry = mib.entry(group.to_string()).or_default();
        for (name, value) in names.into_iter().zip(values) {
            let value = parse_i64(value).ok_or_else(|| {
                KernelError::parse(
                    source_name,
                    format!("{group} {name}: bad value {value:.20}"),
                )
            })?;
            entry.insert(name.to_string(), value);
        }
    }
    Ok(())
}

fn split_group(line: &str) -> Option<(&str, &str)> {
    let (group, rest) = line.split_once(':')?;
    let group = group.trim();
    (!group.is_empty() && !group.contains(' ')).then_some((group, rest))
}

/// snmp6 names carry their group as a prefix; longest prefixes first.
const SNMP6_GROUPS: [&str; 4] = ["UdpLite6", "Udp6", "Icmp6", "Ip6"];

/// Parses /proc/net/snmp6 into groups Ip6, Icmp6, Udp6, UdpLite6 so that
/// group + name is the kernel's (and nstat's) name: "Ip6" + "InReceives".
pub fn parse_snmp6(text: &str, mib: &mut Mib) -> Result<()> {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(full_name), Some(value), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(KernelError::parse("snmp6", format!("bad line {line:.60}")));
        };
        let value = parse_i64(value)
            .ok_or_else(|| KernelError::parse("snmp6", format!("{full_name}: bad value")))?;
        let group = SNMP6_GROUPS
            .iter()
            .find(|g| full_name.starts_with(**g) && full_name.len() > g.len())
            .copied()
            .unwrap_or("Snmp6Other");
        let name = full_name.strip_prefix(group).unwrap_or(full_name);
        mib.entry(group.to_string())
            .or_default()
            .insert(name.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_groups_keep_kernel_names() {
        let text =
            "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 42\nUdp: InDatagrams\nUdp: 7\n";
        let mut mib = Mib::new();
        parse_paired("snmp", text, &mut mib).unwrap();
        assert_eq!(mib["Tcp"]["MaxConn"], -1);
        assert_eq!(mib["Tcp"]["ActiveOpens"], 42);
        assert_eq!(mib["Udp"]["InDatagrams"], 7);
    }

    #[test]
    fn paired_rejects_count_mismatch_and_group_mismatch() {
        let mut mib = Mib::new();
        let err = parse_paired("snmp", "Tcp: A B\nTcp: 1\n", &mut mib).unwrap_err();
        assert!(err.to_string().contains("2 names but 1 values"), "{err}");
        let err = parse_paired("snmp", "Tcp: A\nUdp: 1\n", &mut mib).unwrap_err();
        assert!(
            err.to_string().contains("followed by values of Udp"),
            "{err}"
        );
        let err = parse_paired("snmp", "Tcp: A\n", &mut mib).unwrap_err();
        assert!(err.to_string().contains("without values"), "{err}");
    }

    #[test]
    fn snmp6_splits_prefix() {
        let mut mib = Mib::new();
        parse_snmp6(
            "Ip6InReceives 5\nIcmp6InType133 2\nUdpLite6InErrors 0\nUdp6NoPorts 3\n",
            &mut mib,
        )
        .unwrap();
        assert_eq!(mib["Ip6"]["InReceives"], 5);
        assert_eq!(mib["Icmp6"]["InType133"], 2);
        assert_eq!(mib["UdpLite6"]["InErrors"], 0);
        assert_eq!(mib["Udp6"]["NoPorts"], 3);
    }
}
