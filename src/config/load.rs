//! Loading a whole configuration: the main file, then every zone file in its zones directory,
//! then the checks between them (a zone's update keys are defined in the main file).

use std::path::Path;

use super::error::ConfigError;
use super::model::{Config, ProbeSettings, SecondaryZone, ServerSettings, ZoneConfig};
use super::{main_file, zone_file};

/// Reads and validates the main file at `path` and every zone file in its zones directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let (server, probe) = main_file::parse(path, &text)?;
    let (zones, secondaries) = zone_file::load_dir(&server.zones_dir, &probe)?;
    check_update_keys(path, &server, &zones)?;
    check_transfer_keys(path, &server, &zones)?;
    check_primary_keys(path, &server, &secondaries)?;
    Ok(Config {
        path: path.to_path_buf(),
        server,
        probe,
        zones,
        secondaries,
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

/// Checks one secondary zone file's text (a file with `primary = {...}`), as [`load`] does; an
/// error when the file is not a secondary zone's. For fuzzing and tests.
pub fn parse_secondary_zone_text(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
) -> Result<SecondaryZone, ConfigError> {
    match zone_file::parse_any(path, text, probe, 1)? {
        zone_file::ZoneDefinition::Secondary(zone) => Ok(*zone),
        zone_file::ZoneDefinition::Files(_) => Err(ConfigError::file(
            path,
            "is not a secondary zone (it has no `primary` table)",
        )),
    }
}

/// Every key a zone's `update` table names must be defined in the main file, and the journal of
/// accepted updates needs `[server] state_dir`.
fn check_update_keys(
    path: &Path,
    server: &ServerSettings,
    zones: &[ZoneConfig],
) -> Result<(), ConfigError> {
    for zone in zones {
        let Some(update) = &zone.update else { continue };
        if server.state_dir.is_none() {
            return Err(ConfigError {
                file: path.to_path_buf(),
                position: None,
                field: Some("server.state_dir".to_string()),
                message: format!(
                    "is needed because zone {} accepts updates ({}): accepted updates are journaled there before they are acknowledged",
                    zone.origin,
                    zone.file.display()
                ),
            });
        }
        for (index, key) in update.keys.iter().enumerate() {
            if !server.tsig_keys.iter().any(|known| &known.name == key) {
                return Err(ConfigError {
                    file: zone.file.clone(),
                    position: None,
                    field: Some(format!("update.keys[{index}]")),
                    message: format!(
                        "key {key} is not defined (add a [[tsig]] table with name = \"{key}\" to {})",
                        path.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Every key a zone's `transfer` table names must be defined in the main file.
fn check_transfer_keys(
    path: &Path,
    server: &ServerSettings,
    zones: &[ZoneConfig],
) -> Result<(), ConfigError> {
    for zone in zones {
        let Some(transfer) = &zone.transfer else {
            continue;
        };
        for (index, key) in transfer.keys.iter().enumerate() {
            if !server.tsig_keys.iter().any(|known| &known.name == key) {
                return Err(ConfigError {
                    file: zone.file.clone(),
                    position: None,
                    field: Some(format!("transfer.keys[{index}]")),
                    message: format!(
                        "key {key} is not defined (add a [[tsig]] table with name = \"{key}\" to {})",
                        path.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The key a secondary zone's `primary` table names must be defined in the main file.
fn check_primary_keys(
    path: &Path,
    server: &ServerSettings,
    secondaries: &[SecondaryZone],
) -> Result<(), ConfigError> {
    for zone in secondaries {
        let Some(key) = &zone.primary.key else {
            continue;
        };
        if !server.tsig_keys.iter().any(|known| &known.name == key) {
            return Err(ConfigError {
                file: zone.file.clone(),
                position: None,
                field: Some("primary.key".to_string()),
                message: format!(
                    "key {key} is not defined (add a [[tsig]] table with name = \"{key}\" to {})",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))
}
