//! netsight: the binary is wiring only: clap arguments → library call → renderer.
//! One module per verb; each parses nothing and prints through its own view.

mod analyze;
mod bench;
mod capture;
mod cli;
mod clock;
mod doctor;
mod exit;
mod explain;
mod interrupt;
mod lab;
mod product;
mod record;
mod report;
mod serve;
mod snapshot;
mod sockets;
mod stat;
mod term;
mod top;
mod trace;
mod tune;
mod xdp;

use std::process::ExitCode;

use clap::FromArgMatches;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let parsed = product::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; anything else is a usage error.
            let _ = e.print();
            return exit::code(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    // A safety net, so on every run: an unconfirmed apply past its deadline is undone.
    tune::revert_expired_apply();
    xdp::detach_expired();
    term::set_color(cli.color);
    let result = match cli.command {
        // Exit status carries the worst severity.
        Command::Doctor(args) => return doctor::run(&args).unwrap_or_else(|e| exit::failure(&e)),
        Command::Snapshot(args) => snapshot::run(&args),
        Command::Stat(args) => stat::run(&args),
        Command::Sockets(args) => sockets::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Lab(cmd) => lab::run(&cmd),
        Command::Trace(cmd) => trace::run(&cmd),
        Command::Tune(cmd) => tune::run(&cmd),
        Command::Analyze(args) => analyze::run(&args),
        Command::Capture(args) => capture::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Record(args) => record::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Xdp(cmd) => xdp::run(&cmd),
        Command::Top(args) => top::run(&args),
        Command::Completions { shell } => product::completions(shell),
        Command::Man => product::man(),
    };
    match result {
        Ok(()) => exit::code(exit::OK),
        Err(e) => exit::failure(&e),
    }
}
