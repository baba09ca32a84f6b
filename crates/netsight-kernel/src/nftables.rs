//! Netfilter rules with their counters, over nfnetlink (NFT_MSG_GETRULE dump):
//! nftables and iptables-nft rules alike. Only what doctor needs: where a rule
//! sits (family, table, chain, position), what it does (drop, reject, accept,
//! jump...) and how many packets its counter saw.

use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::netlink_io;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETRULE: u16 = 7;
const NETLINK_NETFILTER: isize = 12;

// include/uapi/linux/netfilter/nf_tables.h
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_TARGET_NAME: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The request: a nfgenmsg (family, version, resource id) with no attributes.
#[derive(Debug, Clone)]
struct GetRules;

impl netlink_packet_core::NetlinkSerializable for GetRules {
    fn message_type(&self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE
    }
    fn buffer_len(&self) -> usize {
        4
    }
    fn serialize(&self, buffer: &mut [u8]) {
        // NFPROTO_UNSPEC: every family; NFNETLINK_V0; res_id 0.
        buffer[..4].copy_from_slice(&[0, 0, 0, 0]);
    }
}

impl netlink_packet_core::NetlinkDeserializable for GetRules {
    type Error = std::io::Error;
    fn deserialize(
        _: &netlink_packet_core::NetlinkHeader,
        _: &[u8],
    ) -> std::result::Result<Self, Self::Error> {
        Err(std::io::Error::other("requests are not decoded"))
    }
}

/// Every rule of every table, as the kernel sent them.
pub fn dump_rules() -> Result<Vec<u8>> {
    netlink_io::request(NETLINK_NETFILTER, "nftables", GetRules, true).map_err(|e| match e {
        KernelError::Netlink {
            family,
            operation,
            source,
        } if source.raw_os_error() == Some(libc::EPERM) => KernelError::Netlink {
            family,
            operation,
            source: std::io::Error::new(
                source.kind(),
                "reading firewall rules needs CAP_NET_ADMIN (run as root)",
            ),
        },
        other => other,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NfRule {
    /// ip, ip6, inet, arp, bridge, netdev.
    pub family: String,
    pub table: String,
    pub chain: String,
    /// 1-based position in its chain (what `iptables -L --line-numbers` shows).
    pub position: u32,
    pub handle: u64,
    /// drop, reject, accept, jump, return, queue, continue... ("" when none).
    pub verdict: String,
    /// The rule's counter; None without a counter expression.
    pub packets: Option<u64>,
    /// An iptables-legacy (x_tables) rule: position 0 is the chain's policy and
    /// the handle is the entry's offset in its table.
    #[serde(default)]
    pub legacy: bool,
}

impl NfRule {
    /// A verdict that discards the packet.
    pub fn discards(&self) -> bool {
        matches!(self.verdict.as_str(), "drop" | "reject")
    }
}

fn family_name(f: u8) -> String {
    match f {
        1 => "inet".into(),
        2 => "ip".into(),
        3 => "arp".into(),
        5 => "netdev".into(),
        7 => "bridge".into(),
        10 => "ip6".into(),
        n => n.to_string(),
    }
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned()
}

fn verdict_of(code: i32) -> &'static str {
    match code {
        0 => "drop",
        1 => "accept",
        2 => "stolen",
        3 => "queue",
        4 => "repeat",
        -1 => "continue",
        -2 => "break",
        -3 => "jump",
        -4 => "goto",
        -5 => "return",
        _ => "other",
    }
}

fn bad(detail: String) -> KernelError {
    KernelError::NetlinkDecode {
        family: "nftables",
        what: "rule".into(),
        detail,
    }
}

/// One expression's contribution: (packets of a counter, verdict).
fn expression(elem: &[u8]) -> Result<(Option<u64>, Option<String>)> {
    let (mut name, mut data) = (String::new(), &[][..]);
    for a in netlink_io::attributes(elem) {
        let (kind, value) = a.map_err(bad)?;
        match kind & NLA_TYPE_MASK {
            NFTA_EXPR_NAME => name = text(value),
            NFTA_EXPR_DATA => data = value,
            _ => {}
        }
    }
    let attrs = || netlink_io::attributes(data).filter_map(std::result::Result::ok);
    Ok(match name.as_str() {
        "counter" => (
            attrs()
                .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_COUNTER_PACKETS)
                .and_then(|(_, v)| be_u64(v)),
            None,
        ),
        "immediate" => {
            let verdict_register = attrs()
                .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_IMMEDIATE_DREG)
                .is_some_and(|(_, v)| v.get(..4) == Some(&[0, 0, 0, 0]));
            let code = attrs()
                .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_IMMEDIATE_DATA)
                .and_then(|(_, d)| {
                    netlink_io::attributes(d)
                        .filter_map(std::result::Result::ok)
                        .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_DATA_VERDICT)
                })
                .and_then(|(_, v)| {
                    netlink_io::attributes(v)
                        .filter_map(std::result::Result::ok)
                        .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_VERDICT_CODE)
                })
                .and_then(|(_, c)| Some(i32::from_be_bytes(c.get(..4)?.try_into().ok()?)));
            (
                None,
                code.filter(|_| verdict_register)
                    .map(|c| verdict_of(c).to_string()),
            )
        }
        // nftables' reject, and iptables-nft's xt targets (REJECT, DROP via xt).
        "reject" => (None, Some("reject".into())),
        "target" => {
            let target = attrs()
                .find(|(k, _)| k & NLA_TYPE_MASK == NFTA_TARGET_NAME)
                .map(|(_, v)| text(v).to_ascii_lowercase());
            (None, target.filter(|t| t == "reject" || t == "drop"))
        }
        _ => (None, None),
    })
}

