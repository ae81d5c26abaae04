//! The DNS protocol side: deciding answers and turning messages into bytes.

pub mod answer;
pub mod fast;
pub mod message;
pub mod reply;

pub use answer::{Answer, resolve};
pub use message::{respond, respond_general, respond_into, truncated};
pub use reply::{Answered, CLASSIC_UDP_SIZE, Reply, Transport, size_limit};
