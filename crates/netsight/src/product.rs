//! The CLI as a product, all from the one clap definition: `--version` with the
//! build and what this host lets it do, shell completions, the man page.

use std::io::{self, Write};

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// `netsight --version`: version, commit, build date, and the optional parts
/// (kernel BTF for tracers, libpcap for capture filters) as found here.
pub fn long_version() -> String {
    let found = |yes: bool, what: &str, missing: &str| {
        if yes {
            format!("found ({what})")
        } else {
            format!("not found: {missing}")
        }
    };
    format!(
        "{}\nkernel BTF: {}\nlibpcap:    {}",
        Cli::command().get_version().unwrap_or("?"),
        found(
            netsight_kernel::kernel_image::has_btf(),
            "trace and doctor --deep work",
            "trace needs a kernel with CONFIG_DEBUG_INFO_BTF"
        ),
        match netsight_packet::filter::libpcap_found() {
            Some(lib) => format!("found ({lib}: capture filters work)"),
            None => found(
                false,
                "",
                "capture works without a FILTER (install libpcap0.8)"
            ),
        }
    )
}

/// The clap command; its long version (which probes BTF and libpcap) only when
/// `--version` is asked for, before any verb.
pub fn command() -> clap::Command {
    let asks_version = std::env::args()
        .skip(1)
        .take_while(|a| a.starts_with('-'))
        .any(|a| a == "--version" || a == "-V");
    let cmd = Cli::command();
    if asks_version {
        cmd.long_version(long_version())
    } else {
        cmd
    }
}

pub fn completions(shell: Shell) -> Result<()> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Generated in memory: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "netsight", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// One page for the whole tool: every verb's options and help.
pub fn man() -> Result<()> {
    let mut out = io::stdout().lock();
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    // Each verb's own options, as `netsight VERB --help` shows them.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SH \"NETSIGHT {}\"", sub.get_name().to_uppercase())?;
        let text = sub
            .clone()
            .bin_name(format!("netsight {}", sub.get_name()))
            .render_long_help();
        writeln!(out, ".nf")?;
        for line in text.to_string().lines() {
            writeln!(out, "{}", roff_escape(line))?;
        }
        writeln!(out, ".fi")?;
    }
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    out.flush()?;
    Ok(())
}

/// A line of help as literal roff text: backslashes doubled, a leading `.` or `'`
/// protected so it is not read as a request.
fn roff_escape(line: &str) -> String {
    let escaped = line.replace('\\', "\\e");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
