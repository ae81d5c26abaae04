//! Static records of a zone file: `records = [{ name, type, value, ttl }]`, in zone-file
//! presentation format, and the rules between them (CNAME alone, no duplicates, NS at the apex).

use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::ParseError;
use toml::Spanned;

use super::MAX_TTL;
use super::names::parse_name;
use super::record_data::{long_string, qualify_names, servable_type};
use super::records_file::RecordsFile;
use crate::config::error::{ConfigError, Source};
use crate::config::file::{RecordEntry, ZoneFile};
use crate::config::values::integer_or;

/// Why a record's value is not valid data of its type.
#[derive(Debug, thiserror::Error)]
enum RdataError {
    #[error("{0}")]
    Syntax(#[from] ParseError),
    #[error(
        "a quoted string is {0} bytes long; DNS allows 255 per string, so split it into several quoted strings"
    )]
    LongString(usize),
    #[error("{0}")]
    Qualify(ProtoError),
}

/// The zone's static records: those of the `records_file` first (already checked one by one),
/// then the `records` entries in file order. The apex must have an NS record.
pub(super) fn parse_records(
    source: &Source<'_>,
    file: &ZoneFile,
    origin: &Name,
    zone_ttl: u32,
    from_file: Option<&RecordsFile>,
) -> Result<Vec<Record>, ConfigError> {
    let mut records: Vec<Record> = Vec::with_capacity(file.records.len());
    if let Some(from_file) = from_file {
        for record in &from_file.records {
            check_record_fits(record, &records, origin)
                .map_err(|misfit| from_file.error_at(record, misfit.to_string()))?;
            records.push(record.clone());
        }
    }
    for (index, entry) in file.records.iter().enumerate() {
        let field = format!("records[{index}]");
        let record = parse_record(source, entry, origin, zone_ttl, &field)?;
        check_record_fits(&record, &records, origin)
            .map_err(|message| source.error(entry.span(), &field, message))?;
        records.push(record);
    }
    if !records
        .iter()
        .any(|r| &r.name == origin && r.record_type() == RecordType::NS)
    {
        return Err(source.error(
            file.origin.span(),
            "records",
            format!(
                "zone {origin} has no NS record at the apex (add {{ name = \"@\", type = \"NS\", value = \"ns1.{origin}\" }} or an NS record at @ in the records_file)"
            ),
        ));
    }
    Ok(records)
}

fn parse_record(
    source: &Source<'_>,
    entry: &Spanned<RecordEntry>,
    origin: &Name,
    zone_ttl: u32,
    field: &str,
) -> Result<Record, ConfigError> {
    let entry = entry.get_ref();
    let name = parse_owner(source, &entry.name, origin, &format!("{field}.name"))?;
    let (record_type, type_text) = record_type(source, &entry.record_type, field)?;
    if name.is_wildcard() && record_type == RecordType::NS {
        return Err(source.error(
            entry.record_type.span(),
            format!("{field}.type"),
            format!("{name} is a wildcard: it cannot own NS records (RFC 4592 §4.2)"),
        ));
    }
    let ttl = integer_or(
        source,
        &entry.ttl,
        &format!("{field}.ttl"),
        0..=MAX_TTL,
        zone_ttl,
    )?;
    let value = entry.value.get_ref();
    let data = parse_rdata(record_type, value, origin).map_err(|error| {
        source.error(
            entry.value.span(),
            format!("{field}.value"),
            format!("\"{value}\" is not valid {type_text} data: {error}"),
        )
    })?;
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = DNSClass::IN;
    Ok(record)
}

/// A record's owner: a name as `parse_name` reads it, or a wildcard (RFC 4592) — `*` as the
/// leftmost label of such a name (`"*"` alone is the wildcard at the apex). Only records take
/// wildcards: pool names still go through `parse_name`, which refuses any `*` label.
fn parse_owner(
    source: &Source<'_>,
    text: &Spanned<String>,
    origin: &Name,
    field: &str,
) -> Result<Name, ConfigError> {
    let raw = text.get_ref().trim();
    if raw.split('.').skip(1).any(|label| label == "*") {
        return Err(source.error(
            text.span(),
            field,
            format!("\"{raw}\": `*` makes a wildcard only as the leftmost label"),
        ));
    }
    let base = match raw.strip_prefix('*') {
        Some("") => "@",
        Some(rest) => match rest.strip_prefix('.') {
            Some(base) => base,
            None => return parse_name(source, text, origin, field, true),
        },
        None => return parse_name(source, text, origin, field, true),
    };
    let base = Spanned::new(text.span(), base.to_string());
    let parent = parse_name(source, &base, origin, field, true)?;
    parent.prepend_label("*").map_err(|reason| {
        source.error(
            text.span(),
            field,
            format!("\"{raw}\" is not a valid name: {reason}"),
        )
    })
}

