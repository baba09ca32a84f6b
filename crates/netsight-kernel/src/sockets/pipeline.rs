//! `netsight sockets`' live path: dump, decode and owner lookup on three threads.

use crate::error::{KernelError, Result};
use crate::netlink_io;

use super::*;

/// Every TCP/UDP socket of the running system for `netsight sockets`, which keeps
/// no raw bytes: replies are decoded on a second thread while the kernel is still
/// dumping, and owners are looked up on a third. Returns the table and, when the
/// BPF owner iterator could not run, why (the /proc scan was used instead).
pub fn live_table(
    proc_root: &std::path::Path,
    with_owners: bool,
) -> Result<(SocketTable, Option<String>)> {
    std::thread::scope(|scope| {
        let owners = scope.spawn(|| with_owners.then(|| owners::scan_live(proc_root)));
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Protocol, Vec<u8>)>(256);
        // Decoded reply buffers go back to the reader: no per-reply allocation or copy.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let expected = expected_socket_count(proc_root);
        let parser = scope.spawn(move || {
            let mut sockets = Vec::with_capacity(expected);
            let mut first_error = None;
            for (protocol, chunk) in rx {
                if let Err(e) = parse_dump(&chunk, protocol, &mut sockets) {
                    first_error.get_or_insert(e);
                }
                let _ = recycle_tx.send(chunk);
            }
            (sockets, first_error)
        });
        let mut dump_error = None;
        for (_, family, protocol) in DUMPS {
            let sent = netlink_io::request_each(
                netlink_sys::protocols::NETLINK_SOCK_DIAG,
                "sock_diag",
                inet_request(family, protocol),
                true,
                |reply| {
                    let spare = recycle_rx.try_recv().unwrap_or_default();
                    let _ = tx.send((protocol, std::mem::replace(reply, spare)));
                },
            );
            if let Err(e) = sent {
                dump_error.get_or_insert(e);
            }
        }
        drop(tx);
        let (mut sockets, parse_error) = parser.join().map_err(|_| KernelError::NetlinkDecode {
            family: "sock_diag",
            what: "inet_diag_msg".into(),
            detail: "decoder thread panicked".into(),
        })?;
        if let Some(e) = dump_error.or(parse_error) {
            return Err(e);
        }
        let mut table = SocketTable {
            sockets: Vec::new(),
            unix_counts: std::fs::read_to_string(proc_root.join("net/unix"))
                .map(|t| parse_unix_counts(&t))
                .unwrap_or_default(),
            owners_complete: false,
        };
        let mut bpf_note = None;
        if let Ok(Some((found, bpf_error))) = owners.join() {
            table.owners_complete = found.complete;
            let map = if found.records.is_empty() {
                found.by_inode
            } else {
                owners_bpf::parse_records(&found.records)
            };
            attach_owners(&mut sockets, &map);
            bpf_note = bpf_error;
        }
        table.sockets = sockets;
        Ok((table, bpf_note))
    })
}

/// Sockets the kernel counts in /proc/net/sockstat{,6} (TCP in use + TIME-WAIT, UDP),
/// to size the table once instead of growing it; 0 when unreadable.
fn expected_socket_count(proc_root: &std::path::Path) -> usize {
    let mut total = 0;
    for file in ["net/sockstat", "net/sockstat6"] {
        let Ok(text) = std::fs::read_to_string(proc_root.join(file)) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(proto) = words.next() else { continue };
            if !matches!(proto, "TCP:" | "TCP6:" | "UDP:" | "UDP6:") {
                continue;
            }
            while let Some(key) = words.next() {
                let value: usize = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                if key == "inuse" || key == "tw" {
                    total += value;
                }
            }
        }
    }
    total
}
