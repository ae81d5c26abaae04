//! Watch loops: when a member is asked, and what its answers mean. One loop per way of
//! watching, each run by the member's prober task until it is stopped:
//!
//! - [`periodic`]: a fresh check every interval;
//! - [`held_tcp`]: one TCP connection held open, its end and its keepalive watched;
//! - [`held_http`]: one HTTP(S) connection held open and asked on every interval.
//!
//! Every loop feeds the rise/fall machine and tells the [`Reporter`]; the held ones also keep
//! a flap record.
//!
//! [`Reporter`]: super::report::Reporter

pub(crate) mod held_http;
pub(crate) mod held_tcp;
pub(crate) mod periodic;