/// A record type that can be served from a static record, and its name in upper case.
fn record_type(
    source: &Source<'_>,
    text: &Spanned<String>,
    field: &str,
) -> Result<(RecordType, String), ConfigError> {
    let type_text = text.get_ref().trim().to_ascii_uppercase();
    let type_error = |message: String| source.error(text.span(), format!("{field}.type"), message);
    let record_type = RecordType::from_str(&type_text)
        .map_err(|_| type_error(format!("\"{type_text}\" is not a record type")))?;
    if record_type == RecordType::SOA {
        return Err(type_error(
            "the SOA record comes from the [soa] table or the records_file, not from records"
                .to_string(),
        ));
    }
    servable_type(record_type).map_err(|unservable| type_error(unservable.to_string()))?;
    Ok((record_type, type_text))
}

/// Record data in zone-file presentation format. Names inside the data may be relative to the
/// origin. A TXT value that is not quoted is taken as one string, so `value = "v=spf1 -all"`
/// means what it looks like.
fn parse_rdata(record_type: RecordType, value: &str, origin: &Name) -> Result<RData, RdataError> {
    if record_type == RecordType::TXT && !value.trim_start().starts_with('"') {
        return Ok(RData::TXT(TXT::new(character_strings(value))));
    }
    let data = RData::try_from_str(record_type, value)?;
    if let Some(length) = long_string(&data) {
        return Err(RdataError::LongString(length));
    }
    qualify_names(data, origin).map_err(RdataError::Qualify)
}

/// Splits `text` into TXT character-strings of at most 255 bytes, each cut at a character
/// boundary so that no multi-byte character is split between two strings. Empty text is one
/// empty string: TXT data holds at least one.
fn character_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::with_capacity(text.len() / 255 + 1);
    let mut rest = text;
    while rest.len() > 255 {
        let mut end = 255;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        strings.push(head.to_string());
        rest = tail;
    }
    strings.push(rest.to_string());
    strings
}

/// A record that does not fit with the records written before it.
#[derive(Debug, thiserror::Error)]
pub(super) enum Misfit {
    #[error("a CNAME cannot sit at the zone apex {0} (the apex carries SOA and NS)")]
    CnameAtApex(Name),
    #[error("{0} has two CNAME records")]
    TwoCnames(Name),
    #[error("{0} has a CNAME and other data; a CNAME must be the only record at its name")]
    CnameAndOtherData(Name),
    /// The record as written, `name type data`: one line of text is all the error needs.
    #[error("duplicate record: {0}")]
    Duplicate(String),
}

/// Rules that involve other records: CNAME stands alone and not at the apex, no duplicates.
/// The error is a sentence about `record`; the caller says where it was written.
pub(super) fn check_record_fits(
    record: &Record,
    earlier: &[Record],
    origin: &Name,
) -> Result<(), Misfit> {
    let is_cname = record.record_type() == RecordType::CNAME;
    if is_cname && &record.name == origin {
        return Err(Misfit::CnameAtApex(origin.clone()));
    }
    for other in earlier.iter().filter(|other| other.name == record.name) {
        if other.record_type() == RecordType::CNAME || is_cname {
            if other.record_type() == RecordType::CNAME && is_cname {
                return Err(Misfit::TwoCnames(record.name.clone()));
            }
            return Err(Misfit::CnameAndOtherData(record.name.clone()));
        }
        if other.record_type() == record.record_type() && other.data == record.data {
            return Err(Misfit::Duplicate(format!(
                "{} {} {}",
                record.name,
                record.record_type(),
                record.data
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HEAD, parse_text};
    use super::*;

    #[test]
    fn relative_names_in_values_are_qualified() {
        let zone = parse_text(&format!(
            "{HEAD}\n[[records]]\nname = \"www\"\ntype = \"MX\"\nvalue = \"10 mail\"\n"
        ));
        // records is already set inline above, so TOML itself refuses the second form.
        assert!(zone.is_err());
        let text = HEAD.replace(
            "]\n[soa]",
            "  { name = \"www\", type = \"MX\", value = \"10 mail\" },\n  { name = \"t\", type = \"TXT\", value = \"v=spf1 -all\" },\n]\n[soa]",
        );
        let zone = parse_text(&text).expect("valid");
        let mx = zone
            .records
            .iter()
            .find(|r| r.record_type() == RecordType::MX)
            .unwrap();
        assert_eq!(mx.data.to_string(), "10 mail.k8s.example.com.");
        let txt = zone
            .records
            .iter()
            .find(|r| r.record_type() == RecordType::TXT)
            .unwrap();
        assert_eq!(txt.data.to_string(), "v=spf1 -all");
    }

    #[test]
    fn long_txt_is_split_at_character_boundaries() {
        let value = format!("{}é{}", "a".repeat(254), "b".repeat(300));
        let strings = character_strings(&value);
        assert_eq!(
            strings.iter().map(String::len).collect::<Vec<_>>(),
            [254, 255, 47]
        );
        assert_eq!(strings.concat(), value);
        assert_eq!(character_strings(""), [""]);
        assert_eq!(character_strings(&"x".repeat(255)).len(), 1);

        let quoted = format!("\"{}\"", "x".repeat(256));
        let error = parse_rdata(RecordType::TXT, &quoted, &Name::root())
            .unwrap_err()
            .to_string();
        assert!(error.contains("256 bytes"), "{error}");
    }
}
