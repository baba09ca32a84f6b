//! `netsight top`: the terminal around netsight-top. A sampling thread per
//! namespace shown (inside it, for another namespace) sends raw snapshots; the
//! main thread turns them into views, draws, and reads keys. The terminal is
//! restored on every way out: q, Ctrl-C, SIGTERM/SIGHUP (the stop flag), an
//! error (the guard's Drop) and a panic (ratatui's hook).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use netsight_kernel::collect::SourcePart;
use netsight_kernel::netns::NetnsInfo;
use netsight_kernel::{LiveSource, RawSnapshot};
use netsight_top::state::Overlay;
use netsight_top::{Action, SocketActivity, SocketCadence, Tracker, UiState, View, Window};
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use crate::cli::TopArgs;
use crate::doctor::netns::{namespace_label, select, HOST_WIDE_RULES};
use crate::{exit, interrupt, term};

/// The host's own namespace, as the picker and --json name it.
const HOST: &str = "host";

/// Configuration (sysctls, ethtool settings) is read anew every this many samples;
/// in between only counters are (what doctor does over its interval).
const CONFIG_EVERY: u32 = 10;

/// The socket table is read again at least every this many samples, moved or not.
const SOCKETS_AT_LEAST_EVERY: u32 = 30;

/// How long --json's loop may take to see a stop request.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The screen's loop wakes on a key, a sample, a resize or a stop (see `Wake`);
/// this bounds the sleep should a wake-up ever be missed.
const IDLE_WAKE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Target {
    Host,
    Netns(NetnsInfo),
}

enum Msg {
    Sample(String, RawSnapshot),
    Failed(String, String),
}

/// One namespace's sampling thread; dropping it stops the thread after its
/// current collection.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// What the screen's loop sleeps on besides the terminal: a byte arrives when a
/// sampler sends, when the terminal is resized (SIGWINCH) and on a stop request.
/// The loop sleeps until something happened rather than waking ten times a
/// second to look (measured on a VM, those wake-ups cost half as much as drawing).
struct Wake {
    read: UnixStream,
    write: Arc<UnixStream>,
}

impl Wake {
    fn new() -> Result<Wake> {
        let (read, write) = UnixStream::pair().context("making the screen's wake-up socket")?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGWINCH, write.try_clone()?)
            .context("watching for terminal resizes (SIGWINCH)")?;
        let write = Arc::new(write);
        interrupt::wake_on_stop(Arc::clone(&write));
        Ok(Wake { read, write })
    }

    /// Empties the socket: everything is looked at after each wake-up.
    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// CPU time this process has used (all threads: a socket read's own helper
/// thread counts, and so, a little, does the screen).
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn start_sampler(
    label: String,
    target: Target,
    interval: Duration,
    sockets: bool,
    tx: mpsc::SyncSender<Msg>,
    waker: Arc<UnixStream>,
) -> Result<Sampler> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let handle = std::thread::Builder::new()
        .name(format!("top-{label}"))
        .spawn(move || {
            let source = match &target {
                Target::Host => LiveSource::default(),
                Target::Netns(info) => {
                    if let Err(e) = netsight_kernel::netns::enter_for_this_thread(&info.handle) {
                        let why = if e.kind() == io::ErrorKind::PermissionDenied {
                            format!("entering it needs CAP_SYS_ADMIN (run as root): {e}")
                        } else {
                            format!("entering it: {e}")
                        };
                        let _ = tx.send(Msg::Failed(label, why));
                        interrupt::wake(&waker);
                        return;
                    }
                    // Owners from every process (the BPF iterator when privileged):
                    // the namespace's process list would go stale as processes start.
                    LiveSource::for_this_thread()
                }
            };
            let mut config: Option<RawSnapshot> = None;
            let mut taken: u32 = 0;
            let mut next = Instant::now();
            let mut cadence = SocketCadence::new(interval * SOCKETS_AT_LEAST_EVERY);
            while !stopped.load(Ordering::Relaxed) {
                let mut raw = match &config {
                    Some(first) if !taken.is_multiple_of(CONFIG_EVERY) => {
                        source.collect_after(first)
                    }
                    _ => {
                        let raw = source.collect();
                        config = Some(raw.clone());
                        raw
                    }
                };
                taken = taken.wrapping_add(1);
                // The socket table only when something moved and its cost allows.
                if sockets {
                    let activity = SocketActivity::of_raw(&raw);
                    let now = Instant::now();
                    if cadence.due(now, &activity) {
                        let before = process_cpu();
                        let part = source.collect_part(SourcePart::Sockets, &raw, None);
                        cadence.read(now, process_cpu().saturating_sub(before), activity);
                        raw.merge(part);
                    }
                }
                // A full queue means the screen is behind: this sample is dropped.
                match tx.try_send(Msg::Sample(label.clone(), raw)) {
                    Ok(()) => interrupt::wake(&waker),
                    Err(mpsc::TrySendError::Full(_)) => {}
                    Err(mpsc::TrySendError::Disconnected(_)) => return,
                }
                // On the interval's grid; a slow collection skips ticks rather than bunching them.
                next += interval;
                let now = Instant::now();
                if next < now {
                    next = now + interval;
                }
                while !stopped.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    std::thread::park_timeout(next - now);
                }
            }
        })
        .context("starting a sampling thread")?;
    Ok(Sampler {
        stop,
        thread: handle.thread().clone(),
    })
}

