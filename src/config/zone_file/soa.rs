//! The zone's SOA: the `[soa]` table of a zone file, or the SOA record of its `records_file`.

use hickory_proto::rr::Name;

use super::MAX_TTL;
use super::names::parse_name;
use super::records_file::RecordsFile;
use crate::config::error::{ConfigError, Source};
use crate::config::file::ZoneFile;
use crate::config::model::Soa;
use crate::config::values::integer_or;

/// The zone's SOA. `zone_ttl` is its TTL and `derived_serial` its serial unless `[soa]` sets
/// them. An SOA in the `records_file` is the zone's SOA; one given both there and in `[soa]` is
/// an error, since either choice would silently ignore data the operator wrote.
pub(super) fn parse_soa(
    source: &Source<'_>,
    file: &ZoneFile,
    origin: &Name,
    zone_ttl: u32,
    derived_serial: u32,
    records_file: Option<&RecordsFile>,
) -> Result<Soa, ConfigError> {
    let from_file = match records_file {
        Some(records_file) => records_file.soa()?,
        None => None,
    };
    let section = match (&file.soa, from_file, records_file) {
        (Some(section), Some(_), Some(records_file)) => {
            return Err(source.error(
                section.span(),
                "soa",
                format!(
                    "zone {origin} has an SOA both here and in its records_file {}; keep one (remove [soa], or the SOA record from the file)",
                    records_file.path.display()
                ),
            ));
        }
        (_, Some(soa), _) => return Ok(soa),
        (Some(section), None, _) => section,
        (None, None, _) => {
            return Err(source.error(
                file.origin.span(),
                "soa",
                format!(
                    "zone {origin} has no [soa] table (add [soa] with mname, rname and minimum, or an SOA record to the records_file)"
                ),
            ));
        }
    };
    let soa = section.get_ref();
    let ttl_range = 0..=MAX_TTL;
    Ok(Soa {
        mname: parse_name(source, &soa.mname, origin, "soa.mname", false)?,
        rname: parse_name(source, &soa.rname, origin, "soa.rname", false)?,
        serial: integer_or(
            source,
            &soa.serial,
            "soa.serial",
            0..=u32::MAX as i64,
            derived_serial,
        )?,
        refresh: integer_or(source, &soa.refresh, "soa.refresh", ttl_range.clone(), 3600)?,
        retry: integer_or(source, &soa.retry, "soa.retry", ttl_range.clone(), 600)?,
        expire: integer_or(
            source,
            &soa.expire,
            "soa.expire",
            0..=i32::MAX as i64,
            604_800,
        )?,
        minimum: integer_or(source, &soa.minimum, "soa.minimum", ttl_range.clone(), 5)?,
        ttl: integer_or(source, &soa.ttl, "soa.ttl", ttl_range, zone_ttl)?,
    })
}
