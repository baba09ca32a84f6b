//! `netsight top` driven as a user would, through tmux: keys in with send-keys,
//! the screen out with capture-pane. Each tmux server is the test's own
//! (-L netsight-top-PID-N) and is killed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{netsight, privileged, skip, ConnHolder, KillOnDrop, NetnsPair};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// What the pane's shell runs after top exits: its status, and whether the
/// terminal is back in canonical (cooked) mode.
const AFTER: &str = "echo EXIT=$?; stty -a | grep -o -- '-\\?icanon ' | sed 's/^/TTY:/'; sleep 120";

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session of `width`×`height` running `command` in sh.
    fn start(width: u16, height: u16, env: &[(&str, &str)], command: &str) -> Tmux {
        let socket = format!(
            "netsight-top-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let tmux = Tmux { socket };
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            "t".into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(format!("{command}; {AFTER}"));
        let out = tmux.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// The screen with its escape sequences (colours).
    fn screen_escaped(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-e", "-t", "t"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["display-message", "-p", "-t", "t", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Polls the screen until `ready` holds; panics with the last screen after `limit`.
    fn wait(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// top has exited: its status, and the terminal restored (cooked mode,
    /// the main screen, a visible cursor).
    fn assert_exited_restored(&self, status: &str) {
        let screen = self.wait("top to exit", Duration::from_secs(10), |s| {
            s.contains("TTY:")
        });
        assert!(
            screen.contains(&format!("EXIT={status}")),
            "exit status {status} expected:\n{screen}"
        );
        assert!(
            screen.contains("TTY:icanon"),
            "the terminal is left in raw mode:\n{screen}"
        );
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.display("#{cursor_flag}"), "1", "the cursor is hidden");
    }

    /// The pid of the program the pane's shell started.
    fn child_pid(&self) -> u32 {
        let shell: u32 = self.display("#{pane_pid}").parse().unwrap();
        let out = Command::new("pgrep")
            .args(["-P", &shell.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn have_tmux(test: &str) -> bool {
    if support::have("tmux") {
        return true;
    }
    skip(test, "needs `tmux` (run scripts/setup as root)");
    false
}

/// The interface row's transmit rate as drawn ("6.3G" → 6.3e9).
fn tx_rate(screen: &str, interface: &str) -> Option<f64> {
    let line = screen
        .lines()
        .find(|l| l.starts_with(&format!("│{interface} ")))?;
    let field = line.trim_start_matches('│').split_whitespace().nth(2)?;
    let (number, scale) = match field.chars().last()? {
        'k' => (&field[..field.len() - 1], 1e3),
        'M' => (&field[..field.len() - 1], 1e6),
        'G' => (&field[..field.len() - 1], 1e9),
        _ => (field, 1.0),
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[test]
fn transfer_and_fault_in_a_namespace_show_up_and_q_restores_the_terminal() {
    let test = "transfer_and_fault_in_a_namespace_show_up_and_q_restores_the_terminal";
    if !privileged(test, &["tmux", "iperf3", "python3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let freeze_dir =
        std::env::temp_dir().join(format!("netsight-top-freeze-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&freeze_dir);
    std::fs::create_dir_all(&freeze_dir).unwrap();
    let _remove = RemoveOnDrop(freeze_dir.clone());
    let mut server = KillOnDrop(pair.spawn(
        &pair.b,
        "iperf3",
        &["-s", "-1", "--forceflush", "-B", &pair.addr_b],
    ));
    let _server_out = support::wait_on_stdout(&mut server.0, "Server listening");

    let command = format!(
        "{} top --netns {} --interval 500ms --window 6s --freeze-dir {}",
        netsight(),
        pair.a,
        freeze_dir.display()
    );
    let tmux = Tmux::start(120, 36, &[], &command);
    tmux.wait("the first screen", Duration::from_secs(10), |s| {
        s.contains(&format!("netns {}", pair.a)) && s.contains("│va ")
    });

    // A bulk transfer: the veth and a rate in the Gbit/s or Mbit/s appear.
    let _client = KillOnDrop(pair.spawn(&pair.a, "iperf3", &["-c", &pair.addr_b, "-t", "30"]));
    let screen = tmux.wait(
        "va's transmit rate and the sender",
        Duration::from_secs(15),
        |s| tx_rate(s, "va").is_some_and(|r| r > 10e6) && s.contains("iperf3["),
    );
    assert!(
        screen.contains("ESTAB"),
        "the transfer's socket is listed:\n{screen}"
    );
    assert!(
        screen.contains(&format!("{}:5201", pair.addr_b)),
        "{screen}"
    );

    // A fault in that namespace: a UDP receiver whose buffer overflows.
    // The start of the rule's title (the pane may cut the rest).
    let title = "UDP datagrams dropped";
    let holder = ConnHolder::start(&pair.a, &["udp-overflow"]);
    tmux.wait("the finding", Duration::from_secs(10), |s| {
        s.contains(title)
    });

    // Enter explains it (it is the worst, so first). The 6 s window leaves the
    // burst on screen through these steps and the freeze.
    tmux.keys(&["Tab", "Enter"]);
    let screen = tmux.wait("the explanation", Duration::from_secs(5), |s| {
        s.contains("Evidence:")
    });
    assert!(screen.contains("Udp.RcvbufErrors"), "{screen}");
    assert!(screen.contains("(udp.receive_buffer_errors)"), "{screen}");
    // The overlay must be gone before the next key: an ESC followed at once by
    // a key reads as Alt+key in a terminal.
    tmux.keys(&["Escape"]);
    tmux.wait("the explanation to close", Duration::from_secs(5), |s| {
        !s.contains("Evidence:")
    });

    // f writes the window on screen as a bundle; doctor finds the same fault in it.
    tmux.keys(&["f"]);
    let screen = tmux.wait("the freeze line", Duration::from_secs(5), |s| {
        s.contains("froze ")
    });
    let bundle = std::fs::read_dir(&freeze_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "nsb"))
        .unwrap_or_else(|| panic!("no bundle in {}:\n{screen}", freeze_dir.display()));
    let out = Command::new(netsight())
        .args(["doctor", "--json", "--from"])
        .arg(&bundle)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --from {}: {e}: {}",
            bundle.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        support::finding(&report, "udp.receive_buffer_errors").is_some(),
        "the frozen bundle gives the finding: {report}"
    );
    drop(holder);

    // The window slides past the burst: the finding goes away, the transfer goes on.
    tmux.wait("the finding to clear", Duration::from_secs(15), |s| {
        !s.contains(title)
    });

    tmux.keys(&["q"]);
    tmux.assert_exited_restored("0");
}

/// Removes a test's directory however the test ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sigterm_panic_resize_and_no_color() {
    let test = "sigterm_panic_resize_and_no_color";
    if !have_tmux(test) {
        return;
    }
    let command = format!("{} top --interval 200ms", netsight());

    // Colour by default on a terminal; none at all with NO_COLOR.
    let tmux = Tmux::start(100, 30, &[], &command);
    tmux.wait("the first sample", Duration::from_secs(10), |s| {
        s.contains("│lo ")
    });
    let escaped = tmux.screen_escaped();
    assert!(
        escaped.contains("38;5;2m") || escaped.contains("[32m"),
        "the focused pane is green: {escaped:?}"
    );

    // Resizing redraws at the new size, and a too-small terminal says so.
    assert!(tmux
        .cmd(&["resize-window", "-t", "t", "-x", "70", "-y", "20"])
        .status
        .success());
    tmux.wait("the redraw at 70 columns", Duration::from_secs(5), |s| {
        s.lines()
            .any(|l| l.starts_with('└') && l.chars().count() <= 70 && l.trim_end().ends_with('┘'))
            && s.contains("Interfaces (")
    });
    assert!(tmux
        .cmd(&["resize-window", "-t", "t", "-x", "50", "-y", "12"])
        .status
        .success());
    tmux.wait("the too-small note", Duration::from_secs(5), |s| {
        s.contains("needs at least 60×16")
    });
    assert!(tmux
        .cmd(&["resize-window", "-t", "t", "-x", "100", "-y", "30"])
        .status
        .success());
    tmux.wait("the panes again", Duration::from_secs(5), |s| {
        s.contains("TCP/UDP health")
    });

    // SIGTERM: a clean exit with the terminal restored.
    let pid = tmux.child_pid();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    tmux.assert_exited_restored("0");
    drop(tmux);

    let tmux = Tmux::start(100, 30, &[("NO_COLOR", "1")], &command);
    tmux.wait("the first sample", Duration::from_secs(10), |s| {
        s.contains("│lo ")
    });
    let escaped = tmux.screen_escaped();
    assert!(
        !escaped.contains("38;5;") && !escaped.contains("48;5;"),
        "NO_COLOR: a colour drawn: {escaped:?}"
    );
    for colour in 31..38 {
        assert!(
            !escaped.contains(&format!("[{colour}m")),
            "NO_COLOR: colour {colour} drawn: {escaped:?}"
        );
    }
    tmux.keys(&["q"]);
    tmux.assert_exited_restored("0");
    drop(tmux);

    // The terminal goes away (an SSH session dropped, the tmux server killed):
    // top exits instead of reading a hung-up terminal forever.
    let tmux = Tmux::start(100, 30, &[], &command);
    tmux.wait("the first sample", Duration::from_secs(10), |s| {
        s.contains("│lo ")
    });
    let pid = tmux.child_pid();
    let _ = tmux.cmd(&["kill-server"]);
    let gone = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(
            Instant::now() < deadline,
            "top ({pid}) still runs 10 s after its terminal hung up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(tmux);

    // A panic: the message is printed and the terminal restored. (The trigger
    // exists in debug builds only.)
    if cfg!(debug_assertions) {
        let tmux = Tmux::start(100, 30, &[("NETSIGHT_TOP_TEST_PANIC", "1")], &command);
        tmux.assert_exited_restored("101");
        assert!(
            tmux.screen().contains("NETSIGHT_TOP_TEST_PANIC is set"),
            "{}",
            tmux.screen()
        );
    } else {
        skip(test, "the panic trigger is compiled into debug builds only");
    }
}

#[test]
fn hostile_flags_are_usage_errors() {
    for (args, expect) in [
        (vec!["--interval", "10ms"], "--interval"),
        (vec!["--interval", "2h"], "--interval"),
        (vec!["--window", "100ms"], "--window"),
        (vec!["--interval", "abc"], "--interval"),
        (vec!["--freeze-dir", "/nonexistent/dir"], "not a directory"),
        (vec!["--count", "0"], "--count"),
        (
            vec!["--netns", "no-such-namespace-xyz", "--json"],
            "no such network namespace",
        ),
    ] {
        let out = Command::new(netsight())
            .arg("top")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    // Not a terminal, no --json: told what to do instead of drawing into a pipe.
    let out = Command::new(netsight())
        .args(["top", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json"));
}

#[test]
fn json_stream_counts_refreshes_and_carries_the_panes() {
    let out = Command::new(netsight())
        .args(["top", "--json", "--count", "3", "--interval", "200ms"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["samples"], i as u64 + 1);
        assert_eq!(v["namespace"], "host");
        assert!(v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "lo"));
        for key in ["health", "top_sockets", "processes", "findings", "window_s"] {
            assert!(v.get(key).is_some(), "{key} missing: {v}");
        }
    }
    let interval = lines[2]["interval_s"].as_f64().unwrap();
    assert!(
        (0.15..1.0).contains(&interval),
        "refreshes 200 ms apart, got {interval}"
    );
    let window = lines[2]["window_s"].as_f64().unwrap();
    assert!(
        window > interval,
        "the window spans both intervals: {window}"
    );
}
