//! `netsight xdp`: wiring for netsight-xdp (attach, status, rule add|del,
//! detach, suggest) and the TTL watchdog.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use netsight_xdp::filter::{self, AttachRequest, Attachment, Journal, Status, Watch};
use netsight_xdp::kernel::Mode;
use netsight_xdp::rules::{Prefix, Rule, SynLimit};
use netsight_xdp::suggest::{self, Observations, Suggestions};
use netsight_xdp::XdpError;

use crate::cli::{XdpCommand, XdpRuleCommand};
use crate::exit::Usage;

fn usage(e: XdpError) -> anyhow::Error {
    match e {
        XdpError::Usage(text) => Usage(text).into(),
        other => other.into(),
    }
}

fn json_out(value: &impl serde::Serialize) -> Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Every subcommand but suggest changes or reads the kernel's BPF state.
fn require_capabilities() -> Result<()> {
    let missing = netsight_kernel::privilege::missing(netsight_kernel::privilege::XDP_CAPABILITIES);
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "netsight xdp needs CAP_NET_ADMIN and CAP_BPF (run as root); this process lacks {}",
        missing.join(" and ")
    )
}

pub fn run(cmd: &XdpCommand) -> Result<()> {
    if !matches!(cmd, XdpCommand::Suggest { .. }) {
        require_capabilities()?;
    }
    match cmd {
        XdpCommand::Attach {
            interface,
            rules,
            syn_limit,
            syn_burst,
            mode,
            dry_run,
            ttl,
            protect,
            force,
            json,
        } => {
            let rules = rules
                .iter()
                .map(|r| r.parse::<Rule>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(Usage)?;
            let mut syn_limit = syn_limit
                .as_deref()
                .map(str::parse::<SynLimit>)
                .transpose()
                .map_err(Usage)?;
            if let (Some(l), Some(b)) = (syn_limit.as_mut(), syn_burst) {
                l.burst = *b;
            }
            if rules.is_empty() && syn_limit.is_none() {
                return Err(Usage("nothing to do: give at least one --rule or --syn-limit (see `netsight xdp attach --help`)".into()).into());
            }
            if ttl.is_some_and(|t| t.is_zero() || t > Duration::from_secs(366 * 86_400)) {
                return Err(Usage("--ttl must be more than 0 and at most a year".into()).into());
            }
            let mut protected = protect
                .iter()
                .map(|p| p.parse::<Prefix>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Usage(format!("--protect: {e}")))?;
            let ssh = netsight_kernel::session::ssh_peer();
            if *force {
                protected.clear();
            } else if let Some(peer) = ssh {
                protected.push(Prefix::host(peer));
            }
            warn_protected_overlaps(&rules, &protected);
            let mode = match mode.as_str() {
                "native" => Some(Mode::Native),
                "generic" => Some(Mode::Generic),
                _ => None,
            };
            let journal = Journal::open(None)?;
            let token = format!("{}-{}", std::process::id(), filter::now_unix_s());
            let req = AttachRequest {
                interface: interface.clone(),
                rules,
                syn_limit,
                mode,
                dry_run: *dry_run,
                ttl_s: ttl.map(|t| t.as_secs().max(1)),
                protected,
            };
            let a = filter::attach(&journal, &req, token).map_err(usage)?;
            if a.expires_at_unix_s.is_some() {
                if let Err(e) = start_watchdog(&a) {
                    eprintln!("netsight: warning: {e:#}; the filter stays until `netsight xdp detach {interface}` (any later netsight run detaches it once the TTL has passed)");
                }
            }
            if *json {
                return json_out(&a);
            }
            println!(
                "attached netsight's XDP filter to {} ({} mode, program id {}){}",
                a.interface,
                a.mode.name(),
                a.prog_id,
                if a.dry_run {
                    ", dry run: nothing is dropped"
                } else {
                    ""
                }
            );
            print_rules(&a, None);
            if let Some(e) = a.expires_at_unix_s {
                println!(
                    "detaches itself in {} s",
                    e.saturating_sub(filter::now_unix_s())
                );
            }
            if !a.protected.is_empty() {
                let list: Vec<String> = a.protected.iter().map(Prefix::to_string).collect();
                println!("never dropped: {}", list.join(", "));
            } else if ssh.is_some() && *force {
                println!("warning: --force: this SSH session's own traffic may be dropped");
            }
            Ok(())
        }
        XdpCommand::Status { interface, json } => {
            let journal = Journal::open(None)?;
            let all = filter::status(&journal, interface.as_deref()).map_err(usage)?;
            if *json {
                return json_out(&all);
            }
            if all.is_empty() {
                println!("netsight has no XDP filter attached in this network namespace");
            }
            for s in &all {
                print_status(s);
            }
            Ok(())
        }
        XdpCommand::Rule(XdpRuleCommand::Add {
            interface,
            rule,
            position,
            json,
        }) => {
            let rule: Rule = rule.parse().map_err(Usage)?;
            let journal = Journal::open(None)?;
            let a = filter::add_rule(
                &journal,
                interface,
                rule.clone(),
                position.map(|p| p as usize),
            )
            .map_err(usage)?;
            warn_protected_overlaps(std::slice::from_ref(&rule), &a.protected);
            if *json {
                return json_out(&a);
            }
            println!("added '{rule}' to {interface}");
            print_rules(&a, None);
            Ok(())
        }
        XdpCommand::Rule(XdpRuleCommand::Del {
            interface,
            rule,
            json,
        }) => {
            let journal = Journal::open(None)?;
            let (a, removed) = filter::delete_rule(&journal, interface, rule).map_err(usage)?;
            if *json {
                return json_out(&a);
            }
            println!("deleted '{removed}' from {interface}");
            print_rules(&a, None);
            Ok(())
        }
        XdpCommand::Detach { interface, json } => {
            let journal = Journal::open(None)?;
            let a = filter::detach(&journal, interface).map_err(usage)?;
            if *json {
                return json_out(
                    &serde_json::json!({"detached": a.interface, "prog_id": a.prog_id}),
                );
            }
            println!(
                "detached netsight's XDP filter from {interface} (program id {})",
                a.prog_id
            );
            Ok(())
        }
        XdpCommand::Suggest {
            from,
            live,
            interface,
            json,
        } => suggest_cmd(from.as_deref(), *live, interface.as_deref(), *json),
        XdpCommand::Watchdog { interface, token } => {
            let journal = Journal::open(None)?;
            loop {
                match filter::watch(&journal, interface, token) {
                    // Wakes every second, so a detach or a re-attach ends it promptly.
                    Watch::Waiting => std::thread::sleep(Duration::from_secs(1)),
                    Watch::Detached | Watch::Gone => return Ok(()),
                }
            }
        }
    }
}

/// Says which drop rules cover a protected source (the kernel spares those sources).
fn warn_protected_overlaps(rules: &[Rule], protected: &[Prefix]) {
    for (rule, p) in filter::overlaps(rules, protected) {
        eprintln!("netsight: note: '{rule}' covers protected {p}: those sources are spared (attach with --force to drop them too)");
    }
}

fn print_rules(a: &Attachment, status: Option<&Status>) {
    for (i, r) in a.rules.iter().enumerate() {
        match status.and_then(|s| s.rule_counters.get(i)) {
            Some(c) => println!(
                "  {:>2}  {:<52} {:>12} pkts {:>14} bytes",
                i + 1,
                r.rule.to_string(),
                c.packets,
                c.bytes
            ),
            None => println!("  {:>2}  {}", i + 1, r.rule),
        }
    }
    if let Some(l) = &a.syn_limit {
        println!("  SYN limit {l}, burst {}", l.burst);
    }
}

fn print_status(s: &Status) {
    let a = &s.attachment;
    let age = filter::now_unix_s().saturating_sub(a.attached_at_unix_s);
    println!(
        "{}: netsight XDP filter, {} mode, program id {}, attached {age} s ago{}{}",
        a.interface,
        a.mode.name(),
        a.prog_id,
        s.ttl_left_s
            .map_or(String::new(), |t| format!(", detaches in {t} s")),
        if a.dry_run {
            ", DRY RUN (nothing dropped)"
        } else {
            ""
        }
    );
    print_rules(a, Some(s));
    let t = &s.totals;
    println!(
        "  seen {} · passed {} · dropped {} · spared (protected) {} · dry-run would drop {}",
        t.seen_packets, t.passed_packets, t.dropped_packets, t.spared_packets, t.dry_run_packets
    );
    if a.syn_limit.is_some() {
        println!(
            "  SYNs within the limit {} · over it {}",
            t.syn_passed_packets, t.syn_limited_packets
        );
    }
}

/// The watchdog runs in its own process group, so neither Ctrl-C nor a dropped
/// SSH session stops it. If it dies, the next netsight run detaches at the TTL.
fn start_watchdog(a: &Attachment) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let exe =
        std::env::current_exe().context("locating the netsight binary for the TTL watchdog")?;
    std::process::Command::new(exe)
        .args([
            "xdp",
            "watchdog",
            "--interface",
            &a.interface,
            "--token",
            &a.token,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the TTL watchdog")?;
    Ok(())
}

/// Every netsight run (as root) detaches filters whose TTL passed while no watchdog was left.
pub fn detach_expired() {
    if !rustix::process::geteuid().is_root()
        || !Path::new(netsight_kernel::state_dir::DEFAULT_STATE_DIR).is_dir()
    {
        return;
    }
    let Ok(journal) = Journal::open(None) else {
        return;
    };
    for a in filter::detach_expired(&journal) {
        eprintln!(
            "netsight: the XDP filter on {} passed its TTL: detached now",
            a.interface
        );
    }
}

/// What doctor's report says to look for.
fn doctor_hints(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let report: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Usage(format!(
            "{}: not a doctor --json report ({e})",
            path.display()
        ))
    })?;
    let findings = report
        .get("findings")
        .and_then(|f| f.as_array())
        .ok_or_else(|| {
            Usage(format!(
                "{}: not a doctor --json report (no findings)",
                path.display()
            ))
        })?;
    Ok(findings
        .iter()
        .filter_map(|f| {
            f.get("rule_id")
                .and_then(|r| r.as_str())
                .map(str::to_string)
        })
        .collect())
}

