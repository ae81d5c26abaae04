//! The DNS protocol side: deciding answers and turning messages into bytes.

pub mod answer;
pub mod fast;
pub mod message;

pub use answer::{Answer, resolve};
pub use message::{Answered, Reply, Transport, respond, respond_general, respond_into, truncated};
