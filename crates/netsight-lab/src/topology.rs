//! client ── router ── server, three network namespaces joined by veth pairs.
//! Addresses come from a private range and exist only inside these namespaces.
//! The `Topology` value owns them: dropping it deletes the namespaces (and with
//! them every veth, qdisc, iptables rule and per-namespace sysctl set inside).

use std::process::{Command, Output};
use std::sync::Mutex;

use crate::LabError;

/// Every lab namespace starts with this; `lab down` removes all of them.
pub const PREFIX: &str = "nsl-";

pub const CLIENT_ADDR: &str = "10.77.1.2";
pub const ROUTER_CLIENT_SIDE: &str = "10.77.1.1";
pub const ROUTER_SERVER_SIDE: &str = "10.77.2.1";
pub const SERVER_ADDR: &str = "10.77.2.2";

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
    /// Builds the three namespaces; `tag` keeps concurrent labs apart.
    pub fn build(tag: &str) -> Result<Topology, LabError> {
        let topo = Topology {
            client: format!("{PREFIX}{tag}-c"),
            router: format!("{PREFIX}{tag}-r"),
            server: format!("{PREFIX}{tag}-s"),
        };
        for ns in [&topo.client, &topo.router, &topo.server] {
            run_ok("ip", &["netns", "add", ns]).map_err(|e| match e {
                LabError::Command { command, stderr } if stderr.contains("not permitted") => LabError::Command {
                    command,
                    stderr: format!("{stderr} (the lab needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN; run with sudo)"),
                },
                other => other,
            })?;
            if let Ok(mut live) = LIVE.lock() {
                live.push(ns.clone());
            }
            // Quiet namespaces: no IPv6 neighbour discovery moving counters.
            topo.exec_ok_in(ns, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            topo.exec_ok_in(
                ns,
                "sysctl",
                &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            )?;
            topo.exec_ok_in(ns, "ip", &["link", "set", "lo", "up"])?;
        }
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
        Ok(Background(Some(child)))
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

/// A background process killed on drop.
#[derive(Debug)]
pub struct Background(Option<std::process::Child>);

impl Background {
    /// Waits for it to finish and returns its output.
    pub fn wait(mut self) -> Result<Output, LabError> {
        let child = self
            .0
            .take()
            .ok_or(LabError::Internal("background process already taken"))?;
        child.wait_with_output().map_err(|e| LabError::Spawn {
            command: "wait".into(),
            source: e,
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
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
    if let Ok(journal) = std::fs::read_to_string(journal_path()) {
        for line in journal.lines().filter(|l| l.contains('=')) {
            run_ok("sysctl", &["-qw", line])?;
            removed.push(format!("sysctl {line}"));
        }
        let _ = std::fs::remove_file(journal_path());
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

/// Host sysctls changed by a scenario, with their previous values, for Ctrl-C.
static HOST_SYSCTLS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// A host-wide (init namespace) sysctl set for the duration of a scenario:
/// some knobs (net.core.netdev_max_backlog, nf_conntrack_max) have no
/// per-namespace copy. Drop restores the previous value.
#[derive(Debug)]
pub struct HostSysctl {
    name: String,
    previous: String,
}

/// Where previous host values are journaled, so `lab down` can restore them
/// even after a run was killed (SIGKILL skips every guard).
fn journal_path() -> std::path::PathBuf {
    std::env::temp_dir().join("netsight-lab-host-sysctls")
}

fn write_journal(list: &[(String, String)]) {
    let text: String = list.iter().map(|(n, v)| format!("{n}={v}\n")).collect();
    let _ = if list.is_empty() {
        std::fs::remove_file(journal_path())
    } else {
        std::fs::write(journal_path(), text)
    };
}

impl HostSysctl {
    pub fn set(name: &str, value: &str) -> Result<HostSysctl, LabError> {
        let previous = run_ok("sysctl", &["-n", name])?.trim().to_string();
        if let Ok(mut list) = HOST_SYSCTLS.lock() {
            list.push((name.to_string(), previous.clone()));
            write_journal(&list);
        }
        run_ok("sysctl", &["-qw", &format!("{name}={value}")])?;
        Ok(HostSysctl {
            name: name.to_string(),
            previous,
        })
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        let _ = run(
            "sysctl",
            &["-qw", &format!("{}={}", self.name, self.previous)],
        );
        if let Ok(mut list) = HOST_SYSCTLS.lock() {
            list.retain(|(n, _)| n != &self.name);
            write_journal(&list);
        }
    }
}

/// Restores host sysctls this process changed (for a Ctrl-C handler).
pub fn restore_host_sysctls() {
    let list: Vec<(String, String)> = HOST_SYSCTLS.lock().map(|l| l.clone()).unwrap_or_default();
    for (name, value) in list.into_iter().rev() {
        let _ = run("sysctl", &["-qw", &format!("{name}={value}")]);
    }
}
