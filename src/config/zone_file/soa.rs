//! The `[soa]` table of a zone file.

use hickory_proto::rr::Name;

use super::MAX_TTL;
use super::names::parse_name;
use crate::config::error::{ConfigError, Source};
use crate::config::file::ZoneFile;
use crate::config::model::Soa;
use crate::config::values::integer_or;

/// The zone's SOA. `zone_ttl` is its TTL and `derived_serial` its serial unless `[soa]` sets
/// them.
pub(super) fn parse_soa(
    source: &Source<'_>,
    file: &ZoneFile,
    origin: &Name,
    zone_ttl: u32,
    derived_serial: u32,
) -> Result<Soa, ConfigError> {
    let Some(section) = &file.soa else {
        return Err(source.error(
            file.origin.span(),
            "soa",
            format!("zone {origin} has no [soa] table (add [soa] with mname, rname and minimum)"),
        ));
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
