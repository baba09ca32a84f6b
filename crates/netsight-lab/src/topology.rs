//! client ── router ── server, three network namespaces joined by veth pairs.
//! Addresses come from a private range and exist only inside these namespaces.
//! The `Topology` value owns them: dropping it deletes the namespaces (and with
//! them every veth, qdisc, iptables rule and per-namespace sysctl set inside).

use std::process::{Command, Output};
use std::sync::Mutex;

use netsight_kernel::state_dir::StateDir;
use netsight_kernel::sysctl_tree::{SysctlKey, SysctlTree};

use crate::LabError;

/// Every lab namespace starts with this; `lab down` removes all of them.
pub const PREFIX: &str = "nsl-";

pub const CLIENT_ADDR: &str = "10.77.1.2";
pub const ROUTER_CLIENT_SIDE: &str = "10.77.1.1";
pub const ROUTER_SERVER_SIDE: &str = "10.77.2.1";
pub const SERVER_ADDR: &str = "10.77.2.2";

/// `bench --topology`: how two namespaces can be joined.
pub const PAIR_KINDS: &[&str] = &["veth", "bridge", "macvlan", "ipvlan"];
pub const PAIR_CLIENT_ADDR: &str = "10.77.3.1";
pub const PAIR_SERVER_ADDR: &str = "10.77.3.2";

/// Namespaces alive in this process, for the Ctrl-C handler.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Router,
    Server,
}

#[derive(Debug)]
pub struct Topology {
    pub client: String,
    pub router: String,
    pub server: String,
}

/// A refused `ip netns add` says what it takes.
fn needs_root(e: LabError) -> LabError {
    match e {
        LabError::Command { command, stderr } if stderr.contains("not permitted") => {
            LabError::Command {
                command,
                stderr: format!(
                    "{stderr} (the lab needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN; run with sudo)"
                ),
            }
        }
        other => other,
    }
}

pub fn run(program: &str, args: &[&str]) -> Result<Output, LabError> {
    Command::new(program)
        .args(args)
        .output()
        .map_err(|e| LabError::Spawn {
            command: format!("{program} {}", args.join(" ")),
            source: e,
        })
}

