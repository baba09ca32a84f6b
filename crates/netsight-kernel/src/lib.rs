//! netsight-kernel: every read of the running kernel (procfs, sysctl, sysfs,
//! rtnetlink, ethtool) and the typed `Snapshot` built from it, plus bundles
//! (raw inputs saved to a file) and `delta` (per-second rates between snapshots).
//!
//! Collection (`collect`) only gathers raw bytes; parsing (`Snapshot::from_raw`)
//! never touches the kernel, so recorded fixtures and bundles go through the same code.

pub mod rates;

pub mod bundle;
pub mod collect;
pub mod delta;
pub mod endpoint;
pub mod error;
pub mod ethtool;
pub mod host_layout;
pub mod iptables_legacy;
pub mod kernel_image;
pub mod link;
pub mod netlink_io;
pub mod netns;
pub mod nftables;
pub mod privilege;
pub mod procfs;
pub mod qdisc;
pub mod raw;
pub mod session;
pub mod snapshot;
pub mod sockets;
pub mod state_dir;
pub mod support;
pub mod sysctl;
pub mod sysctl_tree;
pub mod trust;
pub mod units;

/// Where the running kernel's files are; only this crate reads them.
pub const PROC_ROOT: &str = "/proc";
pub const SYS_ROOT: &str = "/sys";

pub use collect::{LiveSource, SourcePart};
pub use delta::{delta, Rates};
pub use error::KernelError;
pub use raw::RawSnapshot;
pub use snapshot::Snapshot;
pub use support::Support;
