//! Health of pool members: one prober task per member, a rise/fall state machine, and the
//! shared status cells that the live sets are built from.
//!
//! Probing never touches the query path: a change of health bumps a counter, and a publisher
//! task rebuilds the affected live sets and swaps them in.

mod connect;
mod flap;
mod held;
mod held_connection;
mod held_https;
mod http_probe;
mod keepalive;
mod machine;
mod probe;
mod prober;
mod publisher;
mod registry;
mod round;
mod signal;
mod status;

pub use machine::{Machine, Transition};
pub use probe::{ProbeFailure, check, success_reason, tcp_connect};
pub use publisher::publish_changes;
pub use registry::Probers;
pub use round::{RoundResult, probe_round, round_table};
pub use signal::Signal;
pub use status::{DownReport, Health, MemberStatus, ProbeReport};
