//! Configuration: TOML files in, a checked [`Config`] out, or an error that names the file, line,
//! column and field.
//!
//! Loading is all-or-nothing: a caller either gets a complete, validated configuration or an
//! error, never something half-applied. Each file has one job:
//!
//! - `load.rs`: [`load`] the main file and the zones directory, and check them against each
//!   other; the same checks on text alone for fuzzing and tests.
//! - `file.rs`: what the TOML files say, as written, every value with its span.
//! - `model.rs`: the checked types the rest of apidns reads.
//! - `error.rs`: [`ConfigError`], located at file, line, column and field.
//! - `main_file.rs`: the main file's `[server]` and `[probe]`.
//! - `tsig.rs`: the main file's `[[tsig]]` keys; `key_file.rs` reads a BIND key file for them
//!   and `key_name.rs` spells key names.
//! - `zone_file/`: one zone file: origin and SOA, static records, pools and their members, the
//!   update policy.
//! - `probe_settings.rs`: probe timing of `[probe]` or a pool's `probe`; `probe_kind.rs` its
//!   kind (TCP, HTTP, HTTPS) and `tls.rs` the TLS material an HTTPS probe loads.
//! - `values.rs`: integers in range and durations, as every file writes them; `duration.rs`
//!   parses and prints durations.
//! - `summary.rs`: the summary `apidns check` prints.

mod duration;
mod error;
mod file;
mod key_file;
mod key_name;
mod load;
mod main_file;
mod model;
mod probe_kind;
mod probe_settings;
mod summary;
mod tls;
mod tsig;
mod values;
mod zone_file;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::ConfigError;
pub use load::{load, parse_main_text, parse_secondary_zone_text, parse_zone_text};
pub use model::*;
pub use summary::summary;
pub use tls::{ClientIdentity, TlsClient, Trust};
pub use zone_file::{CopyError, TransferredCopies, TransferredCopy, zone_from_copy};