/// Decodes a rule dump, numbering rules within their chain in dump order.
pub fn parse_rules(buf: &[u8]) -> Result<Vec<NfRule>> {
    netlink_io::check_framing(buf, "nftables", "rule")?;
    let mut rules: Vec<NfRule> = Vec::new();
    for msg in netlink_io::data_messages(buf) {
        // nlmsghdr (16) + nfgenmsg (4).
        let Some(body) = msg.get(20..) else {
            return Err(bad("short message".into()));
        };
        let family = family_name(msg[16]);
        let mut rule = NfRule {
            family,
            table: String::new(),
            chain: String::new(),
            position: 0,
            handle: 0,
            verdict: String::new(),
            packets: None,
            legacy: false,
        };
        for a in netlink_io::attributes(body) {
            let (kind, value) = a.map_err(bad)?;
            match kind & NLA_TYPE_MASK {
                NFTA_RULE_TABLE => rule.table = text(value),
                NFTA_RULE_CHAIN => rule.chain = text(value),
                NFTA_RULE_HANDLE => rule.handle = be_u64(value).unwrap_or(0),
                NFTA_RULE_EXPRESSIONS => {
                    for e in netlink_io::attributes(value) {
                        let (k, elem) = e.map_err(bad)?;
                        if k & NLA_TYPE_MASK != NFTA_LIST_ELEM {
                            continue;
                        }
                        let (packets, verdict) = expression(elem)?;
                        if let Some(p) = packets {
                            rule.packets = Some(rule.packets.unwrap_or(0) + p);
                        }
                        if let Some(v) = verdict {
                            rule.verdict = v;
                        }
                    }
                }
                _ => {}
            }
        }
        rule.position = 1 + rules
            .iter()
            .filter(|r| r.family == rule.family && r.table == rule.table && r.chain == rule.chain)
            .count() as u32;
        rules.push(rule);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &parts.concat())
    }

    fn rule_message(chain: &str, handle: u64, packets: u64, verdict: i32) -> Vec<u8> {
        let counter = nested(
            NFTA_LIST_ELEM,
            &[
                attr(NFTA_EXPR_NAME, b"counter\0"),
                nested(
                    NFTA_EXPR_DATA,
                    &[
                        attr(1, &7u64.to_be_bytes()),
                        attr(NFTA_COUNTER_PACKETS, &packets.to_be_bytes()),
                    ],
                ),
            ],
        );
        let immediate = nested(
            NFTA_LIST_ELEM,
            &[
                attr(NFTA_EXPR_NAME, b"immediate\0"),
                nested(
                    NFTA_EXPR_DATA,
                    &[
                        attr(NFTA_IMMEDIATE_DREG, &0u32.to_be_bytes()),
                        nested(
                            NFTA_IMMEDIATE_DATA,
                            &[nested(
                                NFTA_DATA_VERDICT,
                                &[attr(NFTA_VERDICT_CODE, &verdict.to_be_bytes())],
                            )],
                        ),
                    ],
                ),
            ],
        );
        let body = [
            attr(NFTA_RULE_TABLE, b"filter\0"),
            attr(NFTA_RULE_CHAIN, format!("{chain}\0").as_bytes()),
            attr(NFTA_RULE_HANDLE, &handle.to_be_bytes()),
            nested(NFTA_RULE_EXPRESSIONS, &[counter, immediate]),
        ]
        .concat();
        let mut msg = Vec::new();
        msg.extend_from_slice(&((20 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | 6).to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&[2, 0, 0, 0]); // NFPROTO_IPV4
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn rules_with_counters_and_verdicts_decode() {
        let buf = [
            rule_message("INPUT", 2, 3000, 0),
            rule_message("INPUT", 3, 5, 1),
            rule_message("FORWARD", 4, 0, 0),
        ]
        .concat();
        let rules = parse_rules(&buf).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0],
            NfRule {
                family: "ip".into(),
                table: "filter".into(),
                chain: "INPUT".into(),
                position: 1,
                handle: 2,
                verdict: "drop".into(),
                packets: Some(3000),
                legacy: false,
            }
        );
        assert!(rules[0].discards());
        assert_eq!(
            (rules[1].position, rules[1].verdict.as_str()),
            (2, "accept")
        );
        assert_eq!(rules[2].position, 1, "positions count within a chain");
    }

    #[test]
    fn damaged_dumps_are_errors_not_panics() {
        let good = rule_message("INPUT", 2, 3000, 0);
        for cut in 0..good.len() {
            let _ = parse_rules(&good[..cut]);
        }
        let mut bent = good.clone();
        bent[24] = 0xff; // an attribute length past the end
        let _ = parse_rules(&bent);
    }
}
