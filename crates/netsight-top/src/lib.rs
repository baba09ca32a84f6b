//! netsight-top: the live dashboard's model (rates, health, sockets and
//! doctor's findings from one namespace's samples), what keys do, and how it is
//! drawn. The terminal itself (raw mode, signals, the sampling threads) is the
//! binary's; everything here runs on ratatui's TestBackend too.

pub mod model;
pub mod state;
pub mod ui;

pub use model::{SocketActivity, SocketCadence, Tracker, View, Window};
pub use state::{Action, UiState};
