//! apidns: an authoritative DNS server that answers a Kubernetes API server name with the
//! addresses of the API servers that are alive right now.

pub mod app;
pub mod config;
pub mod discover;
pub mod dns;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod reload;
pub mod server;
pub mod transfer;
pub mod update;
pub mod zone;
