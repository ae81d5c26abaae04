//! Zone transfers out (the primary side of RFC 5936 AXFR, RFC 1995 IXFR) and NOTIFY (RFC 1996)
//! to the secondaries a zone's `transfer` table lists.
//!
//! What is transferred is the zone as configured, not as answered: the SOA as served, the static
//! records, and every configured member of every pool, whatever its health ([`contents`]).
//! Health is never transferred: each apidns instance probes for itself, and a plain secondary
//! (BIND, Knot) serves every member unfiltered.
//!
//! - [`contents`]: the records a transfer carries;
//! - [`outgoing`]: the answer to an AXFR or IXFR request, split into TCP messages and each one
//!   signed with TSIG (RFC 8945 section 5.3.1);
//! - [`history`]: the recent versions of each zone, kept in `state_dir`, that IXFR sends the
//!   differences between;
//! - [`notify`]: NOTIFY to the secondaries whenever a zone's serial changes, signed and retried.
//! - [`incoming`]: the other direction, the secondary's side: AXFR and IXFR from a primary
//!   into a [`incoming::ZoneCopy`].
//! - [`secondary`]: apidns as a secondary: each zone's refresh loop (SOA timers, NOTIFY from
//!   the primary), the copy kept in `state_dir`, and its state for /status and metrics.
//!
//! The server's edge routes transfer requests here (`crate::server::dispatch`); the answering
//! code in `crate::dns` never sees them over TCP.

pub mod contents;
pub mod history;
pub mod incoming;
pub mod notify;
pub mod outgoing;
pub mod secondary;

pub use history::History;
pub use notify::{Notifier, NotifyCounters};
pub use outgoing::{Transfer, answer};
