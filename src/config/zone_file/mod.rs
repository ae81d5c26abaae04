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
//! - `transfer.rs`: who may transfer the zone, and whom to notify of changes.

mod discover;
mod members;
mod names;
mod pools;
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
use super::model::{DEFAULT_ZONE_TTL, ProbeSettings, ZoneConfig};
use super::values::integer_or;

/// TTLs above this are almost certainly a typo, and RFC 2181 caps them at 2^31 - 1 anyway.
const MAX_TTL: i64 = 7 * 24 * 3600;

/// Loads every `*.toml` file in `dir`, in name order, and checks them against each other.
pub(crate) fn load_dir(dir: &Path, probe: &ProbeSettings) -> Result<Vec<ZoneConfig>, ConfigError> {
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

    let mut zones: Vec<ZoneConfig> = Vec::with_capacity(files.len());
    for path in files {
        let zone = load_file(&path, probe)?;
        if let Some(other) = zones.iter().find(|other| other.origin == zone.origin) {
            return Err(ConfigError::file(
                &path,
                format!(
                    "zone {} is already defined in {}",
                    zone.origin,
                    other.file.display()
                ),
            ));
        }
        zones.push(zone);
    }
    Ok(zones)
}

/// Reads and checks one zone file.
fn load_file(path: &Path, probe: &ProbeSettings) -> Result<ZoneConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::file(path, format!("cannot read the file: {error}")))?;
    let modified = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(1, |age| age.as_secs() as u32);
    parse(path, &text, probe, modified)
}

/// Checks one zone file's text. `derived_serial` is the SOA serial when the file sets none.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
    derived_serial: u32,
) -> Result<ZoneConfig, ConfigError> {
    let source = Source { path, text };
    let file: ZoneFile = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
    let origin = names::parse_origin(&source, &file.origin)?;
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
    Ok(ZoneConfig {
        file: path.to_path_buf(),
        data_files: records_file.map(|file| file.files).unwrap_or_default(),
        origin,
        soa,
        records,
        pools,
        update,
        transfer,
    })
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
