//! Packet filters: netfilter rules (nftables, iptables-nft) whose verdict
//! discards and whose counters rose during the interval.

use super::{Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[Rule {
    id: "filter.rule_drops",
    layer: Layer::Filter,
    kind: UseKind::Errors,
    title: "A firewall rule is dropping packets",
    thresholds: "a drop or reject rule's counter rising: >= 10 packets/s warns, fewer is info (firewalls that drop scans are normal)",
    why: "A netfilter rule with a drop or reject verdict matched these packets. If the traffic is wanted (a service's port, a health check, return traffic), the rule is the fault; the rule's table, chain and position say where it is.",
    confirm: &["nft -a list ruleset   (or iptables -L -v -n --line-numbers; iptables-legacy -L -v -n --line-numbers)", "netsight trace drops --duration 10s   (NETFILTER_DROP, with addresses and ports)"],
    fix: &["Allow the wanted traffic before the rule (nft insert rule ... accept), or narrow the rule's match"],
    reads: &["nftables rule counters (NFT_MSG_GETRULE)", "iptables-legacy rule counters (IPT_SO_GET_ENTRIES)"],
    check: rule_drops,
}];

/// Below this a discarding rule's hits are context, not a warning.
const WARN_PER_S: f64 = 10.0;

/// How the user finds the rule: `nft -a` shows handles; iptables-legacy shows
/// positions (`iptables -L --line-numbers`) and the chain's policy.
fn rule_name(rule: &netsight_kernel::nftables::NfRule) -> String {
    let tool = if rule.family == "ip6" {
        "ip6tables-legacy"
    } else {
        "iptables-legacy"
    };
    match (rule.legacy, rule.position) {
        (true, 0) => format!("{tool} {} {} policy", rule.table, rule.chain),
        (true, n) => format!("{tool} {} {} rule #{n}", rule.table, rule.chain),
        (false, n) => format!(
            "{} {} {} rule #{n} (handle {})",
            rule.family, rule.table, rule.chain, rule.handle
        ),
    }
}

fn rule_drops(ctx: &Context) -> Vec<Hit> {
    let seconds = ctx.rates.interval_s.max(f64::EPSILON);
    let mut hits = Vec::new();
    for rule in ctx.cur.netfilter_rules.iter().filter(|r| r.discards()) {
        let before = ctx
            .prev
            .netfilter_rules
            .iter()
            .find(|p| {
                p.family == rule.family
                    && p.table == rule.table
                    && p.chain == rule.chain
                    && p.handle == rule.handle
                    && p.legacy == rule.legacy
            })
            .and_then(|p| p.packets);
        let (Some(before), Some(now)) = (before, rule.packets) else {
            continue;
        };
        let Some(increase) = now.checked_sub(before).filter(|n| *n > 0) else {
            continue;
        };
        let rate = increase as f64 / seconds;
        let severity = if rate >= WARN_PER_S {
            Severity::Warning
        } else {
            Severity::Info
        };
        let name = rule_name(rule);
        let mut hit = Hit::new(
            severity,
            vec![
                Evidence::new(
                    format!("{name}: {} packets", rule.verdict),
                    rate,
                    "per_s",
                    Some(WARN_PER_S),
                ),
                Evidence::new(
                    format!("{name} matched {increase} packets in the interval"),
                    1.0,
                    "text",
                    None,
                ),
            ],
            rate / WARN_PER_S,
        );
        hit.subject = Some(name);
        hits.push(hit);
    }
    hits
}
