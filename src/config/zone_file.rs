//! Zone files: origin, SOA, static records and pools, one file per zone.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::UNIX_EPOCH;

use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::file::{MemberEntry, PoolSection, RecordEntry, UpdateSection, ZoneFile};
use super::model::{
    AllDown, DEFAULT_POOL_PORT, DEFAULT_POOL_TTL, DEFAULT_SRV_SERVICE, DEFAULT_SRV_WEIGHT,
    DEFAULT_ZONE_TTL, Member, NewMemberDefaults, PoolConfig, ProbeSettings, Soa, UpdatePolicy,
    ZoneConfig,
};
use super::probe_kind::PoolName;
use super::probe_settings::probe_settings;
use super::values::{integer, integer_or};

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
pub fn load_file(path: &Path, probe: &ProbeSettings) -> Result<ZoneConfig, ConfigError> {
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
pub fn parse(
    path: &Path,
    text: &str,
    probe: &ProbeSettings,
    derived_serial: u32,
) -> Result<ZoneConfig, ConfigError> {
    let source = Source { path, text };
    let file: ZoneFile = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
    let origin = parse_origin(&source, &file.origin)?;
    let zone_ttl: u32 = integer_or(&source, &file.ttl, "ttl", 0..=MAX_TTL, DEFAULT_ZONE_TTL)?;
    let soa = parse_soa(&source, &file, &origin, zone_ttl, derived_serial)?;

    let mut records: Vec<Record> = Vec::with_capacity(file.records.len());
    for (index, entry) in file.records.iter().enumerate() {
        let field = format!("records[{index}]");
        let record = parse_record(&source, entry, &origin, zone_ttl, &field)?;
        check_record_fits(&source, entry, &record, &records, &origin, &field)?;
        records.push(record);
    }
    if !records
        .iter()
        .any(|r| r.name == origin && r.record_type() == RecordType::NS)
    {
        return Err(source.error(
            file.origin.span(),
            "records",
            format!(
                "zone {origin} has no NS record at the apex (add {{ name = \"@\", type = \"NS\", value = \"ns1.{origin}\" }})"
            ),
        ));
    }

    let mut pools: Vec<PoolConfig> = Vec::with_capacity(file.pool.len());
    for (key, section) in &file.pool {
        let pool = parse_pool(&source, key, section, &origin, probe)?;
        let field = format!("pool.{}", key.get_ref());
        if let Some(other) = pools.iter().find(|other| other.name == pool.name) {
            return Err(source.error(
                key.span(),
                field,
                format!("pool {} is defined twice", other.name),
            ));
        }
        if let Some(record) = records
            .iter()
            .find(|r| collides_with_pool(r, &pool.name, &origin))
        {
            return Err(source.error(
                key.span(),
                field,
                format!(
                    "pool name {} collides with the static {} record at the same name; a pool's name carries only its members' A/AAAA records",
                    pool.name,
                    record.record_type()
                ),
            ));
        }
        check_pool_names(&source, key, &field, &pool, &pools, &records)?;
        pools.push(pool);
    }

    let update = match &file.update {
        Some(section) => Some(parse_update(&source, section.get_ref())?),
        None => None,
    };

    Ok(ZoneConfig {
        file: path.to_path_buf(),
        origin,
        soa,
        records,
        pools,
        update,
    })
}

/// The `update` table. That its keys exist is checked against the main file by `config::load`.
fn parse_update(source: &Source<'_>, section: &UpdateSection) -> Result<UpdatePolicy, ConfigError> {
    if section.allow.get_ref() != "pool-members" {
        return Err(source.error(
            section.allow.span(),
            "update.allow",
            format!(
                "\"{}\" is not an update policy (expected \"pool-members\": A/AAAA records at pool names add and remove members)",
                section.allow.get_ref()
            ),
        ));
    }
    if section.keys.get_ref().is_empty() {
        return Err(source.error(
            section.keys.span(),
            "update.keys",
            "needs at least one TSIG key name; without keys nobody could update the zone (remove the update table instead)",
        ));
    }
    let mut keys = Vec::new();
    for (index, key) in section.keys.get_ref().iter().enumerate() {
        let name = super::key_name::key_name(key.get_ref()).map_err(|message| {
            source.error(key.span(), format!("update.keys[{index}]"), message)
        })?;
        keys.push(name);
    }
    Ok(UpdatePolicy { keys })
}

/// The names a pool adds besides its own (its members' names and its SRV name) must not clash
/// with static records or with another pool's names.
fn check_pool_names(
    source: &Source<'_>,
    key: &Spanned<String>,
    field: &str,
    pool: &PoolConfig,
    earlier: &[PoolConfig],
    records: &[Record],
) -> Result<(), ConfigError> {
    let clash = |message: String| Err(source.error(key.span(), field, message));
    if let Some(record) = records.iter().find(|r| r.name == pool.srv_name) {
        return clash(format!(
            "the pool's SRV name {} already has a static {} record",
            pool.srv_name,
            record.record_type()
        ));
    }
    for member in &pool.members {
        if let Some(record) = records.iter().find(|r| r.name == member.host) {
            return clash(format!(
                "member name {} (for {}) already has a static {} record; name the member differently or set member_domain",
                member.host,
                member.address,
                record.record_type()
            ));
        }
        if member.host == pool.name || earlier.iter().any(|other| other.name == member.host) {
            return clash(format!("member name {} is also a pool name", member.host));
        }
        for other in earlier {
            if let Some(twin) = other.members.iter().find(|m| {
                m.host == member.host
                    && m.address.ip() != member.address.ip()
                    && m.address.is_ipv4() == member.address.is_ipv4()
            }) {
                return clash(format!(
                    "member name {} means {} here and {} in pool {}",
                    member.host,
                    member.address.ip(),
                    twin.address.ip(),
                    other.name
                ));
            }
        }
    }
    if earlier.iter().any(|other| other.name == pool.srv_name) {
        return clash(format!(
            "the pool's SRV name {} is also a pool name",
            pool.srv_name
        ));
    }
    Ok(())
}

fn collides_with_pool(record: &Record, pool: &Name, origin: &Name) -> bool {
    if &record.name != pool {
        return false;
    }
    // At the apex a pool lives beside the zone's own NS and other data; only address and alias
    // records would be ambiguous there.
    record.name != *origin
        || matches!(
            record.record_type(),
            RecordType::A | RecordType::AAAA | RecordType::CNAME
        )
}

fn parse_origin(source: &Source<'_>, origin: &Spanned<String>) -> Result<Name, ConfigError> {
    let text = origin.get_ref();
    if !text.ends_with('.') {
        return Err(source.error(
            origin.span(),
            "origin",
            format!("\"{text}\" is not absolute (write it with a trailing dot: \"{text}.\")"),
        ));
    }
    let name = Name::from_ascii(text)
        .map_err(|error| source.error(origin.span(), "origin", format!("\"{text}\": {error}")))?;
    if name.is_root() {
        return Err(source.error(origin.span(), "origin", "the root zone cannot be served"));
    }
    Ok(name.to_lowercase())
}

/// A name from the file: `@` is the origin, a trailing dot makes it absolute, anything else is
/// relative to the origin. The result must lie inside the zone when `in_zone` is set.
fn parse_name(
    source: &Source<'_>,
    text: &Spanned<String>,
    origin: &Name,
    field: &str,
    in_zone: bool,
) -> Result<Name, ConfigError> {
    let raw = text.get_ref().trim();
    let name = if raw == "@" {
        Ok(origin.clone())
    } else if raw.is_empty() {
        Err("a name cannot be empty (use \"@\" for the zone apex)".to_string())
    } else if raw.split('.').any(|label| label == "*") {
        Err("wildcard names are not supported".to_string())
    } else {
        Name::parse(raw, Some(origin))
            .map_err(|error| format!("\"{raw}\" is not a valid name: {error}"))
    };
    let name = name.map_err(|message| source.error(text.span(), field, message))?;
    let name = name.to_lowercase();
    if in_zone && !origin.zone_of(&name) {
        return Err(source.error(
            text.span(),
            field,
            format!("{name} is outside the zone {origin}"),
        ));
    }
    Ok(name)
}

fn parse_soa(
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

fn parse_record(
    source: &Source<'_>,
    entry: &Spanned<RecordEntry>,
    origin: &Name,
    zone_ttl: u32,
    field: &str,
) -> Result<Record, ConfigError> {
    let entry_ref = entry.get_ref();
    let name = parse_name(
        source,
        &entry_ref.name,
        origin,
        &format!("{field}.name"),
        true,
    )?;
    let type_text = entry_ref.record_type.get_ref().trim().to_ascii_uppercase();
    let type_error = |message: String| {
        source.error(
            entry_ref.record_type.span(),
            format!("{field}.type"),
            message,
        )
    };
    let record_type = RecordType::from_str(&type_text)
        .map_err(|_| type_error(format!("\"{type_text}\" is not a record type")))?;
    match record_type {
        RecordType::SOA => {
            return Err(type_error(
                "the SOA record comes from the [soa] table, not from records".to_string(),
            ));
        }
        RecordType::Unknown(_)
        | RecordType::OPT
        | RecordType::ANY
        | RecordType::AXFR
        | RecordType::IXFR
        | RecordType::TSIG
        | RecordType::NULL
        | RecordType::ZERO => {
            return Err(type_error(format!(
                "{type_text} records cannot be served statically"
            )));
        }
        _ => {}
    }
    let ttl = integer_or(
        source,
        &entry_ref.ttl,
        &format!("{field}.ttl"),
        0..=MAX_TTL,
        zone_ttl,
    )?;
    let value_field = format!("{field}.value");
    let value = entry_ref.value.get_ref();
    let data = parse_rdata(record_type, value, origin).map_err(|message| {
        source.error(
            entry_ref.value.span(),
            value_field,
            format!("\"{value}\" is not valid {type_text} data: {message}"),
        )
    })?;
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = DNSClass::IN;
    Ok(record)
}

/// Record data in zone-file presentation format. Names inside the data may be relative to the
/// origin. A TXT value that is not quoted is taken as one string, so `value = "v=spf1 -all"`
/// means what it looks like.
fn parse_rdata(record_type: RecordType, value: &str, origin: &Name) -> Result<RData, String> {
    if record_type == RecordType::TXT && !value.trim_start().starts_with('"') {
        return Ok(RData::TXT(TXT::new(character_strings(value))));
    }
    let data = RData::try_from_str(record_type, value).map_err(|error| error.to_string())?;
    if let RData::TXT(txt) = &data
        && let Some(long) = txt.txt_data.iter().find(|string| string.len() > 255)
    {
        return Err(format!(
            "a quoted string is {} bytes long; DNS allows 255 per string, so split it into several quoted strings",
            long.len()
        ));
    }
    let qualify = |name: &Name| -> Result<Name, String> {
        let name = if name.is_fqdn() {
            name.clone()
        } else {
            name.clone()
                .append_domain(origin)
                .map_err(|error| error.to_string())?
        };
        Ok(name.to_lowercase())
    };
    Ok(match data {
        RData::CNAME(CNAME(target)) => RData::CNAME(CNAME(qualify(&target)?)),
        RData::NS(NS(target)) => RData::NS(NS(qualify(&target)?)),
        RData::PTR(PTR(target)) => RData::PTR(PTR(qualify(&target)?)),
        RData::MX(mx) => RData::MX(MX::new(mx.preference, qualify(&mx.exchange)?)),
        RData::SRV(srv) => RData::SRV(SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            qualify(&srv.target)?,
        )),
        other => other,
    })
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

/// Rules that involve other records: CNAME stands alone and not at the apex, no duplicates.
fn check_record_fits(
    source: &Source<'_>,
    entry: &Spanned<RecordEntry>,
    record: &Record,
    earlier: &[Record],
    origin: &Name,
    field: &str,
) -> Result<(), ConfigError> {
    let error = |message: String| source.error(entry.span(), field, message);
    let is_cname = record.record_type() == RecordType::CNAME;
    if is_cname && &record.name == origin {
        return Err(error(format!(
            "a CNAME cannot sit at the zone apex {origin} (the apex carries SOA and NS)"
        )));
    }
    for other in earlier.iter().filter(|other| other.name == record.name) {
        if other.record_type() == RecordType::CNAME || is_cname {
            if other.record_type() == RecordType::CNAME && is_cname {
                return Err(error(format!("{} has two CNAME records", record.name)));
            }
            return Err(error(format!(
                "{} has a CNAME and other data; a CNAME must be the only record at its name",
                record.name
            )));
        }
        if other.record_type() == record.record_type() && other.data == record.data {
            return Err(error(format!(
                "duplicate record: {} {} {}",
                record.name,
                record.record_type(),
                record.data
            )));
        }
    }
    Ok(())
}

fn parse_pool(
    source: &Source<'_>,
    key: &Spanned<String>,
    section: &Spanned<PoolSection>,
    origin: &Name,
    defaults: &ProbeSettings,
) -> Result<PoolConfig, ConfigError> {
    let prefix = format!("pool.{}", key.get_ref());
    let pool = section.get_ref();
    let name = parse_name(source, key, origin, &prefix, true)?;
    let port: u16 = integer_or(
        source,
        &pool.port,
        &format!("{prefix}.port"),
        1..=65535,
        DEFAULT_POOL_PORT,
    )?;

    if pool.members.get_ref().is_empty() {
        return Err(source.error(
            pool.members.span(),
            format!("{prefix}.members"),
            "a pool needs at least one member",
        ));
    }
    let member_domain = match &pool.member_domain {
        Some(text) => parse_name(
            source,
            text,
            origin,
            &format!("{prefix}.member_domain"),
            true,
        )?,
        None => name.clone(),
    };
    let default_weight: u16 = integer_or(
        source,
        &pool.weight,
        &format!("{prefix}.weight"),
        0..=65535,
        DEFAULT_SRV_WEIGHT,
    )?;
    let default_priority: u16 = integer_or(
        source,
        &pool.priority,
        &format!("{prefix}.priority"),
        0..=65535,
        0,
    )?;
    let mut members: Vec<Member> = Vec::with_capacity(pool.members.get_ref().len());
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    for (index, entry) in pool.members.get_ref().iter().enumerate() {
        let field = format!("{prefix}.members[{index}]");
        let member = parse_member_entry(
            source,
            entry,
            &field,
            MemberDefaults {
                port,
                weight: default_weight,
                priority: default_priority,
                domain: &member_domain,
                origin,
            },
        )?;
        if let Some(first) = seen.insert(member.address, index) {
            return Err(source.error(
                entry.span(),
                field,
                format!(
                    "{} is already listed as {prefix}.members[{first}]",
                    member.address
                ),
            ));
        }
        // One name may carry an IPv4 and an IPv6 address (a dual-stack node), never two of a kind.
        if let Some(other) = members
            .iter()
            .position(|m| m.host == member.host && m.address.is_ipv4() == member.address.is_ipv4())
        {
            return Err(source.error(
                entry.span(),
                field,
                format!(
                    "the name {} is already used by {prefix}.members[{other}]",
                    member.host
                ),
            ));
        }
        members.push(member);
    }
    let addresses: HashSet<IpAddr> = members.iter().map(|m| m.address.ip()).collect();
    if addresses.len() != members.len() {
        return Err(source.error(
            pool.members.span(),
            format!("{prefix}.members"),
            "the same address is listed with two ports; a DNS answer carries addresses only",
        ));
    }
    let srv_name = match &pool.srv {
        Some(label) => {
            let field = format!("{prefix}.srv");
            let relative = Name::from_ascii(label.get_ref().trim())
                .ok()
                .filter(|n| !n.is_fqdn() && !n.is_root())
                .ok_or_else(|| {
                    source.error(
                        label.span(),
                        &field,
                        format!(
                            "\"{}\" is not a service label (expected e.g. \"_https._tcp\")",
                            label.get_ref()
                        ),
                    )
                })?;
            relative
                .append_domain(&name)
                .map_err(|error| source.error(label.span(), &field, error.to_string()))?
                .to_lowercase()
        }
        None => Name::from_ascii(DEFAULT_SRV_SERVICE)
            .and_then(|service| service.append_domain(&name))
            .map_err(|error| source.error(key.span(), &prefix, error.to_string()))?,
    };

    let all_down = match &pool.all_down {
        None => AllDown::All,
        Some(value) => match value.get_ref().as_str() {
            "all" => AllDown::All,
            "none" => AllDown::None,
            other => {
                return Err(source.error(
                    value.span(),
                    format!("{prefix}.all_down"),
                    format!("\"{other}\" is not a policy (expected \"all\" or \"none\")"),
                ));
            }
        },
    };
    let member_count = members.len() as i64;
    let min_up = match &pool.min_up {
        Some(value) => integer(source, value, &format!("{prefix}.min_up"), 0..=member_count)?,
        None => 0,
    };
    let max_answers = match &pool.max_answers {
        Some(value) => integer(source, value, &format!("{prefix}.max_answers"), 1..=1000)?,
        None => members.len(),
    };
    let pool_name = PoolName {
        name: &name,
        span: key.span(),
    };
    let probe = probe_settings(
        source,
        pool.probe.as_ref(),
        defaults,
        &format!("{prefix}.probe"),
        Some(&pool_name),
    )?;
    let mut drain = Vec::new();
    if let Some(list) = &pool.drain {
        for (index, entry) in list.get_ref().iter().enumerate() {
            let field = format!("{prefix}.drain[{index}]");
            let address = parse_member(entry.get_ref(), port)
                .filter(|address| members.iter().any(|m| m.address.ip() == address.ip()))
                .ok_or_else(|| {
                    source.error(
                        entry.span(),
                        &field,
                        format!(
                            "\"{}\" is not the address of a member of this pool",
                            entry.get_ref()
                        ),
                    )
                })?;
            drain.push(address.ip());
        }
    }
    Ok(PoolConfig {
        name,
        srv_name,
        ttl: integer_or(
            source,
            &pool.ttl,
            &format!("{prefix}.ttl"),
            0..=MAX_TTL,
            DEFAULT_POOL_TTL,
        )?,
        members,
        all_down,
        min_up,
        max_answers,
        probe,
        drain,
        new_member: NewMemberDefaults {
            port,
            weight: default_weight,
            priority: default_priority,
            domain: member_domain,
            max_answers_follows_members: pool.max_answers.is_none(),
        },
    })
}

/// What a member takes from its pool unless it says otherwise.
struct MemberDefaults<'a> {
    port: u16,
    weight: u16,
    priority: u16,
    domain: &'a Name,
    origin: &'a Name,
}

fn parse_member_entry(
    source: &Source<'_>,
    entry: &Spanned<MemberEntry>,
    field: &str,
    defaults: MemberDefaults<'_>,
) -> Result<Member, ConfigError> {
    let not_an_address = |text: &str, span| {
        source.error(
            span,
            field,
            format!(
                "\"{text}\" is not a member address (expected an IPv4 or IPv6 address, optionally with a port: \"192.0.2.10\", \"192.0.2.10:6443\", \"2001:db8::10\", \"[2001:db8::10]:6443\")"
            ),
        )
    };
    let table = match entry.get_ref() {
        MemberEntry::Address(text) => {
            let address = parse_member(text, defaults.port)
                .ok_or_else(|| not_an_address(text, entry.span()))?;
            return Ok(Member {
                address,
                host: generated_host(address, defaults.domain)
                    .map_err(|message| source.error(entry.span(), field, message))?,
                weight: defaults.weight,
                priority: defaults.priority,
            });
        }
        MemberEntry::Table(table) => table,
    };
    let port = integer_or(
        source,
        &table.port,
        &format!("{field}.port"),
        1..=65535,
        defaults.port,
    )?;
    let text = table.address.get_ref();
    let address = match text.trim().parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => {
            let address = parse_member(text, port)
                .ok_or_else(|| not_an_address(text, table.address.span()))?;
            if table.port.is_some() {
                return Err(source.error(
                    table.address.span(),
                    format!("{field}.address"),
                    "the port is given twice (in the address and as port)",
                ));
            }
            address
        }
    };
    let host = match &table.name {
        Some(name) => {
            let name_field = format!("{field}.name");
            let text = name.get_ref().trim();
            let host = if text.ends_with('.') {
                Name::from_ascii(text)
            } else {
                Name::from_ascii(text).and_then(|n| n.append_domain(defaults.domain))
            }
            .map_err(|error| {
                source.error(name.span(), &name_field, format!("\"{text}\": {error}"))
            })?
            .to_lowercase();
            if text.is_empty() || text == "@" || !defaults.origin.zone_of(&host) {
                return Err(source.error(
                    name.span(),
                    name_field,
                    format!(
                        "\"{text}\" is not a host name inside the zone {}",
                        defaults.origin
                    ),
                ));
            }
            host
        }
        None => generated_host(address, defaults.domain)
            .map_err(|message| source.error(entry.span(), field, message))?,
    };
    Ok(Member {
        address,
        host,
        weight: integer_or(
            source,
            &table.weight,
            &format!("{field}.weight"),
            0..=65535,
            defaults.weight,
        )?,
        priority: integer_or(
            source,
            &table.priority,
            &format!("{field}.priority"),
            0..=65535,
            defaults.priority,
        )?,
    })
}