/// Doctor's rules that a SYN flood sets off, and those a UDP flood does.
const SYN_RULES: &[&str] = &[
    "tcp.syn_queue_full",
    "tcp.syncookies_sent",
    "sockets.syn_backlog",
];
const UDP_RULES: &[&str] = &["udp.receive_buffer_errors", "udp.no_port"];

fn suggest_cmd(
    from: Option<&Path>,
    live: Option<Duration>,
    interface: Option<&str>,
    json: bool,
) -> Result<()> {
    if from.is_none() && live.is_none() {
        return Err(Usage(
            "say what to suggest from: --from DOCTOR.json, --live DURATION, or both".into(),
        )
        .into());
    }
    let hints = from.map(doctor_hints).transpose()?.unwrap_or_default();
    let syn_seen = hints.iter().any(|h| SYN_RULES.contains(&h.as_str()));
    let udp_seen = hints.iter().any(|h| UDP_RULES.contains(&h.as_str()));
    let mut out = match live {
        Some(d) => suggest::suggest(&watch_live(interface.unwrap_or("any"), d)?),
        None => Suggestions::default(),
    };
    if from.is_some() {
        if syn_seen && live.is_none() {
            out.notes.push("doctor saw a SYN flood: run with --live 5s to find its sources; meanwhile a per-source limit contains it: --syn-limit '1000/s per /32'".into());
            out.syn_limit.get_or_insert_with(|| "1000/s per /32".into());
        }
        if udp_seen && live.is_none() {
            out.notes.push(
                "doctor saw UDP receive errors: run with --live 5s to find the sources".into(),
            );
        }
        if !syn_seen && !udp_seen {
            out.notes
                .push("doctor's report has no SYN-flood or UDP-flood finding".into());
        }
    }
    let iface = interface.unwrap_or("IFACE");
    if json {
        return json_out(&serde_json::json!({
            "rules": out.rules, "syn_limit": out.syn_limit, "notes": out.notes,
            "seconds": out.seconds, "half_open_syn_per_s": out.half_open_syn_per_s,
            "doctor_rules": hints, "command": out.command(iface),
        }));
    }
    if out.rules.is_empty() && out.syn_limit.is_none() {
        println!(
            "nothing to suggest{}",
            live.map_or(String::new(), |d| format!(
                " from {:.1} s of traffic",
                d.as_secs_f64()
            ))
        );
    }
    for s in &out.rules {
        println!(
            "{:<52} {:>9} pkts {:>9.0}/s  {}",
            s.rule, s.packets, s.per_s, s.why
        );
    }
    if let Some(l) = &out.syn_limit {
        println!("--syn-limit '{l}'");
    }
    for n in &out.notes {
        println!("note: {n}");
    }
    if let Some(cmd) = out.command(iface) {
        println!("\nto apply (try --dry-run first):\n  sudo {cmd}");
    }
    Ok(())
}

