//! netsight-tune: turns diagnosis into safe action. `audit` compares every
//! relevant setting with what the workload, the link's bandwidth-delay product and
//! the chosen profile call for; `journal` applies the sysctl part of that plan
//! all-or-nothing with rollback; `export` writes it for persistence.

pub mod audit;
pub mod bdp;
pub mod export;
pub mod host;
pub mod journal;

use std::path::PathBuf;

pub use audit::{audit, Activity, Audit, Item, ItemKind, Profile, Status, TuneOptions};
pub use host::HostFacts;
pub use journal::{JournalStore, SysctlChange, SysctlTree};

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(transparent)]
    Sysctl(#[from] netsight_kernel::sysctl_tree::SysctlError),
    #[error("sysctl {key}: wrote {wrote:?} but the kernel reads back {read:?}")]
    NotTaken {
        key: String,
        wrote: String,
        read: String,
    },
    #[error("{cause}; nothing is left changed ({restored} value(s) restored){}",
        if restore_failures.is_empty() { String::new() } else { format!(" EXCEPT: {}", restore_failures.join("; ")) })]
    ApplyFailed {
        cause: Box<TuneError>,
        restored: usize,
        restore_failures: Vec<String>,
    },
    #[error(transparent)]
    State(#[from] netsight_kernel::state_dir::StateError),
    #[error("tune journal {path} is not readable ({detail}); it was left as it is")]
    CorruptJournal { path: PathBuf, detail: String },
    #[error("nothing to roll back: no journal at {0} (nothing applied in this network namespace, or already rolled back)")]
    NoJournal(PathBuf),
    #[error("the journal belongs to network namespace {journal}, this is {current}: run the command inside that namespace (ip netns exec ...)")]
    OtherNamespace { journal: String, current: String },
    #[error("nothing is waiting for confirmation (no apply with --confirm-within, or it was already reverted)")]
    NothingToConfirm,
    #[error("rollback incomplete, the rest stays journaled: {}", .0.join("; "))]
    RollbackIncomplete(Vec<String>),
    #[error("cannot export {key} = {value:?}: {why}")]
    Unexportable {
        key: String,
        value: String,
        why: String,
    },
    #[error("--set {0:?}: expected KEY=VALUE (a sysctl name such as net.core.somaxconn=4096)")]
    BadOverride(String),
}
