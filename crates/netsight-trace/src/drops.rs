//! `netsight trace drops`: packets the kernel dropped, with the reason it gives.

use std::collections::BTreeMap;
use std::time::Duration;

use aya::include_bytes_aligned;
use serde::Serialize;

use crate::kallsyms::Kallsyms;
use crate::{btf_enum, loader, TraceError};

static OBJECT: &[u8] = include_bytes_aligned!("../bpf/drops.bpf.o");
/// struct drop_event: location u64, reason u32, protocol u16 (network order), pad u16.
const EVENT_LEN: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct DropEvent {
    /// The kernel's name, without the SKB_DROP_REASON_ prefix ("NO_SOCKET").
    pub reason: String,
    pub reason_code: u32,
    pub protocol: String,
    /// Where the skb was freed: "function+0xoffset".
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DropSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    pub total: u64,
    /// Reasons by count, most frequent first.
    pub by_reason: Vec<(String, u64)>,
    /// Dropping functions by count, most frequent first (top 10).
    pub by_location: Vec<(String, u64)>,
}

fn protocol_name(be: u16) -> String {
    match u16::from_be(be) {
        0x0800 => "ipv4".into(),
        0x86dd => "ipv6".into(),
        0x0806 => "arp".into(),
        other => format!("{other:#06x}"),
    }
}

pub(crate) fn ranked(counts: BTreeMap<String, u64>, limit: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Traces for `duration`, calling `on_event` for each drop. Everything is
/// detached and unloaded when this returns.
pub fn trace(
    duration: Duration,
    mut on_event: impl FnMut(&DropEvent),
) -> Result<DropSummary, TraceError> {
    let btf_bytes =
        std::fs::read("/sys/kernel/btf/vmlinux").map_err(|e| TraceError::NoBtf(e.to_string()))?;
    let reasons =
        btf_enum::enum_values(&btf_bytes, "skb_drop_reason").map_err(|e| TraceError::Bpf {
            what: "reading enum skb_drop_reason".into(),
            detail: e,
        })?;
    let mut attached = loader::attach_tp_btf(OBJECT, "kfree_skb", "kfree_skb")?;
    let kallsyms = Kallsyms::load();
    let (mut by_reason, mut by_location) = (BTreeMap::new(), BTreeMap::new());
    let mut total = 0u64;
    let duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(raw) = raw.get(..EVENT_LEN) else {
            return;
        };
        let location = u64::from_ne_bytes(raw[0..8].try_into().unwrap_or([0; 8]));
        let code = u32::from_ne_bytes(raw[8..12].try_into().unwrap_or([0; 4]));
        let protocol = u16::from_ne_bytes([raw[12], raw[13]]);
        let name = reasons
            .get(&u64::from(code))
            .map(String::as_str)
            .unwrap_or("UNKNOWN");
        let event = DropEvent {
            reason: name.trim_start_matches("SKB_DROP_REASON_").to_string(),
            reason_code: code,
            protocol: protocol_name(protocol),
            location: kallsyms.name(location),
        };
        total += 1;
        *by_reason.entry(event.reason.clone()).or_insert(0u64) += 1;
        let function = event.location.split('+').next().unwrap_or("").to_string();
        *by_location.entry(function).or_insert(0u64) += 1;
        on_event(&event);
    });
    Ok(DropSummary {
        duration_s,
        lost_events: attached.lost_events(),
        total,
        by_reason: ranked(by_reason, usize::MAX),
        by_location: ranked(by_location, 10),
    })
}
