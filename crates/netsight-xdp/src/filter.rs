//! What `netsight xdp` does, journaled: attach, change rules, read status,
//! detach, expire. The journal (`xdp-<netns>-<ifindex>.json` in the root-owned
//! state directory) is written before the program is attached and names the
//! program id, so a later run, a crash included, can tell netsight's program
//! from anyone else's and never touches the latter.

use std::time::{SystemTime, UNIX_EPOCH};

use netsight_kernel::state_dir::{StateDir, StateLock};
use serde::{Deserialize, Serialize};

use crate::compile::{compile, SlottedRule, MAX_RULES};
use crate::kernel::{self, Maps, Mode, RuleCounters, Totals};
use crate::rules::{Action, Prefix, Rule, SynLimit};
use crate::XdpError;

/// What is attached to one interface, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub interface: String,
    pub ifindex: u32,
    /// The network namespace's inode.
    pub netns: u64,
    pub prog_id: u32,
    pub mode: Mode,
    pub attached_at_unix_s: u64,
    pub expires_at_unix_s: Option<u64>,
    pub dry_run: bool,
    pub rules: Vec<SlottedRule>,
    pub syn_limit: Option<SynLimit>,
    pub protected: Vec<Prefix>,
    /// Identifies this attach (a re-attach gets a new one), for the TTL watchdog.
    pub token: String,
}

/// What `attach` is asked for.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    pub interface: String,
    pub rules: Vec<Rule>,
    pub syn_limit: Option<SynLimit>,
    /// None: try native, then generic.
    pub mode: Option<Mode>,
    pub dry_run: bool,
    pub ttl_s: Option<u64>,
    /// Sources never dropped (the SSH peer, --protect); empty with --force.
    pub protected: Vec<Prefix>,
}

pub fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn netns_inode() -> u64 {
    netsight_kernel::netns::self_inode().map_or(0, u64::from)
}

fn journal_name(netns: u64, ifindex: u32) -> String {
    format!("xdp-{netns}-{ifindex}.json")
}

/// The journals, in the root-owned state directory (a test may point elsewhere).
#[derive(Debug)]
pub struct Journal {
    dir: StateDir,
}

impl Journal {
    pub fn open(path: Option<&std::path::Path>) -> Result<Journal, XdpError> {
        let dir = match path {
            Some(p) => StateDir::open(p)?,
            None => StateDir::open_default()?,
        };
        Ok(Journal { dir })
    }

    fn lock(&self, netns: u64, ifindex: u32) -> Result<StateLock, XdpError> {
        Ok(self.dir.lock(&journal_name(netns, ifindex))?)
    }

    pub fn read(&self, netns: u64, ifindex: u32) -> Result<Option<Attachment>, XdpError> {
        let name = journal_name(netns, ifindex);
        match self.dir.read(&name)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                XdpError::Journal(format!("{}: {e}", self.dir.path().join(&name).display()))
            }),
        }
    }

    fn write(&self, a: &Attachment) -> Result<(), XdpError> {
        let bytes = serde_json::to_vec_pretty(a).map_err(|e| XdpError::Journal(e.to_string()))?;
        Ok(self.dir.write(&journal_name(a.netns, a.ifindex), &bytes)?)
    }

    fn remove(&self, netns: u64, ifindex: u32) -> Result<(), XdpError> {
        Ok(self.dir.remove(&journal_name(netns, ifindex))?)
    }

    /// Every attachment journaled for this network namespace.
    pub fn all_here(&self) -> Vec<Attachment> {
        let prefix = format!("xdp-{}-", netns_inode());
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return Vec::new();
        };
        let mut out: Vec<Attachment> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
            .filter_map(|n| self.dir.read(&n).ok().flatten())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a: &Attachment, b| a.interface.cmp(&b.interface));
        out
    }
}

fn protected_overlap(rule: &Rule, protected: &[Prefix]) -> Vec<Prefix> {
    if rule.action != Action::Drop {
        return Vec::new();
    }
    protected
        .iter()
        .filter(|p| {
            rule.v4_only().is_none_or(|v4| v4 == p.is_v4())
                && rule.src.is_none_or(|s| s.covers(p) || p.covers(&s))
        })
        .copied()
        .collect()
}

/// Drop rules whose source overlaps a protected prefix (they are spared in the
/// kernel; the caller warns).
pub fn overlaps(rules: &[Rule], protected: &[Prefix]) -> Vec<(Rule, Prefix)> {
    rules
        .iter()
        .flat_map(|r| {
            protected_overlap(r, protected)
                .into_iter()
                .map(move |p| (r.clone(), p))
        })
        .collect()
}

fn check_rule_count(n: usize) -> Result<(), XdpError> {
    if n > MAX_RULES {
        return Err(XdpError::Usage(format!(
            "{n} rules: the filter holds at most {MAX_RULES}"
        )));
    }
    Ok(())
}

