//! netsight-trace: eBPF tracers. Programs are C under `bpf/` (built by
//! scripts/build-bpf, objects committed), loaded with aya; events come through
//! BPF ring buffers. Tracepoints are attached as tp_btf (no tracefs, no kprobes).

pub mod btf_enum;
pub mod drops;
pub mod kallsyms;
pub mod loader;
pub mod retrans;
pub mod rtt;
pub mod sockstate;
pub mod synbl;

pub use netsight_kernel::endpoint::{Cidr, EndpointFilter};

/// A count in one network namespace (its inode, as `readlink /proc/PID/ns/net`
/// shows it): every summary row says where its events happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NsCount {
    pub netns: u32,
    pub name: String,
    pub count: u64,
}

/// Counts by (namespace, name), ranked most first.
#[derive(Debug, Default)]
pub(crate) struct Tally(std::collections::BTreeMap<(u32, String), u64>);

impl Tally {
    pub(crate) fn add(&mut self, netns: u32, name: impl Into<String>) {
        self.add_n(netns, name, 1);
    }

    pub(crate) fn add_n(&mut self, netns: u32, name: impl Into<String>, n: u64) {
        *self.0.entry((netns, name.into())).or_insert(0) += n;
    }

    pub(crate) fn ranked(self, limit: usize) -> Vec<NsCount> {
        let mut v: Vec<NsCount> = self
            .0
            .into_iter()
            .map(|((netns, name), count)| NsCount { netns, name, count })
            .collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.name.cmp(&b.name))
                .then(a.netns.cmp(&b.netns))
        });
        v.truncate(limit);
        v
    }
}

/// The rows summed over namespaces, most first (for views that show one host).
pub fn across_namespaces(rows: &[NsCount]) -> Vec<(String, u64)> {
    let mut sums: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for r in rows {
        *sums.entry(r.name.as_str()).or_insert(0) += r.count;
    }
    let mut v: Vec<(String, u64)> = sums.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// A request to end every running tracer early (Ctrl-C, SIGTERM, SIGHUP): the
/// poll loops return, the summary is built from what was seen, and the BPF
/// programs are detached as their owners drop.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Called with the program names once a tracer's programs are attached: the
/// binary announces it (scripts and tests wait for that line, not for a sleep).
static ATTACHED_HOOK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

pub fn on_attached(hook: fn(&str)) {
    let _ = ATTACHED_HOOK.set(hook);
}

pub(crate) fn attached(what: &str) {
    if let Some(hook) = ATTACHED_HOOK.get() {
        hook(what);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("kernel BTF is missing ({0}): this kernel was built without CONFIG_DEBUG_INFO_BTF; eBPF tracing needs it")]
    NoBtf(String),
    #[error("{what}: permission denied: tracing needs CAP_BPF and CAP_PERFMON (run as root, or `setcap cap_bpf,cap_perfmon+ep $(which netsight)`)")]
    Privilege { what: String },
    #[error("{what}: {detail}")]
    Bpf { what: String, detail: String },
}

impl TraceError {
    /// Classifies an aya error: missing privilege gets its own message. aya's
    /// Display stops at the operation; the OS error is further down the source chain.
    pub(crate) fn bpf(what: &str, e: impl std::error::Error + 'static) -> TraceError {
        let mut chain: Vec<String> = Vec::new();
        let mut denied = false;
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = current {
            chain.push(err.to_string());
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                denied |= io.kind() == std::io::ErrorKind::PermissionDenied
                    || io.raw_os_error() == Some(1); // EPERM
            }
            current = err.source();
        }
        // As root, EPERM is the verifier's answer (or a lockdown), not a missing capability.
        if denied && !rustix::process::geteuid().is_root() {
            TraceError::Privilege {
                what: what.to_string(),
            }
        } else {
            TraceError::Bpf {
                what: what.to_string(),
                detail: chain.join(": "),
            }
        }
    }
}
