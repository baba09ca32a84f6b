//! The command line, kept in one module: clap types only, no logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netsight",
    version,
    about = "See, explain and fix Linux network performance",
    long_about = "netsight reads what the kernel counts (procfs, sysctl, sysfs, rtnetlink, ethtool), \
                  reports it sar-style, and saves it to bundles for offline diagnosis.",
    after_help = "Examples:\n  netsight stat ALL 1 5        every keyword, five one-second intervals\n  netsight snapshot --json     one snapshot as JSON\n  netsight snapshot -o host.nsb --interval 5\n                               two snapshots five seconds apart, saved as a bundle"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a snapshot of every kernel network source; print it or save it as a bundle.
    #[command(
        after_help = "Examples:\n  netsight snapshot                     summary of what was read\n  netsight snapshot --json | jq '.mib.TcpExt.ListenOverflows'\n  netsight snapshot -o host.nsb         save raw inputs for `--from`\n  netsight snapshot -o host.nsb --interval 5 --count 2\n  netsight snapshot --from host.nsb --json"
    )]
    Snapshot(SnapshotArgs),

    /// sar-style interval reports: DEV EDEV IP EIP TCP ETCP UDP SOCK SOFT QDISC CONNTRACK ALL.
    #[command(
        after_help = "Keywords follow `sar -n` (same columns, same meanings) plus QDISC and CONNTRACK.\n\nExamples:\n  netsight stat                   DEV, one 1-second interval\n  netsight stat DEV EDEV 1 10     ten 1-second intervals\n  netsight stat TCP ETCP 5        every 5 seconds until Ctrl-C\n  netsight stat ALL 1 3 --json    one JSON object per interval\n  netsight stat ALL --from host.nsb"
    )]
    Stat(StatArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a bundle (gzip tar of every raw input) to FILE instead of printing.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "from")]
    pub output: Option<PathBuf>,
    /// Seconds between snapshots when taking more than one (with -o).
    #[arg(long, value_name = "SECONDS", requires = "output")]
    pub interval: Option<f64>,
    /// Number of snapshots to store (default 2 with --interval, else 1).
    #[arg(long, value_name = "N", requires = "output")]
    pub count: Option<usize>,
    /// Read snapshots from a bundle instead of the running kernel.
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatArgs {
    /// Keywords, then optional INTERVAL (seconds) and COUNT, as with sar.
    #[arg(value_name = "KEYWORDS|INTERVAL|COUNT")]
    pub args: Vec<String>,
    /// One JSON object per interval, one per line.
    #[arg(long)]
    pub json: bool,
    /// SOFT: one row per CPU as well as "all" (sar -P ALL).
    #[arg(long)]
    pub per_cpu: bool,
    /// Report the intervals between consecutive snapshots of a bundle.
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
}
