//! netsight-lab: classic Linux network performance problems reproduced in
//! network namespaces (client ── router ── server), each driven by bounded
//! traffic and diagnosed by `netsight doctor` inside the affected namespace.

pub mod agent;
pub mod scenarios;
pub mod topology;

use std::path::{Path, PathBuf};

use netsight_report::{Evidence, Report};
use serde::Serialize;
use serde_json::Value;

pub use scenarios::{PacketCheck, Scenario, SCENARIOS};
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
    #[error(transparent)]
    State(#[from] netsight_kernel::state_dir::StateError),
    #[error(transparent)]
    Sysctl(#[from] netsight_kernel::sysctl_tree::SysctlError),
    #[error("lab journal {path}: {detail}")]
    Journal {
        path: std::path::PathBuf,
        detail: String,
    },
}

/// The netsight binary used for agents and doctor inside namespaces.
#[derive(Debug, Clone)]
pub struct AgentLauncher {
    pub exe: PathBuf,
}

impl AgentLauncher {
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
    pub evidence: Option<Vec<Evidence>>,
    /// Every finding's rule id, for context.
    pub findings: Vec<String>,
    /// With `--fix`: the repair and its effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixResult>,
    /// With `--capture`: what `netsight analyze` found in the packets of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<PacketResult>,
    pub duration_s: f64,
}

/// What `lab run --capture` saw in the capture of the run.
#[derive(Debug, Clone, Serialize)]
pub struct PacketResult {
    pub file: PathBuf,
    pub captured_in: Role,
    pub expected_diagnosis: String,
    pub detected: bool,
    /// Every packet diagnosis id, for context.
    pub diagnoses: Vec<String>,
    /// The analysis' expert counts.
    pub expert: Value,
}

/// What `lab run --fix` saw after `netsight tune apply` in the scenario's namespace.
#[derive(Debug, Clone, Serialize)]
pub struct FixResult {
    pub profile: String,
    pub applied_in: Role,
    /// `netsight tune apply --json` output: what was changed.
    pub applied: Value,
    /// The expected finding is gone on the second run.
    pub fixed: bool,
    pub findings_after: Vec<String>,
    pub metric: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub improved: bool,
}

/// Builds the topology, injects the fault, runs doctor in the affected namespace
/// while the load runs, and tears everything down (also on error). With `fix`,
/// then applies the scenario's tune profile and runs the same load again.
pub fn run_scenario(
    s: &Scenario,
    exe: &Path,
    tag: &str,
    keep: bool,
    fix: bool,
    capture_dir: Option<&Path>,
) -> Result<LabResult, LabError> {
    let started = std::time::Instant::now();
    let agent = AgentLauncher {
        exe: exe.to_path_buf(),
    };
    let topo = Topology::build(tag)?;
    let host_changes = (s.setup)(&topo)?;
    let capture = match (capture_dir, &s.packets) {
        (Some(dir), Some(check)) => Some((dir.join(format!("{}.pcap", s.name)), check)),
        _ => None,
    };
    let report = observe(
        s,
        &topo,
        &agent,
        capture.as_ref().map(|(f, c)| (f.as_path(), c.capture_in)),
    )?;
    let findings = rule_ids(&report);
    // The expected finding on its own, or grouped as a symptom under its cause.
    let all = report.all_findings();
    let expected = all.iter().find(|f| f.rule_id == s.expected_rule);
    let mut result = LabResult {
        name: s.name.to_string(),
        expected_rule: s.expected_rule.to_string(),
        observed_in: s.observe,
        top_finding: findings.first().cloned(),
        detected: expected.is_some(),
        evidence: expected.map(|f| f.evidence.clone()),
        findings,
        fix: None,
        packets: None,
        duration_s: 0.0,
    };
    if let Some((file, check)) = &capture {
        let out = std::process::Command::new(exe)
            .args(["analyze", "--json"])
            .arg(file)
            .output()
            .map_err(|e| LabError::Doctor {
                role: check.capture_in,
                detail: format!("netsight analyze: {e}"),
            })?;
        let analysis: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| LabError::Doctor {
                role: check.capture_in,
                detail: format!(
                    "netsight analyze {}: {e}: {}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })?;
        let diagnoses: Vec<String> = analysis["diagnoses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["id"].as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        result.packets = Some(PacketResult {
            file: file.clone(),
            captured_in: check.capture_in,
            expected_diagnosis: check.diagnosis.to_string(),
            detected: diagnoses.iter().any(|d| d == check.diagnosis),
            diagnoses,
            expert: analysis["expert"].clone(),
        });
    }
    if fix {
        let repair = s.fix.as_ref().ok_or_else(|| {
            LabError::Unsupported(format!(
                "{} has no tune fix (see `netsight lab list`)",
                s.name
            ))
        })?;
        let exe_text = exe.to_string_lossy();
        let applied = topo.exec_ok(
            repair.role,
            &exe_text,
            &[
                &[
                    "tune",
                    "apply",
                    "--yes",
                    "--json",
                    "--interval",
                    "500ms",
                    "--profile",
                    repair.profile,
                ][..],
                repair.link,
            ]
            .concat(),
        )?;
        let after = observe(s, &topo, &agent, None);
        // The journal lives in /run, outside the namespace: roll back before the
        // namespace (and its values) go, so no journal outlives it.
        let _ = topo.exec_ok(repair.role, &exe_text, &["tune", "rollback"]);
        let after = after?;
        let findings_after = rule_ids(&after);
        let before_metric = (repair.measure)(&report);
        let after_metric = (repair.measure)(&after);
        result.fix = Some(FixResult {
            profile: repair.profile.to_string(),
            applied_in: repair.role,
            applied: serde_json::from_str(&applied).unwrap_or(Value::String(applied)),
            fixed: !findings_after.iter().any(|f| f == s.expected_rule),
            findings_after,
            metric: repair.metric.to_string(),
            improved: match (before_metric, after_metric) {
                (Some(b), Some(a)) if repair.higher_is_better => a > b,
                (Some(b), Some(a)) => a < b,
                _ => false,
            },
            before: before_metric,
            after: after_metric,
        });
    }
    drop(host_changes);
    result.duration_s = started.elapsed().as_secs_f64();
    if keep {
        // Leave the namespaces for inspection; `netsight lab down` removes them.
        std::mem::forget(topo);
    }
    Ok(result)
}

/// One doctor run in the observed namespace while the scenario's load runs.
/// Runs doctor in the observed namespace while the load runs; with `capture`, also records
/// the packets on that role's eth0, from before doctor starts until after its interval.
fn observe(
    s: &Scenario,
    topo: &Topology,
    agent: &AgentLauncher,
    capture: Option<(&Path, Role)>,
) -> Result<Report, LabError> {
    let mut recorder = match capture {
        Some((file, role)) => Some(topo.spawn(
            role,
            &agent.exe.to_string_lossy(),
            &[
                "capture".into(),
                "-i".into(),
                "eth0".into(),
                "-s".into(),
                "256".into(),
                "-w".into(),
                file.display().to_string(),
                "--duration".into(),
                (s.doctor_interval_s + 2.0).to_string(),
                "--json".into(),
            ],
        )?),
        None => None,
    };
    // The fault must not start before the capture's socket is attached (on a
    // busy host a flood was over before it was, and the file held only the
    // SYN/ACK retransmissions that followed); its duration leaves room for
    // doctor's start after this.
    if let Some(r) = recorder.as_mut() {
        r.wait_for_stderr("capturing on")?;
    }
    let mut doctor = topo.spawn(
        s.observe,
        &agent.exe.to_string_lossy(),
        &[
            "doctor".into(),
            "--interval".into(),
            s.doctor_interval_s.to_string(),
            "--json".into(),
        ],
    )?;
    // The fault starts once doctor's interval has: its first snapshot is taken.
    if let Err(e) = doctor.wait_for_stderr("first snapshot taken") {
        let out = doctor.wait()?;
        return Err(LabError::Doctor {
            role: s.observe,
            detail: format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    let load = (s.drive)(topo, agent)?;
    let out = doctor.wait()?;
    if let Some(recorder) = recorder {
        recorder.wait()?;
    }
    drop(load);
    serde_json::from_slice(&out.stdout).map_err(|e| LabError::Doctor {
        role: s.observe,
        detail: format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
    })
}

fn rule_ids(report: &Report) -> Vec<String> {
    report
        .all_findings()
        .iter()
        .map(|f| f.rule_id.clone())
        .collect()
}

pub fn find(name: &str) -> Result<&'static Scenario, LabError> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| LabError::UnknownScenario(name.to_string()))
}
