//! `netsight explain NAME`: what a counter or sysctl means and which rules read it.

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::ExplainArgs;

pub fn run(args: &ExplainArgs) -> Result<()> {
    let e = netsight_doctor::explain::explain(&args.name)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &e)?;
        writeln!(out)?;
        return Ok(());
    }
    let layer = format!("{:?}", e.layer).to_lowercase();
    writeln!(out, "{}  ({}, layer {layer})", e.name, e.kind)?;
    writeln!(out, "  meaning:  {}", e.meaning)?;
    let label = if e.kind == "sysctl" {
        "change:"
    } else {
        "rising:"
    };
    writeln!(out, "  {label:<9} {}", e.interpretation)?;
    if !e.related_rules.is_empty() {
        writeln!(
            out,
            "  rules:    {}   (netsight doctor --list-rules)",
            e.related_rules.join(", ")
        )?;
    }
    for fix in &e.fixes {
        writeln!(out, "  fix:      {fix}")?;
    }
    Ok(())
}
