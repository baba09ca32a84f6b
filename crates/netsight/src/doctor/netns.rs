//! `doctor --netns all|NAME|PID`: the host once, then each network namespace.
//! Every namespace is diagnosed by a thread that entered it (setns: its
//! /proc/thread-self/net, sysctls and netlink sockets are the namespace's), all
//! over the same interval; the drops are counted once, in the host, and handed to
//! each namespace by inode. Host-wide signals (softnet) are reported only under the
//! host. sysfs, mounted for the host's namespace, is not read for the others.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use netsight_kernel::link::Link;
use netsight_kernel::netns::NetnsInfo;
use netsight_kernel::{LiveSource, Snapshot};
use netsight_report::{HostReport, KernelDrops, NamespaceReport, Report, Skipped};

use super::{counted_drops, exit_status, header, text};
use crate::cli::DoctorArgs;
use crate::{exit, trace};

/// Rules about host-wide state: shown once, under the host.
pub(crate) const HOST_WIDE_RULES: &[&str] = &["softnet."];

/// The namespaces `which` selects (every one but this process's for `all`).
pub(crate) fn select(which: &str, all: Vec<NetnsInfo>, own: Option<u32>) -> Result<Vec<NetnsInfo>> {
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

/// One namespace's diagnosis, on a thread that entered it: two snapshots an
/// interval apart, as plain doctor takes them. `ready` is told once the first is
/// taken (or the namespace could not be entered).
fn diagnose_in(
    info: &NetnsInfo,
    args: &DoctorArgs,
    namespaces: &[(u32, PathBuf)],
    ready: std::sync::mpsc::Sender<()>,
) -> std::result::Result<(Report, Vec<Link>), String> {
    let entered = netsight_kernel::netns::enter_for_this_thread(&info.handle).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            format!("entering it needs CAP_SYS_ADMIN (run as root): {e}")
        } else {
            format!("entering it: {e}")
        }
    });
    if let Err(e) = entered {
        let _ = ready.send(());
        return Err(e);
    }
    let source = LiveSource {
        owner_pids: Some(info.pids.clone()),
        ..LiveSource::for_this_thread()
    };
    let first = source.collect();
    let prev = Snapshot::from_raw(&first);
    let _ = ready.send(());
    std::thread::sleep(args.interval);
    let source = if args.no_sockets {
        source
    } else {
        source.with_sockets()
    };
    let cur = Snapshot::from_raw(&source.collect_after(&first));
    if let Some(why) = netsight_doctor::cannot_diagnose(&prev, &cur) {
        return Err(why);
    }
    let report = netsight_doctor::diagnose(&prev, &cur);
    let mut links = cur.links;
    resolve_peers(&mut links, namespaces);
    Ok((report, links))
}

/// Which namespace each veth's peer is in, asked from the calling thread's
/// namespace (ids are per namespace); only when some link has a peer elsewhere.
fn resolve_peers(links: &mut [Link], namespaces: &[(u32, PathBuf)]) {
    let wanted = Link::peer_netnsids(links);
    if !wanted.is_empty() {
        let inodes = netsight_kernel::netns::resolve_nsids(&wanted, namespaces);
        Link::resolve_peer_namespaces(links, &inodes);
    }
}

/// A namespace's report as the host shows it: host-wide signals removed (said once,
/// under the host) and the drops counted in its namespace attached.
fn namespace_report(
    info: NetnsInfo,
    mut report: Report,
    drops: Option<&KernelDrops>,
) -> NamespaceReport {
    report
        .findings
        .retain(|f| !HOST_WIDE_RULES.iter().any(|p| f.rule_id.starts_with(p)));
    report
        .skipped
        .retain(|s| !is_host_wide_source(&s.source) && !s.source.starts_with("sys/class/net"));
    if let Some(drops) = drops {
        let mine = drops_in(drops, Some(info.inode));
        netsight_doctor::drop_reasons::attach(&mut report, mine, Some(info.inode));
    }
    NamespaceReport {
        id: info.inode,
        name: info.names.first().cloned(),
        processes: info.processes,
        labels: info.labels,
        report,
    }
}

/// A host-wide sysctl's raw source key ("proc/sys/net/core/busy_poll"): said once, under the host.
fn is_host_wide_source(source: &str) -> bool {
    use netsight_kernel::raw::key;
    static KEYS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        netsight_kernel::sysctl_tree::HOST_WIDE_SYSCTLS
            .iter()
            .map(|name| key::proc(&netsight_kernel::sysctl::proc_relative_path(name)))
            .collect()
    });
    KEYS.iter().any(|k| k == source)
}

/// The drops counted in one namespace.
fn drops_in(drops: &KernelDrops, netns: Option<u32>) -> KernelDrops {
    KernelDrops {
        seconds: drops.seconds,
        lost: drops.lost,
        cells: drops
            .cells
            .iter()
            .filter(|c| Some(c.netns) == netns)
            .cloned()
            .collect(),
    }
}

