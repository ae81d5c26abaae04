//! The immutable view that queries read: zones, their records and their pools.
//!
//! A [`Snapshot`] is built from a [`Config`] once per (re)load and never changes afterwards,
//! except for each pool's live set, which is itself an immutable value swapped atomically when
//! a member's health changes. Queries therefore never wait on a lock.

mod pool;
mod snapshot;

pub use pool::{LiveSet, LiveState, Pool, PoolMember};
pub use snapshot::{DrainError, MemberSelector, Node, Snapshot, Zone, ZoneLookup};
