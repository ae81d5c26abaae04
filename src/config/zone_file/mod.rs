//! Zone files, one per zone: the origin and `[soa]`, static `records`, `[pool.<name>]` tables
//! and the `update` policy, each checked in its own file:
//!
//! - `names.rs`: the origin, and names relative to it;
//! - `soa.rs`: the `[soa]` table;
//! - `records.rs`: static records and the rules between them;
//! - `record_data.rs`: rules on record data that both kinds of static records share;
//! - `records_file.rs`: static records (and the SOA) from an RFC 1035 master file;
//! - `pools.rs`: pools, and the names they add to the zone;
//! - `members.rs`: one pool member, and the names of members without one;
//! - `discover.rs`: a pool's cluster discovery, and the kubeconfig it names;
//! - `update_policy.rs`: who may send dynamic updates;
//! - `transfer.rs`: who may transfer the zone, and whom to notify of changes;
//! - `primary.rs`: a secondary zone's primary;
//! - `copy.rs`: a secondary zone's data from a copy of its primary's, checked by the same rules.

mod copy;
mod discover;
mod members;
mod names;
mod pools;
mod primary;
mod record_data;
mod records;
mod records_file;
mod soa;
mod transfer;
mod update_policy;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::error::{ConfigError, Source};
use super::file::ZoneFile;
use super::model::{DEFAULT_ZONE_TTL, ProbeSettings, SecondaryZone, ZoneConfig};

use super::values::integer_or;
pub use copy::{CopyError, TransferredCopies, TransferredCopy, zone_from_copy};

/// TTLs above this are almost certainly a typo, and RFC 2181 caps them at 2^31 - 1 anyway.
const MAX_TTL: i64 = 7 * 24 * 3600;

/// One zone file, checked: its data is in the files, or comes from a primary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ZoneDefinition {
    Files(Box<ZoneConfig>),
    Secondary(Box<SecondaryZone>),
}

impl ZoneDefinition {
    fn origin(&self) -> &hickory_proto::rr::Name {
        match self {
            ZoneDefinition::Files(zone) => &zone.origin,
            ZoneDefinition::Secondary(zone) => &zone.origin,
        }
    }

    fn file(&self) -> &Path {
        match self {
            ZoneDefinition::Files(zone) => &zone.file,
            ZoneDefinition::Secondary(zone) => &zone.file,
        }
    }
}

/// Loads every `*.toml` file in `dir`, in name order, and checks them against each other: the
/// zones whose data is in the files, and the secondary zones.
pub(crate) fn load_dir(
    dir: &Path,
    probe: &ProbeSettings,
) -> Result<(Vec<ZoneConfig>, Vec<SecondaryZone>), ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        ConfigError::file(dir, format!("cannot read the zones directory: {error}"))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::file(
            dir,
            "the zones directory holds no zone file (expected one *.toml file per zone)",
        ));
    }

    let mut zones: Vec<ZoneDefinition> = Vec::with_capacity(files.len());
    for path in files {
        let zone = load_file(&path, probe)?;
        if let Some(other) = zones.iter().find(|other| other.origin() == zone.origin()) {
            return Err(ConfigError::file(
                &path,
                format!(
                    "zone {} is already defined in {}",
                    zone.origin(),
                    other.file().display()
                ),
            ));
        }
        zones.push(zone);
    }
    let mut files_zones = Vec::new();
    let mut secondaries = Vec::new();
    for zone in zones {
        match zone {
            ZoneDefinition::Files(zone) => files_zones.push(*zone),
            ZoneDefinition::Secondary(zone) => secondaries.push(*zone),
        }
    }
    Ok((files_zones, secondaries))
}

/// Reads and checks one zone file.
fn load_file(path: &Path, probe: &ProbeSettings) -> Result<ZoneDefinition, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))?;
    let modified = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(1, |age| age.as_secs() as u32);
    parse_any(path, &text, probe, modified)
}

/// Checks one zone file's text, whose data is in the files. `derived_serial` is the SOA serial
/// when the file sets none. A secondary zone's file is an error here (see [`parse_any`]).
pub(crate) fn parse(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
    derived_serial: u32,
) -> Result<ZoneConfig, ConfigError> {
    match parse_any(path, text, probe, derived_serial)? {
        ZoneDefinition::Files(zone) => Ok(*zone),
        ZoneDefinition::Secondary(zone) => Err(ConfigError::file(
            path,
            format!(
                "zone {} is a secondary zone (primary = {{...}}): its data comes from its primary",
                zone.origin
            ),
        )),
    }
}

