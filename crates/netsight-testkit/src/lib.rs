//! One way for every netsight test to skip: `SKIPPED <test>: <reason>` on stderr
//! (past the harness's capture, so a skip is always seen), or, when CI sets
//! NETSIGHT_REQUIRE_PRIVILEGED_TESTS, a failure: in CI nothing may skip.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// Set by CI: a test that cannot run is a failure there, not a skip.
pub const REQUIRE_ENV: &str = "NETSIGHT_REQUIRE_PRIVILEGED_TESTS";

/// True when CI demands that every test runs.
pub fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some()
}

/// Skips `test` for `reason`, or panics when skipping is not allowed.
pub fn skip(test: &str, reason: &str) {
    let msg = format!("SKIPPED {test}: {reason}");
    assert!(!required(), "{msg} ({REQUIRE_ENV} is set)");
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Like `skip`, said once per test binary (property tests run many cases).
pub fn skip_once(test: &str, reason: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| skip(test, reason));
}

/// True when the test may run as root with `tools` on PATH; otherwise skips (see `skip`).
pub fn privileged(test: &str, tools: &[&str]) -> bool {
    let mut reasons = Vec::new();
    if !is_root() {
        reasons.push("needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN for `ip netns`)".to_string());
    }
    for tool in tools {
        if !have(tool) {
            reasons.push(format!("needs `{tool}` (run scripts/setup as root)"));
        }
    }
    if reasons.is_empty() {
        return true;
    }
    skip(test, &reasons.join("; "));
    false
}

/// Effective uid 0, read from /proc/self/status (no unsafe in tests).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// True when `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The shared folder beside the checkout (`../shared` relative to the repository),
/// or $NETSIGHT_SHARED.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("NETSIGHT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}