/// How findings name a namespace: its name, else net:[inode].
pub(crate) fn namespace_label(info: &NetnsInfo) -> String {
    info.names
        .first()
        .cloned()
        .unwrap_or_else(|| format!("net:[{}]", info.inode))
}

fn skipped_namespace(info: &NetnsInfo, reason: String) -> Skipped {
    Skipped {
        source: format!(
            "network namespace net:[{}]{}",
            info.inode,
            info.names
                .first()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        reason,
    }
}

pub fn run(args: &DoctorArgs, which: &str) -> Result<ExitCode> {
    let own = netsight_kernel::netns::self_inode();
    let all = netsight_kernel::netns::list();
    // Where veth peers may be: every namespace, the host's (this process's) first.
    let mut namespaces: Vec<(u32, PathBuf)> = own
        .map(|inode| (inode, PathBuf::from("/proc/self/ns/net")))
        .into_iter()
        .collect();
    namespaces.extend(all.iter().map(|n| (n.inode, n.handle.clone())));
    let targets = select(which, all, own)?;
    let namespaces = &namespaces;
    // One thread per namespace, each inside its namespace; the host's interval
    // starts once every namespace has taken its first snapshot.
    std::thread::scope(|scope| -> Result<ExitCode> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let workers: Vec<_> = targets
            .into_iter()
            .map(|info| {
                let ready = ready_tx.clone();
                scope.spawn(move || {
                    let report = diagnose_in(&info, args, namespaces, ready);
                    (info, report)
                })
            })
            .collect();
        drop(ready_tx);
        // Each worker says once that its first snapshot is taken (or that it could
        // not enter its namespace); a worker that died closes its sender early.
        let count = workers.len();
        let all_ready = move || {
            for _ in 0..count {
                if ready_rx.recv().is_err() {
                    break;
                }
            }
        };
        host_and_namespaces(args, which, own, namespaces, workers, all_ready)
    })
}

type Worker<'scope> = std::thread::ScopedJoinHandle<
    'scope,
    (NetnsInfo, std::result::Result<(Report, Vec<Link>), String>),
>;

fn host_and_namespaces(
    args: &DoctorArgs,
    which: &str,
    own: Option<u32>,
    peer_candidates: &[(u32, PathBuf)],
    workers: Vec<Worker<'_>>,
    all_ready: impl FnOnce(),
) -> Result<ExitCode> {
    let started = workers.len();
    // The drop counter attaches while the namespaces take their first snapshots;
    // the host's interval starts once all of them have.
    let mut prev = None;
    let traced = trace::for_doctor(args.interval, !args.no_trace, false, || {
        all_ready();
        prev = Some(Snapshot::take());
        eprintln!(
            "netsight doctor: first snapshot taken; {started} namespace(s) diagnosed alongside; the second follows in {:.1} s",
            args.interval.as_secs_f64()
        );
    });
    let prev = prev.unwrap_or_else(Snapshot::take);
    let cur = if args.no_sockets {
        Snapshot::take()
    } else {
        Snapshot::take_with_sockets(true)
    };
    let mut host = netsight_doctor::diagnose(&prev, &cur);
    let drops = counted_drops(traced.drops, &mut host.skipped);
    let mut namespaces = Vec::new();
    let mut skipped = Vec::new();
    if !netsight_kernel::netns::can_enter_all() {
        skipped.push(Skipped {
            source: "other users' network namespaces".into(),
            reason: "seeing and entering them needs root (CAP_SYS_ADMIN, CAP_SYS_PTRACE)".into(),
        });
    }
    let mut host_links = cur.links.clone();
    resolve_peers(&mut host_links, peer_candidates);
    let mut links = vec![("host".to_string(), own, host_links)];
    for worker in workers {
        match worker.join() {
            Ok((info, Ok((report, seen)))) => {
                links.push((namespace_label(&info), Some(info.inode), seen));
                namespaces.push(namespace_report(info, report, drops.as_ref()))
            }
            Ok((info, Err(why))) => skipped.push(skipped_namespace(&info, why)),
            Err(_) => skipped.push(Skipped {
                source: "a network namespace".into(),
                reason: "its diagnosis thread panicked".into(),
            }),
        }
    }
    if let Some(drops) = &drops {
        netsight_doctor::drop_reasons::attach(&mut host, drops_in(drops, own), own);
    }
    // Both ends of a link are visible now: what joins two namespaces is said once, under the host.
    let views: Vec<(String, Option<u32>, &[Link])> = links
        .iter()
        .map(|(label, inode, seen)| (label.clone(), *inode, seen.as_slice()))
        .collect();
    host.findings
        .extend(netsight_doctor::across_namespaces(&views));
    netsight_doctor::rank(&mut host.findings);
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
            "{}, {} other network namespace(s)",
            header(&cur, &all.host),
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
