//! Health of pool members: one prober task per member, each watching its member one of three
//! ways, feeding a rise/fall machine, and writing the member's status cell, from which a
//! publisher rebuilds the live sets that queries read.
//!
//! Probing never touches the query path: a change of health bumps a counter, and the publisher
//! task rebuilds the affected live sets and swaps them in.
//!
//! ```text
//!  registry.rs    Probers: one task per (pool, member), kept in step with the configuration
//!      │
//!  prober.rs      one member's task: picks the watch loop its probe settings call for
//!      │
//!  watch/         when to ask, and what the answers mean
//!      ├─ periodic.rs    a fresh check every interval (hold = false)
//!      ├─ held_tcp.rs    one TCP connection held; its end and its keepalive watched
//!      └─ held_http.rs   one HTTP(S) connection held and asked on every interval
//!      │
//!      │   what the loops share:
//!      │   rise_fall.rs  the rise/fall machine (pure logic)
//!      │   flap.rs       flap hold-down and re-hold backoff (held loops)
//!      │   keepalive.rs  TCP keepalive settings and TCP_INFO reading (held TCP)
//!      │   jitter.rs     spreading probes so that they do not march in step
//!      │   report.rs     Reporter: status cell, metrics, logs, the change counter
//!      │
//!  check/         how to ask a member once: the check kinds
//!      ├─ tcp.rs         TCP connect (and the connection every other check starts from)
//!      ├─ http.rs        HTTP or HTTPS GET on a fresh connection
//!      ├─ held_tcp.rs    the connection a held TCP loop holds, and how it ended
//!      ├─ held_http.rs   the kept HTTP(S) connection (HTTP/2 or HTTP/1.1 keep-alive)
//!      ├─ http_failure.rs  hyper/rustls errors in an operator's words
//!      └─ connect.rs     the cheap non-blocking connect under all of them
//!
//!  publisher.rs   on every change: rebuild live sets in the snapshot, export pool gauges
//!  round.rs       one check of every member, for `apidns probe`
//! ```
//!
//! Dependencies run down this drawing and never back up. The vocabulary that other layers
//! share with this one (a member's [`Health`], its [`MemberStatus`] cell, the [`Signal`] that
//! took it down, a [`ProbeFailure`]) lives in [`crate::zone::member_state`], below both
//! `health` and `metrics`, and is re-exported here for callers that think of it as health.

mod check;
mod flap;
mod jitter;
mod keepalive;
mod prober;
mod publisher;
mod registry;
mod report;
mod rise_fall;
mod round;
mod watch;

pub use crate::zone::{DownReport, Health, MemberStatus, ProbeFailure, ProbeReport, Signal};
pub use check::tcp::tcp_connect;
pub use check::{check, success_reason};
pub use publisher::publish_changes;
pub use registry::Probers;
pub use rise_fall::{Machine, Transition};
pub use round::{RoundResult, probe_round, round_table};
