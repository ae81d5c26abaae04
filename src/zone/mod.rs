//! The immutable view that queries read: zones, their records and their pools.
//!
//! A [`Snapshot`] is built from a [`Config`] once per (re)load and never changes afterwards,
//! except for each pool's live set, which is itself an immutable value swapped atomically when
//! a member's health changes. Queries therefore never wait on a lock.
//!
//! Each member's health lives in a [`MemberStatus`] cell ([`member_state`]): the probers in
//! `health` write it, the pools here read it. The vocabulary sits at this level so that the
//! snapshot never imports the probers that feed it.
//!
//! [`Config`]: crate::config::Config

pub mod member_state;
mod pool;
mod snapshot;

pub use member_state::{DownReport, Health, MemberStatus, ProbeFailure, ProbeReport, Signal};
pub use pool::{LiveSet, LiveState, Pool, PoolMember};
pub use snapshot::{DrainError, MemberSelector, Node, Snapshot, Zone, ZoneLookup};
