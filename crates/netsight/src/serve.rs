//! `netsight serve`: wiring for netsight-serve (arguments, the loopback default,
//! the stop signal, the readiness line).

use anyhow::Result;

use crate::cli::ServeArgs;
use crate::{exit, interrupt};

pub fn run(args: &ServeArgs) -> Result<()> {
    if args.print_alert_rules {
        let rules = netsight_doctor::rules::all();
        print!(
            "{}",
            netsight_serve::alerts::rule_file(&rules, &args.alert_for, &args.alert_interval)
        );
        return Ok(());
    }
    if args.print_dashboard {
        println!(
            "{}",
            serde_json::to_string_pretty(&netsight_serve::dashboard::dashboard())?
        );
        return Ok(());
    }
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(exit::Usage(format!(
            "--listen {}: not a loopback address; the metrics name processes, ports and findings, so serving them beyond this host must be asked for with --allow-remote",
            args.listen
        ))
        .into());
    }
    for group in &args.exclude {
        if !netsight_serve::metrics::GROUPS.contains(&group.as_str()) {
            return Err(exit::Usage(format!(
                "--exclude {group}: not a group (one of {})",
                netsight_serve::metrics::GROUPS.join(", ")
            ))
            .into());
        }
    }
    if args.interval < std::time::Duration::from_secs(1) {
        return Err(
            exit::Usage("--interval: at least 1s (each sample reads every source)".into()).into(),
        );
    }
    let source_budget = args
        .source_budget
        .unwrap_or_else(|| args.interval.min(std::time::Duration::from_secs(3)));
    if source_budget.is_zero() || source_budget > args.interval {
        return Err(exit::Usage(format!(
            "--source-budget {source_budget:?}: between 1ms and --interval ({:?})",
            args.interval
        ))
        .into());
    }
    let web = match &args.web_config_file {
        Some(path) => Some(
            netsight_serve::web_config::load(path)
                .map_err(|e| exit::Usage(format!("--web-config-file {e}")))?,
        ),
        None => None,
    };
    interrupt::install();
    let options = netsight_serve::Options {
        listen: args.listen,
        interval: args.interval,
        window: args.window,
        limits: netsight_serve::Limits {
            interfaces: args.max_interfaces,
            listeners: args.max_listeners,
            findings: args.max_findings,
            exclude: args.exclude.clone(),
        },
        max_connections: usize::from(args.max_connections),
        source_budget,
        web,
        user: Some(args.user.clone()),
    };
    let scheme = if options.web.as_ref().is_some_and(|w| w.tls.is_some()) {
        "https"
    } else {
        "http"
    };
    eprintln!("netsight serve: taking the first sample");
    netsight_serve::serve(&options, &interrupt::requested, |bound, privileges| {
        eprintln!(
            "netsight serve: listening on {scheme}://{bound}/metrics (a sample every {:.0} s, rules over {:.0} s; {privileges}{}); Ctrl-C stops",
            options.interval.as_secs_f64(),
            options.window.max(options.interval).as_secs_f64(),
            if options.web.as_ref().is_some_and(|w| w.auth.is_some()) { "; basic auth" } else { "" },
        );
    })?;
    eprintln!("netsight serve: stopped");
    Ok(())
}
