//! netsight-xdp: the XDP filter behind `netsight xdp`. Rules (a prefix, a
//! protocol and port ranges; first match wins), a per-source SYN limiter,
//! per-rule counters, dry run and a protect list, in one program
//! (bpf/xdp_filter.bpf.c) attached over rtnetlink so it outlives the command.
//! Every attach is journaled under /run/netsight before the program goes in,
//! so detach, expiry and cleanup work after a crash.

pub mod compile;
pub mod filter;
pub mod kernel;
pub mod rules;

/// Why an xdp command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// A request that can never work as given (exit 64).
    #[error("{0}")]
    Usage(String),
    #[error("no interface named {0:?} in this network namespace (`ip link` lists them)")]
    UnknownInterface(String),
    #[error("{0}: XDP needs CAP_NET_ADMIN and CAP_BPF (run as root)")]
    NeedCapability(String),
    #[error("{interface} has an XDP program netsight did not attach (id {prog_id}{}); netsight never replaces it (`bpftool prog show id {prog_id}`)", if name.is_empty() { String::new() } else { format!(", {name:?}") })]
    NotOurs {
        interface: String,
        prog_id: u32,
        name: String,
    },
    #[error("netsight's filter is already on {0}: change it with `netsight xdp rule add|del`, or `netsight xdp detach {0}` first")]
    AlreadyAttached(String),
    #[error("netsight has no XDP filter on {0}")]
    NotAttached(String),
    #[error("{0}")]
    Bpf(String),
    #[error("the xdp journal {0}")]
    Journal(String),
    #[error(transparent)]
    State(#[from] netsight_kernel::state_dir::StateError),
    #[error(transparent)]
    Kernel(#[from] netsight_kernel::KernelError),
}
pub mod suggest;
