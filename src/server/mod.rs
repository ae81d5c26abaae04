//! DNS over UDP and TCP on every configured address: the listeners ([`listeners`], [`udp`],
//! [`tcp`]), opcode dispatch at their edge ([`dispatch`]), and what they share when answering
//! ([`answerer`]: counting, rate limiting, the query log).

mod answerer;
mod batch;
mod bind;
mod connections;
pub mod dispatch;
pub mod framing;
mod listeners;
mod privileges;
mod query_log;
pub mod rrl;
mod tcp;
mod udp;

pub use answerer::Answerer;
pub use listeners::{BindError, DnsServer};
pub use privileges::{Plan as PrivilegePlan, PrivilegeError, drop_privileges};
pub use query_log::QueryLog;
pub use tcp::TcpLimits;
