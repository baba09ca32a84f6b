//! `doctor --netns all|NAME|PID`: the host once, then each network namespace.
//! Every namespace gets its own doctor process, started inside it (its /proc/net,
//! sysfs and netlink), all over the same interval; the drops are counted once, in
//! the host, and handed to each namespace by inode. Host-wide signals (softnet) are
//! reported only under the host.

use std::io::{self, Write};
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{bail, Context as _, Result};
use netsight_kernel::netns::NetnsInfo;
use netsight_kernel::Snapshot;
use netsight_report::{HostReport, KernelDrops, NamespaceReport, Report, Skipped};

use super::{exit_status, text};
use crate::cli::DoctorArgs;
use crate::{exit, trace};

/// Rules about host-wide state: shown once, under the host.
const HOST_WIDE_RULES: &[&str] = &["softnet."];

/// The namespaces `which` selects (every one but this process's for `all`).
fn select(which: &str, all: Vec<NetnsInfo>, own: Option<u32>) -> Result<Vec<NetnsInfo>> {
    if which == "all" {
        return Ok(all.into_iter().filter(|n| Some(n.inode) != own).collect());
    }
    let by_pid = which
        .parse::<u32>()
        .ok()
        .and_then(netsight_kernel::netns::inode_of_pid);
    let found: Vec<NetnsInfo> = all
        .into_iter()
        .filter(|n| n.names.iter().any(|name| name == which) || by_pid == Some(n.inode))
        .collect();
    if found.is_empty() {
        return Err(exit::Usage(format!(
            "--netns {which}: no such network namespace (`ip netns list` names them; a PID selects the one it runs in; `all` selects every one)"
        ))
        .into());
    }
    Ok(found)
}

