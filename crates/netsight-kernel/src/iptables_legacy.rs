//! iptables-legacy (x_tables) rule counters: IPT_SO_GET_INFO and
//! IPT_SO_GET_ENTRIES on a raw socket, per table the namespace has
//! (/proc/net/ip_tables_names, ip6_tables_names). Only tables that exist are
//! asked for: asking for another would load its module and create it.
//! nftables and iptables-nft rules are read through netlink (`nftables`).
//!
//! A table as stored: the ipt_getinfo struct (84 bytes), then ipt_get_entries
//! (a 40-byte header and the entries), as the kernel gave them. Layouts are
//! x86_64 (include/uapi/linux/netfilter_ipv4/ip_tables.h; ip6_tables.h).

use std::path::Path;

use crate::error::{KernelError, Result};
use crate::nftables::NfRule;

const GETINFO_LEN: usize = 84;
const GET_ENTRIES_HEADER: usize = 40;
const SO_GET_INFO: i32 = 64;
const SO_GET_ENTRIES: i32 = 65;
const TARGET_HEADER: usize = 32;
const HOOKS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// One family's layout: struct sizes and field offsets of its entry.
struct Family {
    name: &'static str,
    names_file: &'static str,
    domain: i32,
    level: i32,
    entry_len: usize,
    target_offset_at: usize,
    next_offset_at: usize,
    counters_at: usize,
}

const FAMILIES: [Family; 2] = [
    Family {
        name: "ip",
        names_file: "ip_tables_names",
        domain: libc::AF_INET,
        level: libc::SOL_IP,
        entry_len: 112,
        target_offset_at: 88,
        next_offset_at: 90,
        counters_at: 96,
    },
    Family {
        name: "ip6",
        names_file: "ip6_tables_names",
        domain: libc::AF_INET6,
        level: libc::SOL_IPV6,
        entry_len: 168,
        target_offset_at: 140,
        next_offset_at: 142,
        counters_at: 152,
    },
];

/// The raw key of one table: "sockopt/iptables-legacy/ip/filter".
pub fn key(family: &str, table: &str) -> String {
    format!(
        "{}{family}/{table}",
        crate::raw::key::IPTABLES_LEGACY_PREFIX
    )
}

/// Every legacy table of this namespace, as (key, bytes or error). `proc_net` is
/// the namespace's /proc/net. Nothing when x_tables is not loaded.
pub fn dump_tables(proc_net: &Path) -> Vec<(String, Result<Vec<u8>>)> {
    let mut out = Vec::new();
    for family in &FAMILIES {
        let Ok(names) = std::fs::read_to_string(proc_net.join(family.names_file)) else {
            continue;
        };
        for table in names.split_whitespace() {
            out.push((key(family.name, table), dump_table(family, table)));
        }
    }
    out
}

fn sockopt_error(what: &'static str, table: &str, source: std::io::Error) -> KernelError {
    let hint = if source.kind() == std::io::ErrorKind::PermissionDenied {
        " (needs CAP_NET_ADMIN)"
    } else {
        ""
    };
    KernelError::IptablesLegacy {
        what,
        table: table.to_string(),
        source,
        hint,
    }
}

fn dump_table(family: &Family, table: &str) -> Result<Vec<u8>> {
    use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};
    if table.len() >= 32 {
        return Err(sockopt_error(
            "table name",
            table,
            std::io::ErrorKind::InvalidInput.into(),
        ));
    }
    let domain = if family.domain == libc::AF_INET {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let socket = rustix::net::socket_with(
        domain,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(Protocol::from_raw(
            rustix::net::RawProtocol::new(libc::IPPROTO_RAW as u32).ok_or_else(|| {
                sockopt_error("socket for", table, std::io::ErrorKind::InvalidInput.into())
            })?,
        )),
    )
    .map_err(|e| sockopt_error("socket for", table, e.into()))?;
    let mut info = vec![0u8; GETINFO_LEN];
    info[..table.len()].copy_from_slice(table.as_bytes());
    getsockopt_bytes(&socket, family.level, SO_GET_INFO, &mut info)
        .map_err(|e| sockopt_error("IPT_SO_GET_INFO", table, e))?;
    let size = u32_at(&info, 80).unwrap_or(0) as usize;
    let mut entries = vec![0u8; GET_ENTRIES_HEADER + size];
    entries[..table.len()].copy_from_slice(table.as_bytes());
    entries[32..36].copy_from_slice(&(size as u32).to_ne_bytes());
    getsockopt_bytes(&socket, family.level, SO_GET_ENTRIES, &mut entries)
        .map_err(|e| sockopt_error("IPT_SO_GET_ENTRIES", table, e))?;
    info.extend_from_slice(&entries);
    Ok(info)
}

