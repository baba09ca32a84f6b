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
        if denied {
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