/// Counts TCP SYNs and other segments, and UDP packets, per source for `d`,
/// from a capture run as a child (it drops its own privileges).
fn watch_live(interface: &str, d: Duration) -> Result<Observations> {
    let dir = private_temp_dir()?;
    let file = dir.join("suggest.pcap");
    let exe = std::env::current_exe().context("locating the netsight binary")?;
    eprintln!(
        "netsight: watching {interface} for {:.1} s…",
        d.as_secs_f64()
    );
    let status = std::process::Command::new(exe)
        .args(["capture", "-i", interface, "--snaplen", "128", "--duration"])
        .arg(format!("{}ms", d.as_millis().max(1)))
        .arg("-w")
        .arg(&file)
        .args(["tcp", "or", "udp"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .context("running the capture")?;
    if !status.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&status.stderr);
        anyhow::bail!(
            "watching {interface}: {}",
            text.trim().trim_start_matches("netsight: ")
        );
    }
    let mut obs = Observations::over(d.as_secs_f64());
    let read = std::fs::File::open(&file).map(|f| {
        netsight_packet::pcap_read::read_frames("capture", io::BufReader::new(f), |frame| {
            let Ok(p) = netsight_packet::dissect::decode(frame.linktype, frame.data) else {
                return;
            };
            record(&mut obs, p.src, &p.transport);
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    match read {
        Ok(Ok(_)) | Ok(Err(netsight_packet::pcap_read::PcapReadError::Empty(_))) => Ok(obs),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

fn record(obs: &mut Observations, src: IpAddr, t: &netsight_packet::dissect::Transport) {
    use netsight_packet::dissect::tcp_flags::{ACK, SYN};
    use netsight_packet::dissect::Transport;
    match t {
        Transport::Tcp(s) => obs.tcp(src, s.dport, s.flags & (SYN | ACK) == SYN),
        Transport::Udp { dport, .. } => obs.udp(src, *dport),
        _ => {}
    }
}

/// A fresh directory only root can enter, for the capture file.
fn private_temp_dir() -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let dir = base.join(format!("netsight-xdp-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!("could not create a private directory in {}", base.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_rules_suggest_looks_for_are_doctors() {
        let ids: Vec<&str> = netsight_doctor::rules::all().iter().map(|r| r.id).collect();
        for id in SYN_RULES.iter().chain(UDP_RULES) {
            assert!(ids.contains(id), "doctor has no rule {id}");
        }
    }
}
