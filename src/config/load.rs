//! Loading a whole configuration: the main file, then every zone file in its zones directory,
//! then the checks between them (a zone's update keys are defined in the main file).

use std::path::Path;

use hickory_proto::rr::Name;

use super::error::{ConfigError, Source};
use super::file::ZoneFile;
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
                return Err(undefined_key(path, &zone.file, KeysOf::Update, index, key));
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
                return Err(undefined_key(
                    path,
                    &zone.file,
                    KeysOf::Transfer,
                    index,
                    key,
                ));
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
            return Err(undefined_key(path, &zone.file, KeysOf::Primary, 0, key));
        }
    }
    Ok(())
}

/// The zone-file table whose `keys` name a key.
#[derive(Clone, Copy)]
enum KeysOf {
    Update,
    Transfer,
    /// A secondary zone's `primary.key` (one key, no index).
    Primary,
}

impl KeysOf {
    fn table(self) -> &'static str {
        match self {
            KeysOf::Update => "update",
            KeysOf::Transfer => "transfer",
            KeysOf::Primary => "primary",
        }
    }
}

/// The error for `keys[index]` of a zone's `update` or `transfer` table naming a key that the
/// main file at `main` does not define, at the key's line in the zone file. A parsed zone keeps
/// no places (two loads of one zone compare equal however its lines moved, see
/// `update::compact`), so the zone file is read again for the place, on this error path only;
/// should it no longer read as it did, the error names the file and field without a line.
fn undefined_key(
    main: &Path,
    zone_file: &Path,
    keys_of: KeysOf,
    index: usize,
    key: &Name,
) -> ConfigError {
    let field = match keys_of {
        KeysOf::Primary => "primary.key".to_string(),
        _ => format!("{}.keys[{index}]", keys_of.table()),
    };
    let message = format!(
        "key {key} is not defined (add a [[tsig]] table with name = \"{key}\" to {})",
        main.display()
    );
    let text = std::fs::read_to_string(zone_file).unwrap_or_default();
    let span = toml::from_str::<ZoneFile>(&text).ok().and_then(|file| {
        let keys = match keys_of {
            KeysOf::Update => file.update?.into_inner().keys,
            KeysOf::Transfer => file.transfer?.into_inner().keys,
            KeysOf::Primary => return Some(file.primary?.into_inner().key?.span()),
        };
        keys.into_inner().get(index).map(|key| key.span())
    });
    match span {
        Some(span) => Source {
            path: zone_file,
            text: &text,
        }
        .error(span, field, message),
        None => ConfigError {
            file: zone_file.to_path_buf(),
            position: None,
            field: Some(field),
            message,
        },
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A main file without TSIG keys and a zones directory, removed when dropped.
    struct Files(PathBuf);

    impl Files {
        fn new(tag: &str, zone_tail: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "apidns-unit-load-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("zones")).unwrap();
            std::fs::write(
                dir.join("apidns.toml"),
                "[server]\nlisten = [\"127.0.0.1:53\"]\nstate_dir = \"state\"\n[[tsig]]\nname = \"known\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n",
            )
            .unwrap();
            let zone = format!(
                "origin = \"k8s.example.com.\"\nrecords = [{{ name = \"@\", type = \"NS\", value = \"ns1\" }}, {{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }}]\n{zone_tail}\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\n"
            );
            std::fs::write(dir.join("zones/k8s.toml"), zone).unwrap();
            Self(dir)
        }

        fn load(&self) -> Result<Config, ConfigError> {
            load(&self.0.join("apidns.toml"))
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_undefined_key_is_named_at_its_line_in_the_zone_file() {
        for (table, field) in [
            ("transfer", "transfer.keys[1]"),
            ("update", "update.keys[1]"),
        ] {
            let extra = if table == "update" {
                ", allow = \"pool-members\""
            } else {
                ""
            };
            // Line 3 of the zone file; the second key starts 23 columns after the table name.
            let files = Files::new(
                table,
                &format!("{table} = {{ keys = [\"known\", \"missing\"]{extra} }}"),
            );
            let error = files.load().unwrap_err();
            assert_eq!(error.file, files.0.join("zones/k8s.toml"), "{error}");
            assert_eq!(error.field.as_deref(), Some(field), "{error}");
            let column = table.len() + 23;
            assert_eq!(error.position, Some((3, column)), "{error}");
            assert!(
                error.message.contains("key missing. is not defined"),
                "{error}"
            );
            assert!(
                error
                    .to_string()
                    .contains(&format!("k8s.toml:3:{column}: {field}: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_secondary_zone_names_its_undefined_primary_key_at_its_line() {
        let files = Files::new("primary", "");
        std::fs::write(
            files.0.join("zones/k8s.toml"),
            "origin = \"k8s.example.com.\"\n\nprimary = { address = \"192.0.2.53:53\", key = \"missing\" }\n",
        )
        .unwrap();
        let error = files.load().unwrap_err();
        assert_eq!(error.field.as_deref(), Some("primary.key"), "{error}");
        assert_eq!(error.position, Some((3, 46)), "{error}");
        assert!(
            error.message.contains("key missing. is not defined"),
            "{error}"
        );
    }

    #[test]
    fn defined_keys_load() {
        let files = Files::new("defined", "transfer = { keys = [\"known\"] }");
        let config = files.load().expect("valid");
        assert_eq!(
            config.zones[0].transfer.as_ref().map(|t| t.keys.len()),
            Some(1)
        );
    }
}