/// Every namespace the picker offers, by label, the host first.
fn namespaces() -> BTreeMap<String, Target> {
    let own = netsight_kernel::netns::self_inode();
    let mut out = BTreeMap::new();
    out.insert(HOST.to_string(), Target::Host);
    for info in netsight_kernel::netns::list() {
        if Some(info.inode) != own {
            out.insert(namespace_label(&info), Target::Netns(info));
        }
    }
    out
}

fn picker_labels(targets: &BTreeMap<String, Target>) -> Vec<String> {
    let mut labels: Vec<String> = targets.keys().filter(|l| *l != HOST).cloned().collect();
    labels.insert(0, HOST.to_string());
    labels
}

fn check(args: &TopArgs) -> Result<()> {
    let ms = |d: Duration| d.as_millis();
    if ms(args.interval) < 100 || args.interval > Duration::from_secs(3600) {
        return Err(exit::Usage(format!(
            "--interval {} ms: give 100ms to 1h",
            ms(args.interval)
        ))
        .into());
    }
    if args.window < args.interval || args.window > Duration::from_secs(3600) {
        return Err(exit::Usage(format!(
            "--window {:.1} s: give at least --interval ({:.1} s) and at most 1h",
            args.window.as_secs_f64(),
            args.interval.as_secs_f64()
        ))
        .into());
    }
    if let Some(dir) = &args.freeze_dir {
        if !dir.is_dir() {
            return Err(
                exit::Usage(format!("--freeze-dir {}: not a directory", dir.display())).into(),
            );
        }
    }
    let on_terminal = io::stdout().is_terminal() && io::stdin().is_terminal();
    if !args.json && !on_terminal {
        return Err(exit::Usage(
            "netsight top draws on a terminal and stdin or stdout is not one; --json gives a stream of refreshes instead".into(),
        )
        .into());
    }
    Ok(())
}

