//! `netsight sockets`: the socket table with tcp_info, filtered, sorted or summarised.

pub mod view;

use std::io::{self, Write};

use std::path::Path;

use anyhow::{bail, Result};
use netsight_kernel::Snapshot;

use crate::cli::SocketsArgs;
use crate::{exit, snapshot::read_bundle};

pub fn run(args: &SocketsArgs) -> Result<()> {
    let filter = view::SocketFilter::from_args(args).map_err(exit::Usage)?;
    let (table, snapshot) = match &args.from {
        // The bundle's last snapshot: the most recent view of the sockets.
        Some(path) => {
            let Some(raw) = read_bundle(path)?.pop() else {
                bail!("bundle {} holds no snapshots", path.display());
            };
            let mut snapshot = Snapshot::from_raw(&raw);
            let Some(table) = snapshot.sockets.take() else {
                let reason = snapshot
                    .unavailable
                    .iter()
                    .find(|(k, _)| k.starts_with("netlink/sock_diag"))
                    .map(|(_, why)| why.clone())
                    .unwrap_or_else(|| "the bundle was taken without --sockets".into());
                bail!("no socket data: {reason}");
            };
            (table, Some(snapshot))
        }
        // Live: sockets decoded while the kernel dumps them; the counters a
        // summary needs are read only for a summary.
        None => {
            let (table, _) = netsight_kernel::sockets::live_table(
                Path::new(netsight_kernel::PROC_ROOT),
                !args.no_process,
            )?;
            (table, None)
        }
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if args.summary {
        // The summary covers the filtered sockets (all of them without filters).
        let filtered = netsight_kernel::sockets::SocketTable {
            sockets: table
                .sockets
                .iter()
                .filter(|s| filter.matches(s))
                .cloned()
                .collect(),
            ..table.clone()
        };
        let snapshot = snapshot.unwrap_or_else(Snapshot::take);
        let summary = netsight_kernel::sockets::summary::summarize(
            &filtered,
            &snapshot.sockstat,
            &snapshot.sysctls,
        );
        if args.json {
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        } else {
            view::write_summary(&mut out, &summary)?;
        }
    } else {
        let mut selected: Vec<_> = table.sockets.iter().filter(|s| filter.matches(s)).collect();
        if let Some(by) = args.sort {
            view::sort(&mut selected, by);
        }
        if let Some(n) = args.limit {
            selected.truncate(n);
        }
        if args.json {
            serde_json::to_writer(&mut out, &selected)?;
            writeln!(out)?;
        } else {
            view::write_table(&mut out, &selected)?;
        }
    }
    if !table.owners_complete && !args.no_process {
        eprintln!("netsight: some processes could not be read; owners are partial (run as root)");
    }
    out.flush()?;
    Ok(())
}