/// Runs a command and fails with its stderr when it fails.
pub fn run_ok(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = run(program, args)?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Topology {
    /// Creates the three namespaces (from here on, Drop deletes them), quiet
    /// (no IPv6 neighbour discovery moving counters) with loopback up.
    fn add_namespaces(&self) -> Result<(), LabError> {
        for ns in [&self.client, &self.router, &self.server] {
            run_ok("ip", &["netns", "add", ns]).map_err(needs_root)?;
            if let Ok(mut live) = LIVE.lock() {
                live.push(ns.clone());
            }
            self.exec_ok_in(ns, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            self.exec_ok_in(
                ns,
                "sysctl",
                &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            )?;
            self.exec_ok_in(ns, "ip", &["link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Builds the three namespaces; `tag` keeps concurrent labs apart.
    pub fn build(tag: &str) -> Result<Topology, LabError> {
        let topo = Topology {
            client: format!("{PREFIX}{tag}-c"),
            router: format!("{PREFIX}{tag}-r"),
            server: format!("{PREFIX}{tag}-s"),
        };
        topo.add_namespaces()?;
        let (c, r, s) = (&topo.client, &topo.router, &topo.server);
        // Each end host's eth0 pairs with a router port named after it.
        for (host, router_port) in [(c, "to-client"), (s, "to-server")] {
            let link = ["-n", host, "link", "add", "eth0", "type", "veth"];
            run_ok(
                "ip",
                &[&link[..], &["peer", "name", router_port, "netns", r]].concat(),
            )?;
        }
        for (ns, dev, addr) in [
            (c, "eth0", "10.77.1.2/24"),
            (r, "to-client", "10.77.1.1/24"),
            (r, "to-server", "10.77.2.1/24"),
            (s, "eth0", "10.77.2.2/24"),
        ] {
            topo.exec_ok_in(ns, "ip", &["addr", "add", addr, "dev", dev])?;
            topo.exec_ok_in(ns, "ip", &["link", "set", dev, "up"])?;
        }
        topo.exec_ok_in(r, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        topo.exec_ok_in(
            c,
            "ip",
            &["route", "add", "default", "via", ROUTER_CLIENT_SIDE],
        )?;
        topo.exec_ok_in(
            s,
            "ip",
            &["route", "add", "default", "via", ROUTER_SERVER_SIDE],
        )?;
        Ok(topo)
    }

    /// Two hosts, client and server, joined by `kind` (one of PAIR_KINDS), for
    /// `bench --topology`. `router` is the namespace in the middle: the bridge
    /// for bridge, the parent device's for macvlan and ipvlan, unused for veth.
    /// A kernel without the link type gives `LabError::Unsupported`.
    pub fn build_pair(tag: &str, kind: &str) -> Result<Topology, LabError> {
        if !PAIR_KINDS.contains(&kind) {
            return Err(LabError::Unsupported(format!(
                "no pair topology {kind:?} (one of {})",
                PAIR_KINDS.join(", ")
            )));
        }
        let topo = Topology {
            client: format!("{PREFIX}{tag}-c"),
            router: format!("{PREFIX}{tag}-m"),
            server: format!("{PREFIX}{tag}-s"),
        };
        topo.add_namespaces()?;
        let (c, m, s) = (&topo.client, &topo.router, &topo.server);
        let unsupported = |e: LabError| match e {
            LabError::Command { stderr, .. }
                if stderr.contains("Unknown device type")
                    || stderr.contains("not supported")
                    || stderr.contains("Not supported") =>
            {
                LabError::Unsupported(format!("this kernel has no {kind} links ({stderr})"))
            }
            other => other,
        };
        match kind {
            "veth" => {
                run_ok(
                    "ip",
                    &[
                        "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                        "netns", s,
                    ],
                )?;
            }
            "bridge" => {
                topo.exec_ok_in(m, "ip", &["link", "add", "br0", "type", "bridge"])
                    .map_err(unsupported)?;
                topo.exec_ok_in(m, "ip", &["link", "set", "br0", "up"])?;
                for (host, port) in [(c, "to-client"), (s, "to-server")] {
                    run_ok(
                        "ip",
                        &[
                            "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name",
                            port, "netns", m,
                        ],
                    )?;
                    topo.exec_ok_in(m, "ip", &["link", "set", port, "master", "br0", "up"])?;
                }
            }
            // Both ends hang off one parent device (a dummy in the middle
            // namespace) and talk through it, as containers on a host NIC do.
            _ => {
                topo.exec_ok_in(m, "ip", &["link", "add", "parent0", "type", "dummy"])
                    .map_err(unsupported)?;
                topo.exec_ok_in(m, "ip", &["link", "set", "parent0", "up"])?;
                let mode: &[&str] = if kind == "macvlan" {
                    &["mode", "bridge"]
                } else {
                    &["mode", "l2"]
                };
                for (host, name) in [(c, "v-client"), (s, "v-server")] {
                    let add = [
                        &["link", "add", name, "link", "parent0", "type", kind][..],
                        mode,
                    ]
                    .concat();
                    topo.exec_ok_in(m, "ip", &add).map_err(unsupported)?;
                    topo.exec_ok_in(m, "ip", &["link", "set", name, "netns", host])?;
                    topo.exec_ok_in(host, "ip", &["link", "set", name, "name", "eth0"])?;
                }
            }
        }
        for (ns, addr) in [(c, PAIR_CLIENT_ADDR), (s, PAIR_SERVER_ADDR)] {
            topo.exec_ok_in(
                ns,
                "ip",
                &["addr", "add", &format!("{addr}/24"), "dev", "eth0"],
            )?;
            topo.exec_ok_in(ns, "ip", &["link", "set", "eth0", "up"])?;
        }
        Ok(topo)
    }

    pub fn ns(&self, role: Role) -> &str {
        match role {
            Role::Client => &self.client,
            Role::Router => &self.router,
            Role::Server => &self.server,
        }
    }

    pub fn exec_ok_in(&self, ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    pub fn exec_ok(&self, role: Role, program: &str, args: &[&str]) -> Result<String, LabError> {
        self.exec_ok_in(self.ns(role), program, args)
    }

    /// Starts a program in a namespace in the background.
    pub fn spawn(
        &self,
        role: Role,
        program: &str,
        args: &[String],
    ) -> Result<Background, LabError> {
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns(role), program])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| LabError::Spawn {
                command: format!("{program} {}", args.join(" ")),
                source: e,
            })?;
        if let Ok(mut live) = CHILDREN.lock() {
            live.push(child.id());
        }
        Ok(Background {
            child: Some(child),
            stderr: None,
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.client, &self.router, &self.server] {
            let _ = run("ip", &["netns", "del", ns]);
        }
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|n| n != &self.client && n != &self.router && n != &self.server);
        }
    }
}

/// Background processes alive in this process, for a signal handler.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn forget_child(pid: u32) {
    if let Ok(mut live) = CHILDREN.lock() {
        live.retain(|p| *p != pid);
    }
}

static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once a signal handler began stopping the lab: what fails from here on
/// (a killed doctor, a deleted namespace) is the stop, not a fault to report.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Kills the background processes this process started (for a signal handler):
/// agents would otherwise keep their namespace alive until their time bound.
pub fn stop_background() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
    let pids: Vec<u32> = CHILDREN.lock().map(|l| l.clone()).unwrap_or_default();
    for pid in pids {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A background process killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Option<std::process::Child>,
    /// Once `wait_for_stderr` read part of stderr: the rest, drained on a thread.
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Background {
    /// Reads its stderr until a line holding `needle` (a readiness line); the rest
    /// is drained on a thread and handed back by `wait`.
    pub fn wait_for_stderr(&mut self, needle: &str) -> Result<(), LabError> {
        use std::io::BufRead as _;
        let pipe = self
            .child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .ok_or(LabError::Internal("stderr already taken"))?;
        let mut reader = std::io::BufReader::new(pipe);
        let mut seen = Vec::new();
        let found = loop {
            let before = seen.len();
            match reader.read_until(b'\n', &mut seen) {
                Ok(0) | Err(_) => break false,
                Ok(_) if String::from_utf8_lossy(&seen[before..]).contains(needle) => break true,
                Ok(_) => {}
            }
        };
        self.stderr = Some(std::thread::spawn(move || {
            let _ = std::io::Read::read_to_end(&mut reader, &mut seen);
            seen
        }));
        if found {
            Ok(())
        } else {
            Err(LabError::Internal("ended before its readiness line"))
        }
    }

    /// Waits for it to finish and returns its output.
    pub fn wait(mut self) -> Result<Output, LabError> {
        let child = self
            .child
            .take()
            .ok_or(LabError::Internal("background process already taken"))?;
        forget_child(child.id());
        let mut out = child.wait_with_output().map_err(|e| LabError::Spawn {
            command: "wait".into(),
            source: e,
        })?;
        if let Some(rest) = self.stderr.take() {
            out.stderr = rest.join().unwrap_or_default();
        }
        Ok(out)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            forget_child(child.id());
        }
    }
}

/// Deletes the namespaces this process created (for a Ctrl-C handler).
pub fn cleanup_live() {
    let names: Vec<String> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for ns in names {
        let _ = run("ip", &["netns", "del", &ns]);
    }
}

/// Removes every lab namespace left on the machine and restores journaled host
/// sysctls; returns what it removed or restored.
pub fn down() -> Result<Vec<String>, LabError> {
    let mut removed = Vec::new();
    let state = StateDir::open_default()?;
    {
        let _lock = state.lock(JOURNAL)?;
        let journal = load_journal(&state)?;
        for entry in &journal.entries {
            write_host_sysctl(&entry.key, &entry.original)?;
            removed.push(format!("sysctl {}={}", entry.key, entry.original));
        }
        state.remove(JOURNAL_FILE)?;
    }
    let list = run_ok("ip", &["netns", "list"])?;
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if name.starts_with(PREFIX) {
            run_ok("ip", &["netns", "del", name])?;
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

/// The only host-wide knobs the lab changes (they have no per-namespace copy);
/// a journal naming anything else is refused.
pub const LAB_HOST_SYSCTLS: &[&str] = &[
    "net.core.netdev_max_backlog",
    "net.netfilter.nf_conntrack_max",
];

/// Previous host values, journaled under /run/netsight so `lab down` can restore
/// them even after a run was killed (SIGKILL skips every guard). Concurrent runs
/// share an entry: the first one records the original value, each run adds its
/// pid, and the last holder to leave restores it.
const JOURNAL: &str = "lab-host-sysctls";
const JOURNAL_FILE: &str = "lab-host-sysctls.json";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct HostJournal {
    entries: Vec<HostEntry>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct HostEntry {
    key: String,
    original: String,
    holders: Vec<u32>,
}

fn load_journal(state: &StateDir) -> Result<HostJournal, LabError> {
    let Some(bytes) = state.read(JOURNAL_FILE)? else {
        return Ok(HostJournal::default());
    };
    let path = state.path().join(JOURNAL_FILE);
    let journal: HostJournal = serde_json::from_slice(&bytes).map_err(|e| LabError::Journal {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    for e in &journal.entries {
        let numeric = !e.original.is_empty() && e.original.bytes().all(|b| b.is_ascii_digit());
        if !LAB_HOST_SYSCTLS.contains(&e.key.as_str()) || !numeric {
            return Err(LabError::Journal {
                path,
                detail: format!(
                    "entry {}={:?} is not one the lab makes (only {} with a number); left as it is",
                    e.key,
                    e.original,
                    LAB_HOST_SYSCTLS.join(", ")
                ),
            });
        }
    }
    Ok(journal)
}

fn save_journal(state: &StateDir, journal: &HostJournal) -> Result<(), LabError> {
    if journal.entries.is_empty() {
        return Ok(state.remove(JOURNAL_FILE)?);
    }
    Ok(state.write(
        JOURNAL_FILE,
        &serde_json::to_vec_pretty(journal).unwrap_or_default(),
    )?)
}

fn sysctl_key(name: &str) -> Result<SysctlKey, LabError> {
    Ok(SysctlKey::parse(name)?)
}

fn write_host_sysctl(name: &str, value: &str) -> Result<(), LabError> {
    Ok(SysctlTree::live().write(&sysctl_key(name)?, value)?)
}

/// A host-wide (init namespace) sysctl set for the duration of a scenario.
/// Drop gives it back (restoring the original when the last holder leaves).
#[derive(Debug)]
pub struct HostSysctl {
    name: String,
}

fn pid_alive(pid: u32) -> bool {
    netsight_kernel::netns::process_exists(pid)
}

impl HostSysctl {
    pub fn set(name: &str, value: &str) -> Result<HostSysctl, LabError> {
        if !LAB_HOST_SYSCTLS.contains(&name) {
            return Err(LabError::Internal(
                "a scenario may change only the lab's host sysctls",
            ));
        }
        let key = sysctl_key(name)?;
        let state = StateDir::open_default()?;
        let _lock = state.lock(JOURNAL)?;
        let mut journal = load_journal(&state)?;
        let me = std::process::id();
        match journal.entries.iter_mut().find(|e| e.key == name) {
            Some(e) => {
                e.holders.retain(|p| pid_alive(*p));
                e.holders.push(me);
            }
            None => {
                let original = SysctlTree::live().read_raw(&key)?.trim().to_string();
                journal.entries.push(HostEntry {
                    key: name.to_string(),
                    original,
                    holders: vec![me],
                });
            }
        }
        save_journal(&state, &journal)?;
        if let Ok(mut live) = HOST_SYSCTLS.lock() {
            live.push(name.to_string());
        }
        SysctlTree::live().write(&key, value)?;
        Ok(HostSysctl {
            name: name.to_string(),
        })
    }
}

/// Leaves one hold on `name` for this process; the last holder restores the original.
fn release(name: &str) -> Result<(), LabError> {
    let state = StateDir::open_default()?;
    let _lock = state.lock(JOURNAL)?;
    let mut journal = load_journal(&state)?;
    let me = std::process::id();
    if let Some(i) = journal.entries.iter().position(|e| e.key == name) {
        let entry = &mut journal.entries[i];
        if let Some(at) = entry.holders.iter().position(|p| *p == me) {
            entry.holders.remove(at);
        }
        entry.holders.retain(|p| pid_alive(*p));
        if entry.holders.is_empty() {
            write_host_sysctl(&entry.key, &entry.original)?;
            journal.entries.remove(i);
        }
        save_journal(&state, &journal)?;
    }
    if let Ok(mut live) = HOST_SYSCTLS.lock() {
        if let Some(at) = live.iter().position(|n| n == name) {
            live.remove(at);
        }
    }
    Ok(())
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if let Err(e) = release(&self.name) {
            eprintln!(
                "netsight: restoring {}: {e} (run `netsight lab down`)",
                self.name
            );
        }
    }
}

/// Host sysctls this process holds, for a signal handler.
static HOST_SYSCTLS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Gives back the host sysctls this process holds (for a signal handler).
pub fn restore_host_sysctls() {
    let held: Vec<String> = HOST_SYSCTLS.lock().map(|l| l.clone()).unwrap_or_default();
    for name in held.into_iter().rev() {
        if let Err(e) = release(&name) {
            eprintln!("netsight: restoring {name}: {e} (run `netsight lab down`)");
        }
    }
}
