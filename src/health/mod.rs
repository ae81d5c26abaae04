//! Health of pool members.

mod status;

pub use status::{Health, MemberStatus};
