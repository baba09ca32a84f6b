//! `netsight lab`: fault scenarios in namespaces, each diagnosed by doctor.

use std::io::{self, Write};

use anyhow::{bail, Result};

use crate::cli::LabCommand;
use crate::exit;

pub fn run(cmd: &LabCommand) -> Result<()> {
    use netsight_lab::{run_scenario, topology, SCENARIOS};
    let mut out = io::stdout().lock();
    match cmd {
        LabCommand::Agent { args } => netsight_lab::agent::run(args)?,
        LabCommand::Down => {
            let removed = topology::down()?;
            writeln!(
                out,
                "cleaned up {} lab leftover(s){}",
                removed.len(),
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", removed.join(" "))
                }
            )?;
        }
        LabCommand::List { json } => {
            if *json {
                serde_json::to_writer_pretty(&mut out, SCENARIOS)?;
                writeln!(out)?;
            } else {
                for s in SCENARIOS {
                    writeln!(
                        out,
                        "{:<22} expects {:<28} {}",
                        s.name, s.expected_rule, s.summary
                    )?;
                }
            }
        }
        LabCommand::Run {
            name,
            json,
            keep,
            fix,
            capture,
        } => {
            let scenarios: Vec<&netsight_lab::Scenario> = if name == "all" {
                SCENARIOS
                    .iter()
                    .filter(|s| !*fix || s.fix.is_some())
                    .collect()
            } else {
                vec![netsight_lab::find(name).map_err(|e| exit::Usage(e.to_string()))?]
            };
            // Ctrl-C, SIGTERM and SIGHUP leave no host sysctl changed and, unless
            // --keep, no namespace behind.
            let keep_namespaces = *keep;
            let _ = ctrlc::set_handler(move || {
                topology::restore_host_sysctls();
                topology::stop_background();
                if keep_namespaces {
                    eprintln!("netsight: interrupted; namespaces kept (--keep): `netsight lab down` removes them");
                } else {
                    topology::cleanup_live();
                }
                std::process::exit(130);
            });
            let exe = std::env::current_exe()?;
            let mut missed = 0;
            for s in scenarios {
                let tag = format!("{}-{}", s.name, std::process::id());
                if let Some(dir) = capture {
                    std::fs::create_dir_all(dir)?;
                }
                let result = run_scenario(s, &exe, &tag, *keep, *fix, capture.as_deref());
                // A stop in progress: the signal handler cleans up and exits (130).
                while topology::stopping() {
                    std::thread::park();
                }
                let result = result?;
                missed += usize::from(!result.detected);
                missed += usize::from(result.packets.as_ref().is_some_and(|p| !p.detected));
                let unfixed = result
                    .fix
                    .as_ref()
                    .is_some_and(|f| !(f.fixed && f.improved));
                missed += usize::from(unfixed);
                if *json {
                    serde_json::to_writer(&mut out, &result)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{:<22} {:<9} expected {:<28} top finding {:<28} ({:.1} s)",
                        result.name,
                        if result.detected {
                            "DETECTED"
                        } else {
                            "MISSED"
                        },
                        result.expected_rule,
                        result.top_finding.as_deref().unwrap_or("-"),
                        result.duration_s
                    )?;
                    if let Some(p) = &result.packets {
                        writeln!(
                            out,
                            "{:<22} {:<9} packets ({}): expected {:<19} diagnoses {}",
                            "",
                            if p.detected { "DIAGNOSED" } else { "MISSED" },
                            p.file.display(),
                            p.expected_diagnosis,
                            if p.diagnoses.is_empty() {
                                "-".to_string()
                            } else {
                                p.diagnoses.join(", ")
                            }
                        )?;
                    }
                    if let Some(f) = &result.fix {
                        writeln!(
                            out,
                            "{:<22} {:<9} after tune --profile {} in {:?}: {} {:.1} -> {:.1}",
                            "",
                            if f.fixed { "FIXED" } else { "NOT FIXED" },
                            f.profile,
                            f.applied_in,
                            f.metric,
                            f.before.unwrap_or(f64::NAN),
                            f.after.unwrap_or(f64::NAN)
                        )?;
                    }
                }
            }
            if missed > 0 {
                bail!("{missed} scenario(s) not detected (or, with --fix, not fixed)");
            }
        }
    }
    Ok(())
}
