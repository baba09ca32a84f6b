//! netsight-lab: classic Linux network performance problems reproduced in
//! network namespaces (client ── router ── server), each driven by bounded
//! traffic and diagnosed by `netsight doctor` inside the affected namespace.

pub mod agent;
pub mod scenarios;
pub mod topology;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use scenarios::{Scenario, SCENARIOS};
use topology::{Background, Role, Topology};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("running {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("agent: {0}")]
    Agent(String),
    #[error("unknown scenario {0:?}; see `netsight lab list`")]
    UnknownScenario(String),
    #[error("doctor in the {role:?} namespace gave no report: {detail}")]
    Doctor { role: Role, detail: String },
    #[error("{0}")]
    Internal(&'static str),
    #[error("scenario cannot run here: {0}")]
    Unsupported(String),
}

/// The netsight binary used for agents and doctor inside namespaces.
#[derive(Debug, Clone)]
pub struct Agent {
    pub exe: PathBuf,
}

impl Agent {
    /// Starts `netsight lab agent ARGS...` in the role's namespace.
    pub fn start(
        &self,
        topo: &Topology,
        role: Role,
        args: &[&str],
    ) -> Result<Background, LabError> {
        let mut full = vec!["lab".to_string(), "agent".to_string()];
        full.extend(args.iter().map(|a| a.to_string()));
        topo.spawn(role, &self.exe.to_string_lossy(), &full)
    }

    /// Runs an agent to completion pinned to one CPU (taskset).
    pub fn run_pinned(
        &self,
        topo: &Topology,
        role: Role,
        cpu: usize,
        args: &[&str],
    ) -> Result<String, LabError> {
        let exe = self.exe.to_string_lossy();
        let cpu = cpu.to_string();
        let mut full = vec!["-c", cpu.as_str(), exe.as_ref(), "lab", "agent"];
        full.extend_from_slice(args);
        topo.exec_ok(role, "taskset", &full)
    }

    /// Runs an agent to completion in the role's namespace.
    pub fn run(&self, topo: &Topology, role: Role, args: &[&str]) -> Result<String, LabError> {
        let mut full = vec!["lab", "agent"];
        full.extend_from_slice(args);
        let exe = self.exe.to_string_lossy();
        topo.exec_ok(role, &exe, &full)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LabResult {
    pub name: String,
    pub expected_rule: String,
    /// The namespace doctor ran in.
    pub observed_in: Role,
    /// The highest-ranked finding's rule id, if any.
    pub top_finding: Option<String>,
    pub detected: bool,
    /// The expected finding's evidence (null when not detected).
    pub evidence: Value,
    /// Every finding's rule id, for context.
    pub findings: Vec<String>,
    pub duration_s: f64,
}

/// Builds the topology, injects the fault, runs doctor in the affected namespace
/// while the load runs, and tears everything down (also on error).
pub fn run_scenario(
    s: &Scenario,
    exe: &Path,
    tag: &str,
    keep: bool,
) -> Result<LabResult, LabError> {
    let started = std::time::Instant::now();
    let agent = Agent {
        exe: exe.to_path_buf(),
    };
    let topo = Topology::build(tag)?;
    let host_changes = (s.setup)(&topo)?;
    let doctor = topo.spawn(
        s.observe,
        &exe.to_string_lossy(),
        &[
            "doctor".into(),
            "--interval".into(),
            s.doctor_interval_s.to_string(),
            "--json".into(),
        ],
    )?;
    // Let doctor take its first snapshot before the fault shows.
    std::thread::sleep(Duration::from_millis(300));
    let load = (s.drive)(&topo, &agent)?;
    let out = doctor.wait()?;
    drop(load);
    drop(host_changes);
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| LabError::Doctor {
        role: s.observe,
        detail: format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
    })?;
    let findings: Vec<&Value> = report["findings"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let expected = findings.iter().find(|f| f["rule_id"] == s.expected_rule);
    let result = LabResult {
        name: s.name.to_string(),
        expected_rule: s.expected_rule.to_string(),
        observed_in: s.observe,
        top_finding: findings
            .first()
            .and_then(|f| f["rule_id"].as_str())
            .map(String::from),
        detected: expected.is_some(),
        evidence: expected
            .map(|f| f["evidence"].clone())
            .unwrap_or(Value::Null),
        findings: findings
            .iter()
            .filter_map(|f| f["rule_id"].as_str())
            .map(String::from)
            .collect(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    if keep {
        // Leave the namespaces for inspection; `netsight lab down` removes them.
        std::mem::forget(topo);
    }
    Ok(result)
}

pub fn find(name: &str) -> Result<&'static Scenario, LabError> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| LabError::UnknownScenario(name.to_string()))
}
