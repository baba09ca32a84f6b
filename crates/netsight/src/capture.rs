//! `netsight capture`: AF_PACKET with a BPF filter into a pcap or pcapng file.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use netsight_packet::capture::{capture, CaptureOptions};
use netsight_packet::pcap_write::Format;

use crate::cli::CaptureArgs;

pub fn run(args: &CaptureArgs) -> Result<()> {
    if args.json && args.write.as_os_str() == "-" {
        return Err(crate::exit::Usage(
            "-w - puts the capture on stdout; --json would mix into it (the counts go to stderr)"
                .into(),
        )
        .into());
    }
    let opts = CaptureOptions {
        interface: args.interface.clone(),
        filter: args.filter.join(" "),
        snaplen: args.snaplen,
        count: args.count,
        duration: args.duration,
        format: if args.pcapng {
            Format::PcapNg
        } else {
            Format::Pcap
        },
        user: args.user.clone(),
        packet_buffered: args.packet_buffered,
        ..CaptureOptions::default()
    };
    // Ctrl-C, SIGTERM and SIGHUP end the file cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    // Said once the socket is attached (scripts and tests wait for this line).
    let mut announce = || {
        eprintln!(
            "netsight: capturing on {}{}, writing {} (Ctrl-C to stop)",
            opts.interface,
            if opts.filter.is_empty() {
                String::new()
            } else {
                format!(" ({})", opts.filter)
            },
            args.write.display()
        );
    };
    let report = capture(&opts, &args.write, &stop, &mut announce)?;
    if args.json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        eprintln!("{} packets captured", report.packets_captured);
        eprintln!(
            "{} packets received by filter",
            report.packets_received_by_filter
        );
        eprintln!(
            "{} packets dropped by kernel",
            report.packets_dropped_by_kernel
        );
    }
    Ok(())
}