/// getsockopt into `buf`, whose first bytes are the request (x_tables reads the
/// table name from the buffer it fills). rustix has no byte-buffer getsockopt.
#[allow(unsafe_code)]
fn getsockopt_bytes(
    socket: &std::os::fd::OwnedFd,
    level: i32,
    option: i32,
    buf: &mut [u8],
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: buf is valid and writable for len bytes, the kernel writes at most
    // len; the fd is open for the call's duration.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            option,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated name of at most `max` bytes at `at`.
fn name_at(b: &[u8], at: usize, max: usize) -> Option<String> {
    let field = b.get(at..at + max)?;
    let end = field.iter().position(|&c| c == 0).unwrap_or(max);
    Some(String::from_utf8_lossy(&field[..end]).into_owned())
}

/// The rules of one stored table (`key`'s bytes), in order, with their chain,
/// 1-based position and counter; a built-in chain's policy is position 0. The
/// handle is the entry's byte offset (legacy rules have none). Bytes from another
/// machine are hostile: every offset is checked, a bad one fails the table.
pub fn parse_table(family_name: &str, bytes: &[u8]) -> Result<Vec<NfRule>> {
    let bad =
        |detail: String| KernelError::parse(format!("iptables-legacy {family_name} table"), detail);
    let family = FAMILIES
        .iter()
        .find(|f| f.name == family_name)
        .ok_or_else(|| bad("unknown family".into()))?;
    if bytes.len() < GETINFO_LEN + GET_ENTRIES_HEADER {
        return Err(bad(format!(
            "{} bytes: shorter than its headers",
            bytes.len()
        )));
    }
    let table = name_at(bytes, 0, 32).unwrap_or_default();
    let valid_hooks = u32_at(bytes, 32).unwrap_or(0);
    let hook = |base: usize, h: usize| u32_at(bytes, base + 4 * h).map(|v| v as usize);
    let size = u32_at(bytes, GETINFO_LEN + 32).unwrap_or(0) as usize;
    let entries = bytes
        .get(GETINFO_LEN + GET_ENTRIES_HEADER..GETINFO_LEN + GET_ENTRIES_HEADER + size)
        .ok_or_else(|| bad(format!("claims {size} bytes of entries, has fewer")))?;
    let mut rules = Vec::new();
    let (mut chain, mut position) = (String::new(), 0u32);
    let mut off = 0usize;
    while off < entries.len() {
        let short = || bad(format!("entry at byte {off} is cut short"));
        let target_at = u16_at(entries, off + family.target_offset_at).ok_or_else(short)? as usize;
        let next = u16_at(entries, off + family.next_offset_at).ok_or_else(short)? as usize;
        if target_at < family.entry_len
            || target_at + TARGET_HEADER > next
            || off + next > entries.len()
        {
            return Err(bad(format!(
                "entry at byte {off}: target at {target_at}, next at {next}, table of {}",
                entries.len()
            )));
        }
        let target = off + target_at;
        let target_name = name_at(entries, target + 2, 29).ok_or_else(short)?;
        let data = target + TARGET_HEADER;
        for h in (0..HOOKS.len()).filter(|h| valid_hooks & (1 << h) != 0) {
            if hook(36, h) == Some(off) {
                (chain, position) = (HOOKS[h].to_string(), 0);
            }
        }
        if target_name == "ERROR" {
            // A user chain's head (its name as the data), or the table's end.
            let name = name_at(entries, data, 30.min(off + next - data)).unwrap_or_default();
            if name == "ERROR" {
                break;
            }
            (chain, position) = (name, 0);
            off += next;
            continue;
        }
        let policy =
            (0..HOOKS.len()).any(|h| valid_hooks & (1 << h) != 0 && hook(56, h) == Some(off));
        let verdict = if target_name.is_empty() {
            match u32_at(entries, data).map(|v| v as i32) {
                Some(v) if v < 0 => match -v - 1 {
                    0 => "drop",
                    1 => "accept",
                    3 => "queue",
                    4 => "return",
                    _ => "",
                }
                .to_string(),
                Some(_) => "jump".to_string(),
                None => return Err(short()),
            }
        } else {
            target_name.to_ascii_lowercase()
        };
        if !policy {
            position += 1;
        }
        rules.push(NfRule {
            family: family.name.to_string(),
            table: table.clone(),
            chain: chain.clone(),
            position: if policy { 0 } else { position },
            handle: off as u64,
            verdict,
            packets: u64_at(entries, off + family.counters_at),
            legacy: true,
        });
        off += next;
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A filter table as the kernel lays it out: INPUT with one UDP DROP rule and
    /// a policy ACCEPT, a user chain "blocked" with a REJECT, then the end marker.
    fn table(drop_packets: u64) -> Vec<u8> {
        let entry = |target: &str, data: &[u8], packets: u64| {
            let target_len = TARGET_HEADER + data.len().div_ceil(8) * 8;
            let next = 112 + target_len;
            let mut e = vec![0u8; next];
            e[88..90].copy_from_slice(&112u16.to_ne_bytes());
            e[90..92].copy_from_slice(&(next as u16).to_ne_bytes());
            e[96..104].copy_from_slice(&packets.to_ne_bytes());
            e[112..114].copy_from_slice(&(target_len as u16).to_ne_bytes());
            e[114..114 + target.len()].copy_from_slice(target.as_bytes());
            e[144..144 + data.len()].copy_from_slice(data);
            e
        };
        let verdict = |v: i32| v.to_ne_bytes().to_vec();
        let mut name = [0u8; 30];
        name[..7].copy_from_slice(b"blocked");
        let mut end = [0u8; 30];
        end[..5].copy_from_slice(b"ERROR");
        let parts = [
            entry("", &verdict(-1), drop_packets),
            entry("", &verdict(-2), 7),
            entry("ERROR", &name, 0),
            entry("REJECT", &[0u8; 8], 3),
            entry("", &verdict(-5), 0),
            entry("ERROR", &end, 0),
        ];
        let policy_at = parts[0].len();
        let entries: Vec<u8> = parts.concat();
        let mut info = vec![0u8; GETINFO_LEN];
        info[..6].copy_from_slice(b"filter");
        info[32..36].copy_from_slice(&(1u32 << 1).to_ne_bytes());
        info[36 + 4..36 + 8].copy_from_slice(&0u32.to_ne_bytes());
        info[56 + 4..56 + 8].copy_from_slice(&(policy_at as u32).to_ne_bytes());
        let mut header = vec![0u8; GET_ENTRIES_HEADER];
        header[32..36].copy_from_slice(&(entries.len() as u32).to_ne_bytes());
        [info, header, entries].concat()
    }

    #[test]
    fn rules_chains_positions_and_policies() {
        let rules = parse_table("ip", &table(42)).unwrap();
        let summary: Vec<(String, u32, String, Option<u64>)> = rules
            .iter()
            .map(|r| (r.chain.clone(), r.position, r.verdict.clone(), r.packets))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("INPUT".into(), 1, "drop".into(), Some(42)),
                ("INPUT".into(), 0, "accept".into(), Some(7)),
                ("blocked".into(), 1, "reject".into(), Some(3)),
                ("blocked".into(), 2, "return".into(), Some(0)),
            ]
        );
        assert!(rules.iter().all(|r| r.legacy && r.table == "filter"));
        assert!(rules[0].discards() && rules[2].discards() && !rules[1].discards());
    }

    #[test]
    fn bad_offsets_fail_the_table() {
        let good = table(1);
        assert!(parse_table("ip", &good[..good.len() - 1]).is_err());
        let mut bad = good.clone();
        // The first entry's next_offset pointing past the table.
        let at = GETINFO_LEN + GET_ENTRIES_HEADER + 90;
        bad[at..at + 2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert!(parse_table("ip", &bad).is_err());
        assert!(
            parse_table("ip6", &good).is_err(),
            "an ip table is not an ip6 one"
        );
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), flip in 0usize..600) {
            let _ = parse_table("ip", &bytes);
            let mut t = table(5);
            if flip < t.len() {
                t[flip] ^= 0xff;
            }
            let _ = parse_table("ip", &t);
            let _ = parse_table("ip6", &t);
        }
    }
}