/// Checks one zone file's text, whatever the source of its data.
pub(crate) fn parse_any(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
    derived_serial: u32,
) -> Result<ZoneDefinition, ConfigError> {
    let source = Source { path, text };
    let file: ZoneFile = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
    let origin = names::parse_origin(&source, &file.origin)?;
    if let Some(section) = &file.primary {
        return parse_secondary(&source, &file, section, origin, probe)
            .map(|zone| ZoneDefinition::Secondary(Box::new(zone)));
    }
    let zone_ttl: u32 = integer_or(&source, &file.ttl, "ttl", 0..=MAX_TTL, DEFAULT_ZONE_TTL)?;
    let records_file = match &file.records_file {
        Some(entry) => Some(records_file::read(&source, entry, &origin)?),
        None => None,
    };
    let soa = soa::parse_soa(
        &source,
        &file,
        &origin,
        zone_ttl,
        derived_serial,
        records_file.as_ref(),
    )?;
    let records = records::parse_records(&source, &file, &origin, zone_ttl, records_file.as_ref())?;
    let pools = pools::parse_pools(&source, &file, &origin, &records, probe)?;
    let update = match &file.update {
        Some(section) => Some(update_policy::parse_update(&source, section.get_ref())?),
        None => None,
    };
    let transfer = match &file.transfer {
        Some(section) => Some(transfer::parse_transfer(&source, section.get_ref())?),
        None => None,
    };
    Ok(ZoneDefinition::Files(Box::new(ZoneConfig {
        file: path.to_path_buf(),
        data_files: records_file.map(|file| file.files).unwrap_or_default(),
        origin,
        soa,
        records,
        pools,
        update,
        transfer,
        primary: None,
    })))
}

/// A secondary zone: its primary and its pools' settings. What the copy brings (SOA, records,
/// members, TTLs) cannot also be in the file, nor can updates (they go to the primary).
fn parse_secondary(
    source: &Source<'_>,
    file: &ZoneFile,
    section: &toml::Spanned<crate::config::file::PrimarySection>,
    origin: hickory_proto::rr::Name,
    probe: &ProbeSettings,
) -> Result<SecondaryZone, ConfigError> {
    let from_primary = pools::from_the_primary;
    from_primary(source, file.soa.as_ref().map(toml::Spanned::span), "soa")?;
    from_primary(
        source,
        file.records_file.as_ref().map(toml::Spanned::span),
        "records_file",
    )?;
    from_primary(source, file.ttl.as_ref().map(toml::Spanned::span), "ttl")?;
    if let Some(first) = file.records.first() {
        from_primary(source, Some(first.span()), "records")?;
    } else if text_sets(source.text, "records") {
        // `records = []`: empty, but still data the file means to give.
        from_primary(source, Some(file.origin.span()), "records")?;
    }
    if let Some(update) = &file.update {
        return Err(source.error(
            update.span(),
            "update",
            "a secondary zone takes no updates of its own: send them to its primary (remove update)",
        ));
    }
    if let Some(transfer) = &file.transfer {
        return Err(source.error(
            transfer.span(),
            "transfer",
            "a secondary zone does not give transfers yet: let other secondaries transfer from its primary (remove transfer)",
        ));
    }
    let primary = primary::parse_primary(source, section.get_ref())?;
    let pools = pools::parse_secondary_pools(source, file, &origin, probe)?;
    Ok(SecondaryZone {
        file: source.path.to_path_buf(),
        origin,
        primary,
        pools,
    })
}

/// Whether a top-level key `key` is written in the TOML (serde's default hides an empty list).
fn text_sets(text: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| table.contains_key(key))
}

/// A valid zone head (origin, NS at the apex, SOA) that tests add to, and a parser for it.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use crate::config::{ConfigError, ProbeSettings, ZoneConfig};

    pub const HEAD: &str = r#"
origin = "k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
"#;

    pub fn parse_text(text: &str) -> Result<ZoneConfig, ConfigError> {
        super::parse(
            Path::new("zones/z.toml"),
            text,
            &ProbeSettings::default(),
            7,
        )
    }

    pub fn parse_secondary_text(text: &str) -> Result<crate::config::SecondaryZone, ConfigError> {
        match super::parse_any(
            Path::new("zones/z.toml"),
            text,
            &ProbeSettings::default(),
            7,
        )? {
            super::ZoneDefinition::Secondary(zone) => Ok(*zone),
            super::ZoneDefinition::Files(zone) => panic!("not a secondary zone: {}", zone.origin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{HEAD, parse_text};

    #[test]
    fn zone_level_errors() {
        let relative =
            parse_text(&HEAD.replace("k8s.example.com.\"", "k8s.example.com\"")).unwrap_err();
        assert!(relative.message.contains("not absolute"), "{relative}");
        let no_soa = parse_text(&HEAD.replace(
            "[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\n",
            "",
        ))
        .unwrap_err();
        assert_eq!(no_soa.field.as_deref(), Some("soa"));
        let no_ns = parse_text(&HEAD.replace("type = \"NS\"", "type = \"TXT\"")).unwrap_err();
        assert!(no_ns.message.contains("no NS record"), "{no_ns}");
        let bad_a = parse_text(&HEAD.replace("192.0.2.53", "192.0.2")).unwrap_err();
        assert_eq!(bad_a.field.as_deref(), Some("records[1].value"));
        let cname = parse_text(&HEAD.replace("type = \"A\"", "type = \"CNAME\"").replace(
            "value = \"192.0.2.53\"",
            "value = \"x\" },\n  { name = \"ns1\", type = \"TXT\", value = \"y\"",
        ))
        .unwrap_err();
        assert!(cname.message.contains("CNAME and other data"), "{cname}");
        let unknown = parse_text(&format!("{HEAD}colour = 1\n")).unwrap_err();
        assert!(
            unknown.message.contains("unknown field `colour`"),
            "{unknown}"
        );
    }
}
