//! Configuration: TOML files in, a checked [`Config`] out, or an error that names the file, line,
//! column and field.
//!
//! Loading is all-or-nothing: a caller either gets a complete, validated configuration or an
//! error, never something half-applied.

mod duration;
mod error;
mod file;
mod main_file;
mod model;
mod probe;
mod summary;
mod tls;
mod values;
mod zone_file;

use std::path::Path;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use model::*;
pub use summary::summary;
pub use tls::{ClientIdentity, TlsClient, Trust};

/// Reads and validates the main file at `path` and every zone file in its zones directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let (server, probe) = main_file::parse(path, &text)?;
    let zones = zone_file::load_dir(&server.zones_dir, &probe)?;
    Ok(Config {
        path: path.to_path_buf(),
        server,
        probe,
        zones,
    })
}

/// Checks the text of a main file as [`load`] does, without reading any file: `path` only
/// names the file in errors and anchors the zones directory. For fuzzing and tests.
pub fn parse_main_text(
    path: &Path,
    text: &str,
) -> Result<(ServerSettings, ProbeSettings), ConfigError> {
    main_file::parse(path, text)
}

/// Checks the text of one zone file as [`load`] does, without reading any file. `probe` holds
/// the `[probe]` defaults and `serial` stands in for the file's modification time.
pub fn parse_zone_text(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
    serial: u32,
) -> Result<ZoneConfig, ConfigError> {
    zone_file::parse(path, text, probe, serial)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))
}
