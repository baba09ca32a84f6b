use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading the kernel or a bundle.
/// Each variant names the object (path, netlink family, interface) and the operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("parsing {source_name}: {detail}")]
    Parse { source_name: String, detail: String },

    #[error("netlink {family}: {operation}: {source}")]
    Netlink {
        family: &'static str,
        operation: &'static str,
        source: io::Error,
    },

    #[error("netlink {family}: decoding {what}: {detail}")]
    NetlinkDecode {
        family: &'static str,
        what: String,
        detail: String,
    },

    #[error("iptables-legacy {what} {table}: {source}{hint}")]
    IptablesLegacy {
        what: &'static str,
        table: String,
        source: io::Error,
        /// " (needs CAP_NET_ADMIN)" when the kernel said permission denied.
        hint: &'static str,
    },

    #[error("ethtool ioctl {command} on {interface}: {source}")]
    Ethtool {
        command: &'static str,
        interface: String,
        source: io::Error,
    },

    #[error("bundle {path}: {detail}")]
    Bundle { path: PathBuf, detail: String },
}

impl KernelError {
    pub(crate) fn parse(source_name: impl Into<String>, detail: impl Into<String>) -> Self {
        KernelError::Parse {
            source_name: source_name.into(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = KernelError> = std::result::Result<T, E>;
