//! apidns's integration tests: one crate, one module per area (as cargo and ripgrep arrange
//! theirs), all on the shared test kit (`testkit/`). Most start the real binary on loopback; the
//! fast-path and property tests call the query path in process.

mod blackhole;
mod cli;
mod cookies;
mod discover;
mod dns;
mod docs;
mod edns;
mod fast_path;
mod haproxy;
mod health;
mod held;
mod held_https;
mod hostile;
mod https_probe;
mod kube_api;
mod ops;
mod privileges;
mod properties;
mod rrl;
mod secondary;
mod srv;
mod tcp_abuse;
mod transfer;
mod transfer_in;
mod update;
mod wildcards;
mod zone_files;
