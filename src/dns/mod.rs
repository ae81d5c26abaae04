//! The DNS protocol side: deciding answers and turning messages into bytes.

pub mod answer;
pub mod cookie;
pub mod extensions;
pub mod fast;
pub mod message;
pub mod reply;
mod siphash;
pub mod tsig;

pub use answer::{Answer, resolve};
pub use extensions::Extensions;
pub use message::{
    respond, respond_general, respond_general_with, respond_into, respond_into_with,
    respond_limited, truncated,
};
pub use reply::{Answered, CLASSIC_UDP_SIZE, Reply, Transport, size_limit};
