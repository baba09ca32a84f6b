//! netsight bench: a client and a server that measure TCP throughput (stream),
//! request/response latency (rr) and connection rate (crr) over a versioned
//! control protocol. The server serves many clients at once, each session
//! bounded in time; garbage gets an error frame.

pub mod ab;
pub mod client;
pub mod options;
pub mod protocol;
pub mod server;
pub mod why;

pub use client::{BenchError, CrrResult, Latency, Progress, RrResult, StreamResult, UdpResult};
pub use options::SocketOptions;
pub use server::{ServerOptions, ServerStats};
pub use why::FlowLimits;
