//! netsight's history: snapshots and findings over time in one SQLite file.
//!
//! `record` appends a sample per interval (only the leaves that changed, see
//! `flat`), `report` and `doctor --db` replay them back into the same
//! `Snapshot`s the live verbs use, so stat's tables and doctor's rules run over
//! the past unchanged. Tables are described in docs/history.md.

pub mod flat;
pub mod incidents;
pub mod schema;
pub mod store;

pub use incidents::{incidents, Incident};
pub use store::{FindingRow, History, HistoryError, Parts, PruneStats, Retention, SampleInfo};
