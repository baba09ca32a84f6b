//! `netsight tune`: wiring from the command line to netsight-tune, and the text views.

use std::io::{self, IsTerminal, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use netsight_kernel::Snapshot;
use netsight_tune::bdp::{bdp, human_bytes, human_speed};
use netsight_tune::export::{self, ExportFormat};
use netsight_tune::journal::{self, ConfirmOutcome, JournalStore, SysctlChange, SysctlTree};
use netsight_tune::{Audit, HostFacts, Status, TuneOptions};

use crate::cli::{ChangeBasis, TuneBasis, TuneCommand};
use crate::snapshot::read_bundle;

pub fn run(cmd: &TuneCommand) -> Result<()> {
    let mut out = io::stdout().lock();
    match cmd {
        TuneCommand::Audit {
            basis,
            from,
            all,
            json,
        } => {
            let (before, after) = match from {
                Some(path) => bundle_interval(path)?,
                None => live_interval(basis),
            };
            let audit = audit_of(basis, &before, &after);
            if *json {
                serde_json::to_writer_pretty(&mut out, &audit)?;
                writeln!(out)?;
            } else {
                write_audit(&mut out, &audit, *all)?;
            }
        }
        TuneCommand::Plan { basis, json } => {
            let (audit, overrides) = audit_for(basis)?;
            let plan = audit.plan(&overrides);
            if *json {
                serde_json::to_writer_pretty(&mut out, &plan_rows(&audit, &plan))?;
                writeln!(out)?;
            } else {
                write_plan(&mut out, &audit, &plan)?;
            }
        }
        TuneCommand::Apply {
            basis,
            yes,
            confirm_within,
            state_dir,
            json,
        } => apply(basis, *yes, *confirm_within, state_dir.as_deref(), *json)?,
        TuneCommand::Confirm { state_dir } => {
            let netns = journal::current_netns();
            let store =
                JournalStore::open(state_dir.as_deref(), &netns).map_err(with_privilege_hint)?;
            match journal::confirm(&SysctlTree::live(), &store, &netns).map_err(with_privilege_hint)? {
                ConfirmOutcome::Kept {
                    changes,
                    watchdog_was_alive,
                } => {
                    writeln!(
                        out,
                        "confirmed: {} change(s) kept (`netsight tune rollback` still restores them)",
                        changes.len()
                    )?;
                    if !watchdog_was_alive {
                        eprintln!("netsight: warning: the revert watchdog was no longer running; without this confirmation the next netsight run would have reverted the changes");
                    }
                }
                ConfirmOutcome::BeingReverted => bail!(
                    "too late: the confirmation deadline has passed and the watchdog is reverting the changes now"
                ),
                ConfirmOutcome::RevertedNow(restored) => bail!(
                    "too late: the confirmation deadline had passed and the watchdog was gone; {} change(s) were reverted just now",
                    restored.len()
                ),
            }
        }
        TuneCommand::Rollback { state_dir, json } => {
            let netns = journal::current_netns();
            let store =
                JournalStore::open(state_dir.as_deref(), &netns).map_err(with_privilege_hint)?;
            let state = store.path();
            let restored = journal::rollback(&SysctlTree::live(), &store, &netns)
                .map_err(with_privilege_hint)?;
            if *json {
                serde_json::to_writer_pretty(&mut out, &restored)?;
                writeln!(out)?;
            } else {
                for e in &restored {
                    writeln!(out, "restored {} = {}", e.key, e.previous.trim_end())?;
                }
                writeln!(
                    out,
                    "{} value(s) restored; journal {} removed",
                    restored.len(),
                    state.display()
                )?;
            }
        }
        TuneCommand::Export { basis, all, format } => {
            let (audit, overrides) = audit_for(basis)?;
            let wanted = if *all {
                audit.desired_state(&overrides)
            } else {
                audit.plan(&overrides)
            };
            let header = format!(
                "netsight tune, profile {}, buffers for {} x {:.1} ms",
                audit.profile.as_str(),
                human_speed(audit.link.speed_bits_per_s),
                audit.link.rtt_us as f64 / 1000.0
            );
            out.write_all(export::render(*format, &wanted, &header)?.as_bytes())?;
            if *format != ExportFormat::Shell {
                warn_overrides(&wanted);
            }
        }
        TuneCommand::Bdp { speed, rtt, json } => {
            let b = bdp(*speed, *rtt);
            if *json {
                serde_json::to_writer_pretty(&mut out, &b)?;
                writeln!(out)?;
            } else {
                writeln!(out, "link            {}", human_speed(b.speed_bits_per_s))?;
                writeln!(out, "rtt             {:.3} ms", b.rtt_us as f64 / 1000.0)?;
                writeln!(
                    out,
                    "BDP             {} bytes ({})",
                    b.bdp_bytes,
                    human_bytes(b.bdp_bytes)
                )?;
                if b.buffer_bytes >= b.bdp_bytes.saturating_mul(2) {
                    writeln!(out, "socket buffer   {} bytes ({}): about 2 x BDP, since only part of a buffer is advertised as window", b.buffer_bytes, human_bytes(b.buffer_bytes))?;
                } else {
                    writeln!(out, "socket buffer   {} bytes ({}): capped at the kernel's 1 GiB limit, below the {} two BDPs need; one flow cannot fill this path: use several flows", b.buffer_bytes, human_bytes(b.buffer_bytes), human_bytes(b.bdp_bytes.saturating_mul(2)))?;
                }
                let max = b.buffer_bytes.max(netsight_tune::bdp::KERNEL_TCP_RMEM_MAX);
                writeln!(out, "sysctls         net.ipv4.tcp_rmem = 4096 131072 {max}")?;
                writeln!(out, "                net.ipv4.tcp_wmem = 4096 16384 {max}")?;
                writeln!(
                    out,
                    "                net.core.rmem_max = {max}, net.core.wmem_max = {max}"
                )?;
            }
        }
        TuneCommand::Watchdog { state_dir, token } => {
            let netns = journal::current_netns();
            let store = JournalStore::open(state_dir.as_deref(), &netns)?;
            // READY on stdout once the watchdog lock is held: apply waits for it.
            journal::watchdog(&SysctlTree::live(), &store, &netns, token, || {
                println!("READY");
                let _ = io::stdout().flush();
            })?;
        }
    }
    Ok(())
}

/// An apply whose confirmation deadline passed while no watchdog was left to
/// revert it is reverted by the next netsight run in that namespace, as root.
pub fn revert_expired_apply() {
    if !Path::new(netsight_kernel::state_dir::DEFAULT_STATE_DIR).is_dir() {
        return;
    }
    let netns = journal::current_netns();
    let Ok(store) = JournalStore::open(None, &netns) else {
        return;
    };
    match journal::revert_if_expired(&SysctlTree::live(), &store, &netns) {
        Ok(Some(restored)) => eprintln!(
            "netsight: an unconfirmed `tune apply` passed its deadline while its watchdog was gone: {} value(s) reverted now",
            restored.len()
        ),
        Ok(None) => {}
        Err(e) => eprintln!("netsight: warning: could not revert an expired unconfirmed `tune apply`: {e}"),
    }
}

/// The bundle's first and last snapshots: the interval it was recorded over.
fn bundle_interval(path: &Path) -> Result<(Snapshot, Snapshot)> {
    let raws = read_bundle(path)?;
    let (Some(first), Some(last)) = (raws.first(), raws.last()) else {
        bail!("bundle {} holds no snapshots", path.display());
    };
    Ok((Snapshot::from_raw(first), Snapshot::from_raw(last)))
}

/// Counters over an interval, as doctor reads them: advice follows what happens now.
/// Sockets (no owners) in the second give the median RTT of live connections.
fn live_interval(basis: &TuneBasis) -> (Snapshot, Snapshot) {
    let before = Snapshot::take();
    crate::term::wait(basis.interval, "netsight tune: watching the counters");
    (before, Snapshot::take_with_sockets(false))
}

fn audit_of(basis: &TuneBasis, before: &Snapshot, after: &Snapshot) -> Audit {
    let activity = netsight_tune::Activity::from_rates(&netsight_kernel::delta(before, after));
    let facts = HostFacts::from_snapshot(after);
    let options = TuneOptions {
        profile: basis.profile,
        speed_bits_per_s: basis.link_speed,
        rtt_us: basis.rtt,
    };
    netsight_tune::audit(after, &facts, &options, Some(&activity))
}

/// The live audit and the explicit `--set` changes, each checked against this host.
fn audit_for(change: &ChangeBasis) -> Result<(Audit, Vec<SysctlChange>)> {
    let overrides = change
        .overrides
        .iter()
        .map(|o| netsight_tune::audit::parse_override(o))
        .collect::<Result<Vec<_>, _>>()?;
    let tree = SysctlTree::live();
    for o in &overrides {
        netsight_tune::audit::check_override(&tree, o)
            .with_context(|| format!("--set {}={}", o.key, o.value))?;
    }
    let (before, after) = live_interval(&change.basis);
    Ok((audit_of(&change.basis, &before, &after), overrides))
}

fn write_audit(out: &mut impl Write, audit: &Audit, all: bool) -> io::Result<()> {
    writeln!(
        out,
        "profile {}: buffers sized for {} ({}) x {:.1} ms ({}) = BDP {}, {} per flow\n",
        audit.profile.as_str(),
        human_speed(audit.link.speed_bits_per_s),
        audit.link.speed_source,
        audit.link.rtt_us as f64 / 1000.0,
        audit.link.rtt_source,
        human_bytes(audit.bdp.bdp_bytes),
        human_bytes(audit.bdp.buffer_bytes),
    )?;
    let mut hidden = 0;
    for item in &audit.items {
        if !all && matches!(item.status, Status::Ok | Status::Unavailable) {
            hidden += 1;
            continue;
        }
        let status = match item.status {
            Status::Danger => "DANGER",
            Status::Change => "change",
            Status::Advice => "advice",
            Status::Ok => "ok",
            Status::Unavailable => "n/a",
        };
        let current = item.current.as_deref().unwrap_or("-");
        match (&item.recommended, item.status) {
            (Some(r), Status::Danger | Status::Change | Status::Advice) => {
                writeln!(out, "{status:<7} {}: {current} -> {r}", item.key)?
            }
            _ => writeln!(out, "{status:<7} {}: {current}", item.key)?,
        }
        writeln!(out, "        {}", item.reason)?;
        if let Some(c) = &item.command {
            writeln!(out, "        run: {c}")?;
        }
        if let Some(t) = item.tuned {
            writeln!(out, "        tuned {t}")?;
        }
    }
    let changes = audit
        .items
        .iter()
        .filter(|i| matches!(i.status, Status::Change | Status::Danger))
        .count();
    writeln!(
        out,
        "\n{changes} sysctl change(s) planned (`netsight tune plan`, `netsight tune apply`){}",
        if hidden > 0 {
            format!("; {hidden} item(s) fine or unavailable (--all shows them)")
        } else {
            String::new()
        }
    )
}

#[derive(serde::Serialize)]
struct PlanRow {
    key: String,
    from: Option<String>,
    to: String,
    reason: String,
}

fn plan_rows(audit: &Audit, plan: &[SysctlChange]) -> Vec<PlanRow> {
    let tree = SysctlTree::live();
    plan.iter()
        .map(|c| {
            let item = audit
                .items
                .iter()
                .find(|i| i.key == c.key && audit_owns(i, c));
            PlanRow {
                key: c.key.clone(),
                from: journal::SysctlKey::parse(&c.key)
                    .ok()
                    .and_then(|k| tree.read_raw(&k).ok())
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
                to: c.value.clone(),
                reason: item
                    .map(|i| i.reason.clone())
                    .unwrap_or_else(|| "--set".into()),
            }
        })
        .collect()
}

/// Whether the plan's value is the audit's own (not a --set override).
fn audit_owns(item: &netsight_tune::Item, change: &SysctlChange) -> bool {
    item.recommended.as_deref() == Some(change.value.as_str())
}

fn write_plan(out: &mut impl Write, audit: &Audit, plan: &[SysctlChange]) -> io::Result<()> {
    if plan.is_empty() {
        return writeln!(
            out,
            "nothing to change for profile {}",
            audit.profile.as_str()
        );
    }
    for row in plan_rows(audit, plan) {
        writeln!(
            out,
            "- {} = {}",
            row.key,
            row.from.as_deref().unwrap_or("(absent)")
        )?;
        writeln!(out, "+ {} = {}", row.key, row.to)?;
        writeln!(out, "  # {}", row.reason)?;
    }
    Ok(())
}

fn warn_overrides(wanted: &[SysctlChange]) {
    for o in export::overriding_settings(Path::new("/"), wanted) {
        eprintln!(
            "netsight: warning: {}:{} sets {} = {} (wanted {}): it overrides this value at boot or on `sysctl --system`",
            o.file.display(),
            o.line,
            o.key,
            o.value,
            o.wanted
        );
    }
}

fn with_privilege_hint(e: netsight_tune::TuneError) -> anyhow::Error {
    use netsight_kernel::sysctl_tree::SysctlError;
    use netsight_tune::TuneError;
    let sysctl_denied = |e: &TuneError| matches!(e, TuneError::Sysctl(SysctlError::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied);
    let denied = sysctl_denied(&e) || matches!(&e, TuneError::State(s) if s.is_permission_denied());
    let nested = matches!(&e, TuneError::ApplyFailed { cause, .. } if sysctl_denied(cause));
    if denied || nested {
        anyhow::Error::new(e).context("permission denied: sysctl files and /run/netsight are writable by root only (run with sudo; in a user namespace CAP_NET_ADMIN over the network namespace and CAP_DAC_OVERRIDE)")
    } else {
        anyhow::Error::new(e)
    }
}

/// Starts the revert watchdog in its own process group (a Ctrl-C or a dropped SSH
/// session must not stop the revert) and waits until it holds its lock.
fn start_watchdog(state_dir: Option<&Path>, token: &str) -> Result<()> {
    use std::io::BufRead as _;
    let exe = std::env::current_exe().context("locating the netsight binary for the watchdog")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["tune", "watchdog", "--token", token]);
    if let Some(dir) = state_dir {
        cmd.arg("--state-dir").arg(dir);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context(
            "starting the revert watchdog (the changes stay applied; run `netsight tune rollback`)",
        )?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = io::BufReader::new(stdout).read_line(&mut line);
    }
    if line.trim() != "READY" {
        bail!("the revert watchdog did not start (the changes stay applied; run `netsight tune rollback`, or any netsight command after the deadline reverts them)");
    }
    Ok(())
}

fn apply(
    basis: &ChangeBasis,
    yes: bool,
    confirm_within: Option<std::time::Duration>,
    state_dir: Option<&Path>,
    json: bool,
) -> Result<()> {
    let (audit, overrides) = audit_for(basis)?;
    let plan = audit.plan(&overrides);
    let mut out = io::stdout().lock();
    if plan.is_empty() {
        writeln!(
            out,
            "nothing to change for profile {}",
            audit.profile.as_str()
        )?;
        return Ok(());
    }
    if !yes {
        if !io::stdin().is_terminal() {
            bail!("refusing to change {} sysctl(s) without --yes (stdin is not a terminal); see `netsight tune plan`", plan.len());
        }
        write_plan(&mut out, &audit, &plan)?;
        write!(out, "apply these {} change(s)? [y/N] ", plan.len())?;
        out.flush()?;
        let mut answer = String::new();
        io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing applied");
        }
    }
    let netns = journal::current_netns();
    let store = JournalStore::open(state_dir, &netns).map_err(with_privilege_hint)?;
    let state = store.path();
    let applied =
        journal::apply(&SysctlTree::live(), &store, &netns, &plan).map_err(with_privilege_hint)?;
    warn_overrides(&plan);
    let pending = match confirm_within {
        Some(within) if !applied.is_empty() => {
            let pending = journal::arm_confirm(&store, &netns, within)?;
            start_watchdog(state_dir, &pending.token)?;
            Some(within)
        }
        _ => None,
    };
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"applied": applied, "state": state, "confirm_within_s": pending.map(|d| d.as_secs_f64())}),
        )?;
        writeln!(out)?;
    } else {
        for c in &applied {
            writeln!(out, "set {} = {} (was {})", c.key, c.to, c.from)?;
        }
        writeln!(
            out,
            "{} change(s) applied; previous values journaled in {}",
            applied.len(),
            state.display()
        )?;
        match pending {
            Some(d) => writeln!(
                out,
                "run `netsight tune confirm` within {:.0}s or every change is reverted",
                d.as_secs_f64()
            )?,
            None => writeln!(out, "undo with `netsight tune rollback`")?,
        }
    }
    Ok(())
}