struct Started {
    info: NetnsInfo,
    child: std::io::Result<Child>,
    /// The child's stderr after its readiness line, drained on a thread.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Started {
    /// Waits for the namespace's doctor to take its first snapshot.
    fn wait_ready(&mut self) {
        use std::io::BufRead as _;
        let Some(pipe) = self.child.as_mut().ok().and_then(|c| c.stderr.take()) else {
            return;
        };
        let mut reader = io::BufReader::new(pipe);
        let mut seen = String::new();
        while !seen.contains("first snapshot taken") {
            match reader.read_line(&mut seen) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.stderr = Some(std::thread::spawn(move || {
            let _ = io::Read::read_to_string(&mut reader, &mut seen);
            seen
        }));
    }
}

/// Starts `netsight doctor --json --no-trace` inside a namespace.
fn start(info: NetnsInfo, args: &DoctorArgs) -> Started {
    let child = (|| {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["doctor", "--json", "--no-trace", "--interval"])
            .arg(format!("{}ms", args.interval.as_millis()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if args.no_sockets {
            cmd.arg("--no-sockets");
        }
        netsight_kernel::netns::enter_on_exec(&mut cmd, &info.handle)?;
        cmd.spawn()
    })();
    Started {
        info,
        child,
        stderr: None,
    }
}

/// Waits for a namespace's doctor and turns its output into its report.
fn finish(started: Started, drops: Option<&KernelDrops>) -> Result<NamespaceReport, Skipped> {
    let Started {
        info,
        child,
        stderr,
    } = started;
    let source = format!(
        "network namespace net:[{}]{}",
        info.inode,
        info.names
            .first()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    let skipped = |reason: String| Skipped {
        source: source.clone(),
        reason,
    };
    let child = child.map_err(|e| {
        skipped(if e.kind() == io::ErrorKind::PermissionDenied {
            format!("entering it needs CAP_SYS_ADMIN (run as root): {e}")
        } else {
            e.to_string()
        })
    })?;
    let out = child
        .wait_with_output()
        .map_err(|e| skipped(e.to_string()))?;
    let stderr = match stderr {
        Some(rest) => rest.join().unwrap_or_default(),
        None => String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let mut report: Report = serde_json::from_slice(&out.stdout).map_err(|e| {
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        skipped(format!("its doctor gave no report ({e}): {last}"))
    })?;
    report
        .findings
        .retain(|f| !HOST_WIDE_RULES.iter().any(|p| f.rule_id.starts_with(p)));
    // Host-wide settings are the host's: said once, under it.
    report
        .skipped
        .retain(|s| !s.reason.contains("is host-wide"));
    if let Some(drops) = drops {
        let mine = KernelDrops {
            seconds: drops.seconds,
            lost: drops.lost,
            cells: drops
                .cells
                .iter()
                .filter(|c| c.netns == info.inode)
                .cloned()
                .collect(),
        };
        netsight_doctor::drop_reasons::attach(&mut report, mine, Some(info.inode));
    }
    Ok(NamespaceReport {
        id: info.inode,
        name: info.names.first().cloned(),
        processes: info.processes,
        labels: info.labels,
        report,
    })
}

pub fn run(args: &DoctorArgs, which: &str) -> Result<ExitCode> {
    let own = netsight_kernel::netns::self_inode();
    let targets = select(which, netsight_kernel::netns::list(), own)?;
    // Every namespace's doctor starts first; their intervals and ours overlap.
    // Started and waited for on a few threads: each start sets up a mount namespace
    // and a sysfs, and each doctor takes its first snapshot.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let mut chunks: Vec<Vec<NetnsInfo>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, n) in targets.into_iter().enumerate() {
        chunks[i % threads].push(n);
    }
    let started: Vec<Started> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    let mut mine: Vec<Started> =
                        chunk.into_iter().map(|n| start(n, args)).collect();
                    for s in &mut mine {
                        s.wait_ready();
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let prev = Snapshot::take();
    eprintln!(
        "netsight doctor: first snapshot taken; {} namespace(s) diagnosed alongside; the second follows in {:.1} s",
        started.len(),
        args.interval.as_secs_f64()
    );
    let traced = trace::for_doctor(args.interval, !args.no_trace, false);
    let cur = if args.no_sockets {
        Snapshot::take()
    } else {
        Snapshot::take_with_sockets(true)
    };
    let mut host = netsight_doctor::diagnose(&prev, &cur);
    let drops = match traced.drops {
        Some(Ok(drops)) => Some(drops),
        Some(Err(why)) => {
            host.skipped.push(Skipped {
                source: "drop reasons (kfree_skb, counted in the kernel)".into(),
                reason: format!("{why}; --no-trace skips this"),
            });
            None
        }
        None => None,
    };
    let mut namespaces = Vec::new();
    let mut skipped = Vec::new();
    if !netsight_kernel::netns::can_enter_all() {
        skipped.push(Skipped {
            source: "other users' network namespaces".into(),
            reason: "seeing and entering them needs root (CAP_SYS_ADMIN, CAP_SYS_PTRACE)".into(),
        });
    }
    for s in started {
        match finish(s, drops.as_ref()) {
            Ok(n) => namespaces.push(n),
            Err(why) => skipped.push(why),
        }
    }
    if let Some(drops) = drops {
        let mine = KernelDrops {
            cells: drops
                .cells
                .iter()
                .filter(|c| Some(c.netns) == own)
                .cloned()
                .collect(),
            ..drops
        };
        netsight_doctor::drop_reasons::attach(&mut host, mine, own);
    }
    let mut out = io::stdout().lock();
    // One namespace asked for by name or PID: its report, as plain doctor prints it.
    if which != "all" {
        let Some(n) = namespaces.pop() else {
            let why = skipped.pop().map(|s| s.reason).unwrap_or_default();
            bail!("--netns {which}: {why}");
        };
        if args.json {
            serde_json::to_writer_pretty(&mut out, &n)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", render_namespace(&n))?;
        }
        out.flush()?;
        return Ok(exit_status(n.report.worst()));
    }
    let all = HostReport {
        host,
        namespaces,
        skipped,
    };
    if args.json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
    } else {
        let style = text::Style {
            color: crate::term::color_stdout(),
        };
        let header = format!(
            "netsight doctor: host {}, kernel {}, {:.1} s interval, {} rules, {} other network namespace(s)",
            cur.meta.hostname.as_deref().unwrap_or("?"),
            cur.meta.kernel_release.as_deref().unwrap_or("?"),
            all.host.workload.interval_s,
            all.host.rules_run,
            all.namespaces.len()
        );
        write!(out, "{}", text::render(&all.host, &header, style))?;
        for n in &all.namespaces {
            write!(out, "\n{}", render_namespace(n))?;
        }
        for s in &all.skipped {
            writeln!(out, "\nNot diagnosed: {}: {}", s.source, s.reason)?;
        }
    }
    out.flush().context("writing the report")?;
    Ok(exit_status(all.worst()))
}

fn render_namespace(n: &NamespaceReport) -> String {
    let style = text::Style {
        color: crate::term::color_stdout(),
    };
    let mut what = Vec::new();
    if let Some(name) = &n.name {
        what.push(format!("ip netns {name}"));
    }
    what.extend(n.labels.iter().cloned());
    if !n.processes.is_empty() {
        what.push(n.processes.join(" "));
    }
    let header = format!(
        "== network namespace net:[{}]{}",
        n.id,
        if what.is_empty() {
            String::new()
        } else {
            format!(": {}", what.join(", "))
        }
    );
    text::render(&n.report, &header, style)
}
