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
mod summary;
mod values;
mod zone_file;

use std::path::Path;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use model::*;
pub use summary::summary;

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

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))
}