/// `ip-192-0-2-10.<domain>` for a member configured without a name.
pub(crate) fn generated_host(address: SocketAddr, domain: &Name) -> Result<Name, String> {
    let label = format!("ip-{}", address.ip().to_string().replace(['.', ':'], "-"));
    Name::from_ascii(&label)
        .and_then(|name| name.append_domain(domain))
        .map(|name| name.to_lowercase())
        .map_err(|error| format!("cannot name the member {address}: {error}"))
}

/// `"192.0.2.10"`, `"192.0.2.10:6443"`, `"2001:db8::10"` or `"[2001:db8::10]:6443"`.
fn parse_member(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(address, default_port));
    }
    let address: SocketAddr = text.parse().ok()?;
    (address.port() != 0).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
origin = "k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
"#;

    fn parse_text(text: &str) -> Result<ZoneConfig, ConfigError> {
        parse(
            Path::new("zones/z.toml"),
            text,
            &ProbeSettings::default(),
            7,
        )
    }

    #[test]
    fn example_shape_parses() {
        let zone = parse_text(&format!(
            "{HEAD}\n[pool.api]\nmembers = [\"192.0.2.10\", \"192.0.2.11:7443\", \"2001:db8::10\"]\n"
        ))
        .expect("valid");
        assert_eq!(zone.origin.to_string(), "k8s.example.com.");
        assert_eq!(zone.soa.serial, 7);
        assert_eq!(zone.soa.mname.to_string(), "ns1.k8s.example.com.");
        let pool = &zone.pools[0];
        assert_eq!(pool.name.to_string(), "api.k8s.example.com.");
        assert_eq!(pool.members[0].address, "192.0.2.10:6443".parse().unwrap());
        assert_eq!(pool.members[1].address, "192.0.2.11:7443".parse().unwrap());
        assert_eq!(
            pool.members[2].address,
            "[2001:db8::10]:6443".parse().unwrap()
        );
        assert_eq!(
            pool.members[0].host.to_string(),
            "ip-192-0-2-10.api.k8s.example.com."
        );
        assert_eq!(
            pool.members[2].host.to_string(),
            "ip-2001-db8--10.api.k8s.example.com."
        );
        assert_eq!(
            pool.srv_name.to_string(),
            "_https._tcp.api.k8s.example.com."
        );
        assert_eq!((pool.members[0].weight, pool.members[0].priority), (10, 0));
        assert_eq!(
            (pool.ttl, pool.max_answers, pool.all_down),
            (5, 3, AllDown::All)
        );
    }

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
        let error = parse_rdata(RecordType::TXT, &quoted, &Name::root()).unwrap_err();
        assert!(error.contains("256 bytes"), "{error}");
    }

    #[test]
    fn errors_point_at_the_field() {
        let cases = [
            (
                "[pool.api]\nmembers = [\"192.0.2.300\"]\n",
                "pool.api.members[0]",
                "not a member address",
            ),
            (
                "[pool.api]\nmembers = []\n",
                "pool.api.members",
                "at least one member",
            ),
            (
                "[pool.api]\nmembers = [\"192.0.2.1\", \"192.0.2.1\"]\n",
                "pool.api.members[1]",
                "already listed",
            ),
            (
                "[pool.ns1]\nmembers = [\"192.0.2.1\"]\n",
                "pool.ns1",
                "collides",
            ),
            (
                "[pool.api]\nmembers = [\"192.0.2.1\"]\nall_down = \"some\"\n",
                "pool.api.all_down",
                "expected \"all\" or \"none\"",
            ),
            (
                "[pool.api]\nmembers = [\"192.0.2.1\"]\nprobe = { interval = \"200ms\" }\n",
                "pool.api.probe.timeout",
                "shorter than interval",
            ),
            (
                "[pool.\"api.other.org.\"]\nmembers = [\"192.0.2.1\"]\n",
                "pool.api.other.org.",
                "outside the zone",
            ),
        ];
        for (tail, field, message) in cases {
            let error = parse_text(&format!("{HEAD}{tail}")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{error}");
            assert!(error.message.contains(message), "{error}");
            assert!(error.position.is_some_and(|(line, _)| line > 9), "{error}");
        }
    }

    #[test]
    fn named_members_and_srv_settings() {
        let zone = parse_text(&format!(
            "{HEAD}\n[pool.api]\nsrv = \"_kube._tcp\"\nweight = 5\nmember_domain = \"nodes\"\nmembers = [\n  {{ name = \"cp1\", address = \"192.0.2.10\", weight = 20 }},\n  {{ name = \"cp1\", address = \"2001:db8::10\", port = 7443 }},\n  \"192.0.2.11\",\n]\n"
        ))
        .expect("valid");
        let pool = &zone.pools[0];
        assert_eq!(pool.srv_name.to_string(), "_kube._tcp.api.k8s.example.com.");
        assert_eq!(
            pool.members[0].host.to_string(),
            "cp1.nodes.k8s.example.com."
        );
        assert_eq!(
            pool.members[1].host, pool.members[0].host,
            "a dual-stack node"
        );
        assert_eq!(
            pool.members[1].address,
            "[2001:db8::10]:7443".parse().unwrap()
        );
        assert_eq!((pool.members[0].weight, pool.members[1].weight), (20, 5));
        assert_eq!(
            pool.members[2].host.to_string(),
            "ip-192-0-2-11.nodes.k8s.example.com."
        );
    }

    #[test]
    fn member_table_errors() {
        let cases = [
            (
                "members = [{ adress = \"192.0.2.1\" }]",
                "unknown field `adress`",
            ),
            (
                "members = [{ name = \"a\", address = \"192.0.2.1\" }, { name = \"a\", address = \"192.0.2.2\" }]",
                "already used",
            ),
            (
                "members = [{ address = \"192.0.2.1:80\", port = 81 }]",
                "port is given twice",
            ),
            (
                "members = [{ name = \"ns1\", address = \"192.0.2.1\" }]\nmember_domain = \"@\"",
                "already has a static A record",
            ),
            (
                "members = [\"192.0.2.1\"]\nsrv = \"_x._tcp.\"",
                "not a service label",
            ),
        ];
        for (body, message) in cases {
            let error = parse_text(&format!("{HEAD}\n[pool.api]\n{body}\n")).unwrap_err();
            assert!(error.message.contains(message), "{body}: {error}");
            assert!(error.position.is_some(), "{error}");
        }
    }

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