/// Loads, fills and attaches the filter; journals it first.
pub fn attach(
    journal: &Journal,
    req: &AttachRequest,
    token: String,
) -> Result<Attachment, XdpError> {
    check_rule_count(req.rules.len())?;
    let link = kernel::find_link(&req.interface)?;
    let ifindex = link
        .ifindex
        .ok_or_else(|| XdpError::UnknownInterface(req.interface.clone()))?;
    let netns = netns_inode();
    let _lock = journal.lock(netns, ifindex)?;
    if let Some(existing) = &link.xdp {
        let ours = journal
            .read(netns, ifindex)?
            .is_some_and(|a| a.prog_id == existing.id);
        return Err(if ours {
            XdpError::AlreadyAttached(req.interface.clone())
        } else {
            not_ours(req.interface.clone(), existing.id)
        });
    }
    let mut loaded = kernel::load()?;
    let rules: Vec<SlottedRule> = req
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| SlottedRule {
            slot: i as u8,
            rule: r.clone(),
        })
        .collect();
    loaded
        .maps
        .set_config(req.dry_run, req.syn_limit.as_ref())?;
    loaded.maps.set_protected(&req.protected)?;
    loaded.maps.change_rules(&compile(&[]), &compile(&rules))?;
    let now = now_unix_s();
    let mut a = Attachment {
        interface: req.interface.clone(),
        ifindex,
        netns,
        prog_id: loaded.prog_id,
        mode: req.mode.unwrap_or(Mode::Native),
        attached_at_unix_s: now,
        expires_at_unix_s: req.ttl_s.map(|t| now + t),
        dry_run: req.dry_run,
        rules,
        syn_limit: req.syn_limit,
        protected: req.protected.clone(),
        token,
    };
    journal.write(&a)?;
    let attached = match req.mode {
        Some(mode) => loaded.attach(ifindex, mode),
        None => match loaded.attach(ifindex, Mode::Native) {
            Err(e) if kernel::mode_unsupported(&e) => {
                a.mode = Mode::Generic;
                loaded.attach(ifindex, Mode::Generic)
            }
            other => other,
        },
    };
    if let Err(e) = attached {
        let _ = journal.remove(netns, ifindex);
        return Err(e);
    }
    // The mode the kernel reports is the truth.
    if let Some(mode) = kernel::find_link(&req.interface)
        .ok()
        .as_ref()
        .and_then(Mode::of_link)
    {
        a.mode = mode;
    }
    journal.write(&a)?;
    Ok(a)
}

/// Someone else's program `prog_id` is on `interface`.
fn not_ours(interface: impl Into<String>, prog_id: u32) -> XdpError {
    XdpError::NotOurs {
        interface: interface.into(),
        prog_id,
        name: kernel::program_name(prog_id).unwrap_or_default(),
    }
}

/// The journaled attachment of `interface`, checked to still be on it.
fn current(journal: &Journal, interface: &str) -> Result<(Attachment, StateLock), XdpError> {
    let link = kernel::find_link(interface)?;
    let ifindex = link
        .ifindex
        .ok_or_else(|| XdpError::UnknownInterface(interface.into()))?;
    let netns = netns_inode();
    let lock = journal.lock(netns, ifindex)?;
    let a = journal.read(netns, ifindex)?;
    match (a, &link.xdp) {
        (Some(a), Some(x)) if x.id == a.prog_id => Ok((a, lock)),
        (Some(_), attached) => {
            // Gone (or replaced by someone else): the journal is stale.
            journal.remove(netns, ifindex)?;
            match attached {
                Some(x) => Err(not_ours(interface, x.id)),
                None => Err(XdpError::NotAttached(interface.into())),
            }
        }
        (None, Some(x)) => Err(not_ours(interface, x.id)),
        (None, None) => Err(XdpError::NotAttached(interface.into())),
    }
}

/// Adds a rule at the end (or at `position`, 1-based), live.
pub fn add_rule(
    journal: &Journal,
    interface: &str,
    rule: Rule,
    position: Option<usize>,
) -> Result<Attachment, XdpError> {
    let (mut a, _lock) = current(journal, interface)?;
    check_rule_count(a.rules.len() + 1)?;
    let used: Vec<u8> = a.rules.iter().map(|r| r.slot).collect();
    let slot = (0..MAX_RULES as u8)
        .find(|s| !used.contains(s))
        .ok_or_else(|| XdpError::Usage("no free rule slot".into()))?;
    let old = compile(&a.rules);
    let at = position.map_or(a.rules.len(), |p| p.saturating_sub(1).min(a.rules.len()));
    a.rules.insert(at, SlottedRule { slot, rule });
    let mut maps = Maps::of_program(a.prog_id)?;
    maps.change_rules(&old, &compile(&a.rules))?;
    journal.write(&a)?;
    Ok(a)
}

