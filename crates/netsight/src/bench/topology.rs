//! `bench --topology`: the mode run between two namespaces joined by veth, a
//! bridge, macvlan or ipvlan (netsight-lab builds them, with its guards), or
//! over each kind with a comparison table.

use std::io::{self, Write};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};
use netsight_lab::topology::{self, Role, Topology, PAIR_KINDS, PAIR_SERVER_ADDR};
use netsight_lab::LabError;

use crate::cli::{BenchArgs, BenchCommand};
use crate::exit;

const PORT: u16 = 9978;

/// This invocation's arguments without --topology and --server-flags: what the
/// client runs inside its namespace.
fn forwarded_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--topology" | "--server-flags" => {
                args.next();
            }
            _ if a.starts_with("--topology=") || a.starts_with("--server-flags=") => {}
            _ => out.push(a),
        }
    }
    out
}

fn mode_name(cmd: &BenchCommand) -> &'static str {
    match cmd {
        BenchCommand::Server { .. } => "server",
        BenchCommand::Stream { .. } => "stream",
        BenchCommand::Rr { .. } => "rr",
        BenchCommand::Udp { .. } => "udp",
        BenchCommand::Ab { .. } => "ab",
        BenchCommand::Crr { .. } => "crr",
        BenchCommand::Rrul { .. } => "rrul",
    }
}

/// A pair of `kind` with a server running in it.
struct Rig {
    topology: Topology,
    _server: topology::Background,
}

fn rig(kind: &str, server_flags: &[String]) -> Result<Rig, LabError> {
    let tag = format!("bench-{}-{}", kind, std::process::id());
    let topology = Topology::build_pair(&tag, kind)?;
    let exe = std::env::current_exe().map_err(|e| LabError::Spawn {
        command: "finding this binary".into(),
        source: e,
    })?;
    let mut args: Vec<String> = ["bench", "server", "--listen"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(format!("{PAIR_SERVER_ADDR}:{PORT}"));
    args.extend(server_flags.iter().cloned());
    let mut server = topology.spawn(Role::Server, &exe.to_string_lossy(), &args)?;
    server.wait_for_stderr("listening on")?;
    Ok(Rig {
        topology,
        _server: server,
    })
}

/// The client's command line in the client namespace.
fn client_command(rig: &Rig, args: &[String], json: bool) -> Result<Command> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &rig.topology.client])
        .arg(exe)
        .args(args);
    if json {
        c.arg("--json");
    }
    c.arg("--to").arg(format!("{PAIR_SERVER_ADDR}:{PORT}"));
    Ok(c)
}

pub fn run(args: &BenchArgs, kind: &str) -> Result<()> {
    let mode = mode_name(&args.command);
    let forwarded = forwarded_args();
    if mode == "server" {
        return Err(exit::Usage("bench --topology starts its own server: give a client mode (stream, rr, crr, udp, rrul, ab)".into()).into());
    }
    if forwarded
        .iter()
        .any(|a| a == "--to" || a.starts_with("--to="))
    {
        return Err(exit::Usage(
            "bench --topology: leave out --to (the server is the one it starts)".into(),
        )
        .into());
    }
    if kind == "all" && mode == "ab" {
        return Err(
            exit::Usage("bench --topology all ab: pick one topology for an A/B".into()).into(),
        );
    }
    let server_flags: Vec<String> = args
        .server_flags
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    // Ctrl-C, SIGTERM and SIGHUP leave no namespace or server behind.
    let _ = ctrlc::set_handler(|| {
        topology::stop_background();
        topology::cleanup_live();
        std::process::exit(130);
    });
    if kind != "all" {
        let rig = rig(kind, &server_flags).with_context(|| format!("building the {kind} pair"))?;
        let status = client_command(&rig, &forwarded, false)?
            .status()
            .context("running the client")?;
        drop(rig);
        if !status.success() {
            anyhow::bail!("the client in the {kind} pair failed ({status})");
        }
        return Ok(());
    }
    let json = forwarded.iter().any(|a| a == "--json");
    let child_args: Vec<String> = forwarded
        .into_iter()
        .filter(|a| a != "--json" && a != "--json-stream")
        .collect();
    let metrics = super::headline(mode).unwrap_or(&[]);
    let mut rows = Vec::new();
    for kind in PAIR_KINDS {
        if std::io::IsTerminal::is_terminal(&io::stderr()) {
            eprint!("\r\x1b[K{mode} over {kind} ...");
        }
        let row = match rig(kind, &server_flags) {
            Err(LabError::Unsupported(why)) => {
                serde_json::json!({"topology": kind, "unavailable": why})
            }
            Err(e) => serde_json::json!({"topology": kind, "error": e.to_string()}),
            Ok(rig) => {
                let out = client_command(&rig, &child_args, true)?
                    .stderr(Stdio::piped())
                    .output()
                    .context("running the client")?;
                match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    Ok(result) if out.status.success() => {
                        serde_json::json!({"topology": kind, "result": result})
                    }
                    _ => {
                        serde_json::json!({"topology": kind, "error": String::from_utf8_lossy(&out.stderr).trim()})
                    }
                }
            }
        };
        rows.push(row);
    }
    if std::io::IsTerminal::is_terminal(&io::stderr()) {
        eprint!("\r\x1b[K");
    }
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"mode": mode, "topologies": rows}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    write!(out, "{:<10}", "topology")?;
    for (_, name, _) in metrics {
        write!(out, " {name:>22}")?;
    }
    writeln!(out)?;
    for row in &rows {
        write!(out, "{:<10}", row["topology"].as_str().unwrap_or(""))?;
        if let Some(why) = row["unavailable"].as_str() {
            writeln!(out, " not available: {why}")?;
            continue;
        }
        if let Some(e) = row["error"].as_str() {
            writeln!(out, " failed: {e}")?;
            continue;
        }
        for (pointer, _, _) in metrics {
            match row["result"]
                .pointer(pointer)
                .and_then(serde_json::Value::as_f64)
            {
                Some(v) => write!(out, " {v:>22.1}")?,
                None => write!(out, " {:>22}", "-")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}