pub fn run(args: &TopArgs) -> Result<()> {
    check(args)?;
    let mut targets = namespaces();
    // Which namespace is shown first, and which are sampled from the start.
    let (shown, sample_all) = match args.netns.as_deref() {
        None => (HOST.to_string(), false),
        Some("all") => (HOST.to_string(), true),
        Some(which) => {
            let found = select(
                which,
                targets
                    .values()
                    .filter_map(|t| match t {
                        Target::Netns(info) => Some(info.clone()),
                        Target::Host => None,
                    })
                    .collect(),
                None,
            )?;
            let first = found.first().context("no namespace selected")?;
            (namespace_label(first), false)
        }
    };
    if (sample_all || shown != HOST) && !netsight_kernel::netns::can_enter_all() {
        bail!("--netns: entering another network namespace needs CAP_SYS_ADMIN (run as root)");
    }
    // From here on, only what sampling uses, plus entering namespaces for the picker.
    let mut keep = netsight_kernel::privilege::SAMPLING_CAPABILITIES.to_vec();
    keep.push((21, "CAP_SYS_ADMIN"));
    netsight_kernel::privilege::keep_only(&keep, Some("root"))
        .map_err(|e| anyhow::anyhow!("giving up privilege: {e}"))?;
    interrupt::install();
    let wake = Wake::new()?;

    let (tx, rx) = mpsc::sync_channel(4);
    let mut samplers: HashMap<String, Sampler> = HashMap::new();
    let labels: Vec<String> = if sample_all {
        picker_labels(&targets)
    } else {
        vec![shown.clone()]
    };
    for label in labels {
        if let Some(target) = targets.get(&label) {
            let sampler = start_sampler(
                label.clone(),
                target.clone(),
                args.interval,
                !args.no_sockets,
                tx.clone(),
                Arc::clone(&wake.write),
            )?;
            samplers.insert(label, sampler);
        }
    }
    let mut trackers: HashMap<String, Tracker> = HashMap::new();

    if args.json {
        return json_loop(args, &shown, rx);
    }
    let mut ui = UiState::new(
        shown.clone(),
        term::color_stdout(),
        args.interval.as_secs_f64(),
        args.window.as_secs_f64(),
    );
    ui.namespaces = picker_labels(&targets);
    let mut screen = Screen::enter()?;
    let mut shown_view = Arc::new(View {
        namespace: shown.clone(),
        ..View::default()
    });
    let mut shown_window = Window::default();
    // Shared, not copied: a view holds every socket's row.
    let mut last_views: HashMap<String, Arc<View>> = HashMap::new();
    let mut refreshes: u64 = 0;
    let mut dirty = true;
    let freeze_dir = args
        .freeze_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    while !interrupt::requested() {
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Sample(label, raw) => {
                    let drop_rules: &'static [&'static str] =
                        if label == HOST { &[] } else { HOST_WIDE_RULES };
                    let tracker = trackers
                        .entry(label.clone())
                        .or_insert_with(|| Tracker::new(label.clone(), args.window, drop_rules));
                    let view = Arc::new(tracker.push(raw));
                    if label == ui.namespace {
                        refreshes += 1;
                        if !ui.paused {
                            shown_view = Arc::clone(&view);
                            shown_window = tracker.window();
                            ui.clamp(&shown_view);
                            dirty = true;
                        }
                    }
                    last_views.insert(label, view);
                }
                Msg::Failed(label, why) => {
                    if label == ui.namespace {
                        ui.status = Some(format!("netns {label}: {why}"));
                        dirty = true;
                    }
                }
            }
        }
        if args.count.is_some_and(|n| refreshes >= n) {
            break;
        }
        if dirty {
            screen.draw(&shown_view, &ui)?;
            dirty = false;
            // Debug builds only: lets the tests see the terminal restored after a panic.
            if cfg!(debug_assertions) && std::env::var_os("NETSIGHT_TOP_TEST_PANIC").is_some() {
                panic!("NETSIGHT_TOP_TEST_PANIC is set");
            }
        }
        if screen.resized()? {
            dirty = true;
        }
        if !input_ready(IDLE_WAKE, &wake)? {
            continue;
        }
        match event::read().context("reading the terminal")? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                ui.status = None;
                match ui.handle_key(key, &shown_view) {
                    Action::Quit => break,
                    Action::Freeze => {
                        ui.status = Some(match freeze(&freeze_dir, &ui.namespace, &shown_window) {
                            Ok(line) => line,
                            Err(e) => format!("freeze failed: {e:#}"),
                        });
                    }
                    Action::Switch(label) => {
                        if !samplers.contains_key(&label) {
                            if !sample_all {
                                // Only the namespace on screen is sampled.
                                samplers.clear();
                            }
                            if let Some(target) = targets.get(&label) {
                                let sampler = start_sampler(
                                    label.clone(),
                                    target.clone(),
                                    args.interval,
                                    !args.no_sockets,
                                    tx.clone(),
                                    Arc::clone(&wake.write),
                                )?;
                                samplers.insert(label.clone(), sampler);
                            }
                        }
                        shown_view = last_views.get(&label).cloned().unwrap_or_else(|| {
                            Arc::new(View {
                                namespace: label.clone(),
                                ..View::default()
                            })
                        });
                        shown_window = trackers
                            .get(&label)
                            .map(Tracker::window)
                            .unwrap_or_default();
                    }
                    Action::Redraw | Action::None => {}
                }
                // The picker lists what exists when it opens.
                if matches!(ui.overlay, Overlay::Picker(_)) && key.code == event::KeyCode::Char('n')
                {
                    targets = namespaces();
                    ui.namespaces = picker_labels(&targets);
                }
                dirty = true;
            }
            _ => {}
        }
    }
    drop(screen);
    Ok(())
}