/// Deletes a rule, by its 1-based number or its text, live.
pub fn delete_rule(
    journal: &Journal,
    interface: &str,
    which: &str,
) -> Result<(Attachment, Rule), XdpError> {
    let (mut a, _lock) = current(journal, interface)?;
    let index = match which.trim().parse::<usize>() {
        Ok(n) if n >= 1 && n <= a.rules.len() => n - 1,
        Ok(n) => {
            return Err(XdpError::Usage(format!(
                "no rule {n}: {} has {} rule(s) (see `netsight xdp status`)",
                interface,
                a.rules.len()
            )))
        }
        Err(_) => {
            let rule: Rule = which.parse().map_err(XdpError::Usage)?;
            a.rules.iter().position(|r| r.rule == rule).ok_or_else(|| {
                XdpError::Usage(format!(
                    "{interface} has no rule {rule:?} (see `netsight xdp status`)",
                    rule = rule.to_string()
                ))
            })?
        }
    };
    let old = compile(&a.rules);
    let removed = a.rules.remove(index);
    let mut maps = Maps::of_program(a.prog_id)?;
    maps.change_rules(&old, &compile(&a.rules))?;
    journal.write(&a)?;
    Ok((a, removed.rule))
}

/// An attachment with its live counters.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub attachment: Attachment,
    pub ttl_left_s: Option<u64>,
    pub rule_counters: Vec<RuleCounters>,
    pub totals: Totals,
}

pub fn status_of(a: Attachment) -> Result<Status, XdpError> {
    let mut maps = Maps::of_program(a.prog_id)?;
    let rule_counters = a
        .rules
        .iter()
        .map(|r| maps.rule_counters(r.slot))
        .collect::<Result<Vec<_>, _>>()?;
    let totals = maps.totals()?;
    let ttl_left_s = a.expires_at_unix_s.map(|e| e.saturating_sub(now_unix_s()));
    Ok(Status {
        attachment: a,
        ttl_left_s,
        rule_counters,
        totals,
    })
}

/// Status of one interface, or of every journaled one in this namespace.
pub fn status(journal: &Journal, interface: Option<&str>) -> Result<Vec<Status>, XdpError> {
    match interface {
        Some(i) => {
            let (a, _lock) = current(journal, i)?;
            Ok(vec![status_of(a)?])
        }
        None => journal
            .all_here()
            .into_iter()
            .filter_map(|a| current(journal, &a.interface).ok().map(|(a, _)| a))
            .map(status_of)
            .collect(),
    }
}

/// Detaches netsight's filter from `interface` and removes the journal.
pub fn detach(journal: &Journal, interface: &str) -> Result<Attachment, XdpError> {
    let (a, _lock) = current(journal, interface)?;
    kernel::detach(a.ifindex, a.prog_id, a.mode)?;
    journal.remove(a.netns, a.ifindex)?;
    Ok(a)
}

/// Detaches every attachment of this namespace whose TTL has passed; returns them.
/// Journals whose program is no longer loaded (its namespace or interface went
/// away) are removed on the way.
pub fn detach_expired(journal: &Journal) -> Vec<Attachment> {
    let now = now_unix_s();
    let mut detached = Vec::new();
    for a in journal.all_here() {
        if kernel::program_name(a.prog_id).is_none() {
            // Under the lock, and only if no attach has replaced it meanwhile.
            if let Ok(_lock) = journal.lock(a.netns, a.ifindex) {
                if journal
                    .read(a.netns, a.ifindex)
                    .ok()
                    .flatten()
                    .is_some_and(|now| now.prog_id == a.prog_id)
                {
                    let _ = journal.remove(a.netns, a.ifindex);
                }
            }
        } else if a.expires_at_unix_s.is_some_and(|e| e <= now) {
            if let Ok(a) = detach(journal, &a.interface) {
                detached.push(a);
            }
        }
    }
    detached
}

/// What the TTL watchdog sees each time it wakes.
#[derive(Debug)]
pub enum Watch {
    /// Still attached, the TTL not yet reached.
    Waiting,
    /// Expired and detached now.
    Detached,
    /// Detached or re-attached by someone else: nothing left to do.
    Gone,
}

/// One look by the watchdog of attach `token` on `interface`.
pub fn watch(journal: &Journal, interface: &str, token: &str) -> Watch {
    let Ok((a, lock)) = current(journal, interface) else {
        return Watch::Gone;
    };
    if a.token != token {
        return Watch::Gone;
    }
    match a.expires_at_unix_s {
        None => Watch::Gone,
        Some(e) if e > now_unix_s() => Watch::Waiting,
        Some(_) => {
            drop(lock);
            match detach(journal, interface) {
                Ok(_) => Watch::Detached,
                Err(_) => Watch::Gone,
            }
        }
    }
}
