//! The test kit that apidns's integration tests (`tests/it`), benches and fuzz targets share:
//! zone fixtures written once, in-process snapshots and the reply checker (always), and with the
//! default `servers` feature the real server, stand-in API servers (TCP, HTTP(S), black holes,
//! network namespaces), a DNS and HTTP client, and waits that watch for an event.
//!
//! `use testkit::*` brings what most tests use; the stand-ins are under [`backend`], [`https`],
//! [`kube_api`] (the Kubernetes API for EndpointSlice list and watch) and [`netns`].

pub mod reply;
pub mod snapshot;
pub mod zones;

#[cfg(feature = "servers")]
pub mod backend;
#[cfg(feature = "servers")]
pub mod client;
#[cfg(feature = "servers")]
pub mod http;
#[cfg(feature = "servers")]
pub mod https;
#[cfg(feature = "servers")]
pub mod kube_api;
#[cfg(feature = "servers")]
pub mod netns;
#[cfg(feature = "servers")]
pub mod peers;
#[cfg(feature = "servers")]
pub mod server;
#[cfg(feature = "servers")]
pub mod timings;
#[cfg(feature = "servers")]
pub mod wait;

#[cfg(feature = "servers")]
pub use client::*;
#[cfg(feature = "servers")]
pub use http::*;
#[cfg(feature = "servers")]
pub use server::*;
#[cfg(feature = "servers")]
pub use wait::*;
pub use zones::*;