/// `--json`: one line per refresh of the shown namespace.
fn json_loop(args: &TopArgs, shown: &str, rx: mpsc::Receiver<Msg>) -> Result<()> {
    let drop_rules: &'static [&'static str] = if shown == HOST { &[] } else { HOST_WIDE_RULES };
    let mut tracker = Tracker::new(shown, args.window, drop_rules);
    let mut out = io::stdout().lock();
    let mut refreshes = 0;
    while !interrupt::requested() && args.count.is_none_or(|n| refreshes < n) {
        match rx.recv_timeout(STOP_POLL) {
            Ok(Msg::Sample(_, raw)) => {
                let view = tracker.push(raw);
                serde_json::to_writer(&mut out, &view)?;
                writeln!(out)?;
                out.flush()?;
                refreshes += 1;
            }
            Ok(Msg::Failed(label, why)) => bail!("netns {label}: {why}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the sampling thread stopped"),
        }
    }
    Ok(())
}

/// Writes the samples behind the screen as a bundle; returns the line to show.
fn freeze(dir: &Path, label: &str, window: &Window) -> Result<String> {
    if window.is_empty() {
        bail!("nothing sampled yet");
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut path = dir.join(format!("netsight-top-{safe}-{stamp}.nsb"));
    let mut n = 2;
    while path.symlink_metadata().is_ok() {
        path = dir.join(format!("netsight-top-{safe}-{stamp}-{n}.nsb"));
        n += 1;
    }
    let snapshots = window.snapshots();
    netsight_kernel::bundle::write(&path, &snapshots)?;
    let span_s = match (snapshots.first(), snapshots.last()) {
        (Some(a), Some(b)) => b.meta.monotonic_ns.saturating_sub(a.meta.monotonic_ns) as f64 / 1e9,
        _ => 0.0,
    };
    Ok(format!(
        "froze {} snapshots ({span_s:.1} s) to {} · netsight doctor --from it gives these findings",
        snapshots.len(),
        path.display()
    ))
}

/// Waits up to `timeout` for a key or a wake-up; true for a key. A hung-up
/// terminal (the SSH session or the tmux server gone) is an error: crossterm
/// would read its EOF forever.
fn input_ready(timeout: Duration, wake: &Wake) -> Result<bool> {
    // Input crossterm has already read but not handed out.
    if event::poll(Duration::ZERO).context("reading the terminal")? {
        return Ok(true);
    }
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdin = io::stdin();
    let mut fds = [
        PollFd::new(&stdin, PollFlags::IN),
        PollFd::new(&wake.read, PollFlags::IN),
    ];
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(false),
        Err(e) => return Err(io::Error::from(e)).context("waiting for the terminal"),
    }
    if !fds[1].revents().is_empty() {
        wake.drain();
    }
    let got = fds[0].revents();
    if got.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
        bail!("the terminal hung up");
    }
    Ok(got.contains(PollFlags::IN))
}

/// The terminal in raw mode on the alternate screen; dropping it restores the
/// terminal (ratatui's panic hook does the same on a panic).
struct Screen {
    terminal: ratatui::DefaultTerminal,
}

impl Screen {
    fn enter() -> Result<Screen> {
        let terminal = ratatui::try_init().context("setting up the terminal")?;
        Ok(Screen { terminal })
    }

    /// Whether the terminal changed size since the last draw, asked after every
    /// wake-up (SIGWINCH is one; crossterm sees it only while it waits for input
    /// itself). One ioctl on stdout: crossterm's size() opens /dev/tty each call.
    fn resized(&mut self) -> Result<bool> {
        let size =
            rustix::termios::tcgetwinsize(io::stdout()).context("reading the terminal size")?;
        let area = self.terminal.get_frame().area();
        Ok(area.width != size.ws_col || area.height != size.ws_row)
    }

    fn draw(&mut self, view: &View, ui: &UiState) -> Result<()> {
        self.terminal
            .draw(|frame| netsight_top::ui::draw(frame, view, ui))
            .context("drawing")?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
        let _ = self.terminal.show_cursor();
    }
}
