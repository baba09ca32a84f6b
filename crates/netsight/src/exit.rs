//! Exit statuses, the same for every verb (documented in `--help` and the README):
//! scripts and monitors can tell a finding from a failure from a typo.

use std::io;
use std::process::ExitCode;

/// Success; for doctor: no finding above info.
pub const OK: u8 = 0;
/// doctor: the worst finding is a warning.
pub const WARNING: u8 = 1;
/// doctor: the worst finding is critical.
pub const CRITICAL: u8 = 2;
/// The command could not do its job (missing privilege, unreadable input, kernel error).
pub const FAILED: u8 = 3;
/// The input file is truncated or corrupt: what could be read was processed and printed.
pub const DAMAGED_INPUT: u8 = 4;
/// Bad command line (unknown flag, invalid value): sysexits' EX_USAGE.
pub const USAGE: u8 = 64;

/// An input was damaged after part of it was used; main turns it into DAMAGED_INPUT.
#[derive(Debug)]
pub struct DamagedInput(pub String);

impl std::fmt::Display for DamagedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "damaged input: {}", self.0)
    }
}

impl std::error::Error for DamagedInput {}

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

/// A bad argument found after clap (sar-style positional words, filters): USAGE.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Prints the error once and picks the exit status for it.
pub fn failure(e: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(e) {
        return code(OK);
    }
    eprintln!("netsight: {}", error_text(e));
    if e.downcast_ref::<DamagedInput>().is_some() {
        code(DAMAGED_INPUT)
    } else if e.downcast_ref::<Usage>().is_some() {
        code(USAGE)
    } else {
        code(FAILED)
    }
}

/// The error and its causes, each said once: library errors often include their
/// source in their own message, and anyhow's chain would repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}

/// A closed pipe (`netsight ... | head`) is a normal way to stop reading.
/// serde_json wraps the io::Error without exposing it as a source.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| c.downcast_ref::<serde_json::Error>()?.io_error_kind())
            == Some(io::ErrorKind::BrokenPipe)
    })
}
