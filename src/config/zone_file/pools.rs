//! Pools of a zone file: `[pool.<name>]` tables, each a name answered with its live members'
//! addresses, with SRV records, answer limits, probe settings and drained members.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::{Name, Record, RecordType};
use toml::Spanned;

use super::MAX_TTL;
use super::discover::parse_discover;
use super::members::{MemberDefaults, parse_member, parse_member_entry};
use super::names::parse_name;
use crate::config::error::{ConfigError, Source};
use crate::config::file::{MemberEntry, PoolSection, ZoneFile};
use crate::config::model::{
    AllDown, DEFAULT_POOL_PORT, DEFAULT_POOL_TTL, DEFAULT_SRV_SERVICE, DEFAULT_SRV_WEIGHT, Member,
    NewMemberDefaults, PoolConfig, PoolParts, ProbeSettings,
};
use crate::config::probe_kind::PoolName;
use crate::config::probe_settings::probe_settings;
use crate::config::values::{integer, integer_or};

/// Every pool of the zone, in name order. A pool's names (its own, its members', its SRV name)
/// must not collide with static `records` or with another pool's.
pub(super) fn parse_pools(
    source: &Source<'_>,
    file: &ZoneFile,
    origin: &Name,
    records: &[Record],
    probe: &ProbeSettings,
) -> Result<Vec<PoolConfig>, ConfigError> {
    let mut pools: Vec<PoolConfig> = Vec::with_capacity(file.pool.len());
    for (key, section) in &file.pool {
        let field = format!("pool.{}", key.get_ref());
        let parts = parse_pool(source, key, section, origin, probe, Data::Files)?;
        // The steps of `parse_pool` report a broken rule with its file, line and field; the
        // pool's own check here is the same rule kept in the type, so it cannot fail here.
        let pool =
            PoolConfig::new(parts).map_err(|error| source.error(key.span(), &field, error))?;
        if let Some(other) = pools.iter().find(|other| other.name == pool.name) {
            return Err(source.error(
                key.span(),
                field,
                format!("pool {} is defined twice", other.name),
            ));
        }
        if let Some(record) = records
            .iter()
            .find(|r| collides_with_pool(r, &pool.name, origin))
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
        check_pool_names(source, key, &field, &pool, &pools, records)?;
        pools.push(pool);
    }
    Ok(pools)
}

/// The pools of a secondary zone: every setting but the members, which come from the primary's
/// copy (checked against the settings when a copy arrives).
pub(super) fn parse_secondary_pools(
    source: &Source<'_>,
    file: &ZoneFile,
    origin: &Name,
    probe: &ProbeSettings,
) -> Result<Vec<PoolParts>, ConfigError> {
    let mut pools: Vec<PoolParts> = Vec::with_capacity(file.pool.len());
    for (key, section) in &file.pool {
        let pool = parse_pool(source, key, section, origin, probe, Data::Primary)?;
        if let Some(other) = pools.iter().find(|other| {
            other.name == pool.name || other.srv_name == pool.name || other.name == pool.srv_name
        }) {
            return Err(source.error(
                key.span(),
                format!("pool.{}", key.get_ref()),
                format!("pool {} collides with pool {}", pool.name, other.name),
            ));
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// Where a pool's members come from: the file, or a primary (a secondary zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Files,
    Primary,
}

/// A secondary pool's `min_up` is checked against the members of each copy, not here.
const MAX_MIN_UP: usize = 1000;

/// One `[pool.<name>]` table; `key` is its name as written.
fn parse_pool(
    source: &Source<'_>,
    key: &Spanned<String>,
    section: &Spanned<PoolSection>,
    origin: &Name,
    defaults: &ProbeSettings,
    data: Data,
) -> Result<PoolParts, ConfigError> {
    let prefix = format!("pool.{}", key.get_ref());
    let pool = section.get_ref();
    let name = parse_name(source, key, origin, &prefix, true)?;
    let (discover, new_member, members) = match data {
        Data::Files => {
            // Before the members' own check, so that a discovering pool with none is told why
            // it needs one.
            let discover = parse_discover(source, pool, &prefix)?;
            let new_member = new_member_defaults(source, pool, &prefix, origin, &name)?;
            let Some(listed) = &pool.members else {
                return Err(source.error(
                    key.span(),
                    format!("{prefix}.members"),
                    "a pool needs at least one member (members = [\"192.0.2.10\", ...])",
                ));
            };
            if listed.get_ref().is_empty() {
                return Err(source.error(
                    listed.span(),
                    format!("{prefix}.members"),
                    "a pool needs at least one member",
                ));
            }
            let members = parse_members(source, listed, &prefix, origin, &new_member)?;
            (discover, new_member, members)
        }
        Data::Primary => {
            from_the_primary(
                source,
                pool.members.as_ref().map(Spanned::span),
                &format!("{prefix}.members"),
            )?;
            from_the_primary(
                source,
                pool.discover.as_ref().map(Spanned::span),
                &format!("{prefix}.discover"),
            )?;
            let new_member = new_member_defaults(source, pool, &prefix, origin, &name)?;
            (None, new_member, Vec::new())
        }
    };
    let srv_name = srv_name(source, key, pool, &prefix, &name)?;
    let all_down = all_down(source, pool, &prefix)?;
    let most_members = match data {
        Data::Files => members.len(),
        Data::Primary => MAX_MIN_UP,
    };
    let (min_up, max_answers) = answer_limits(source, pool, &prefix, most_members)?;
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
    let drain = drain(source, pool, &prefix, new_member.port, &members, data)?;
    let ttl = integer_or(
        source,
        &pool.ttl,
        &format!("{prefix}.ttl"),
        0..=MAX_TTL,
        DEFAULT_POOL_TTL,
    )?;
    Ok(PoolParts {
        name,
        srv_name,
        ttl,
        members,
        all_down,
        min_up,
        max_answers,
        probe,
        drain,
        new_member,
        discover,
    })
}

/// On a secondary zone, data that comes from the primary cannot also be written in the file.
pub(super) fn from_the_primary(
    source: &Source<'_>,
    span: Option<std::ops::Range<usize>>,
    field: &str,
) -> Result<(), ConfigError> {
    match span {
        Some(span) => Err(source.error(
            span,
            field,
            "comes from the primary on a secondary zone (primary = {...}); remove it from the file",
        )),
        None => Ok(()),
    }
}

/// What a member takes from the pool unless it says otherwise: port, SRV weight and priority,
/// and the domain its generated name lives in (the pool's name unless `member_domain` is set).
fn new_member_defaults(
    source: &Source<'_>,
    pool: &PoolSection,
    prefix: &str,
    origin: &Name,
    name: &Name,
) -> Result<NewMemberDefaults, ConfigError> {
    let port: u16 = integer_or(
        source,
        &pool.port,
        &format!("{prefix}.port"),
        1..=65535,
        DEFAULT_POOL_PORT,
    )?;
    let domain = match &pool.member_domain {
        Some(text) => parse_name(
            source,
            text,
            origin,
            &format!("{prefix}.member_domain"),
            true,
        )?,
        None => name.clone(),
    };
    Ok(NewMemberDefaults {
        port,
        weight: integer_or(
            source,
            &pool.weight,
            &format!("{prefix}.weight"),
            0..=65535,
            DEFAULT_SRV_WEIGHT,
        )?,
        priority: integer_or(
            source,
            &pool.priority,
            &format!("{prefix}.priority"),
            0..=65535,
            0,
        )?,
        domain,
        max_answers_follows_members: pool.max_answers.is_none(),
    })
}

/// The pool's members: no address listed twice, and no name carrying two addresses of a kind.
fn parse_members(
    source: &Source<'_>,
    listed: &Spanned<Vec<Spanned<MemberEntry>>>,
    prefix: &str,
    origin: &Name,
    new_member: &NewMemberDefaults,
) -> Result<Vec<Member>, ConfigError> {
    let defaults = MemberDefaults {
        port: new_member.port,
        weight: new_member.weight,
        priority: new_member.priority,
        domain: &new_member.domain,
        origin,
    };
    let mut members: Vec<Member> = Vec::with_capacity(listed.get_ref().len());
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    // By name (lower case) and address family: a scan of the members before each one made a
    // pool of thousands of members take seconds to load.
    let mut names: HashMap<(Name, bool), usize> = HashMap::new();
    for (index, entry) in listed.get_ref().iter().enumerate() {
        let field = format!("{prefix}.members[{index}]");
        let member = parse_member_entry(source, entry, &field, &defaults)?;
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
        let name = (member.host.to_lowercase(), member.address.is_ipv4());
        if let Some(&other) = names.get(&name) {
            return Err(source.error(
                entry.span(),
                field,
                format!(
                    "the name {} is already used by {prefix}.members[{other}]",
                    member.host
                ),
            ));
        }
        names.insert(name, index);
        members.push(member);
    }
    let addresses: HashSet<IpAddr> = members.iter().map(|m| m.address.ip()).collect();
    if addresses.len() != members.len() {
        return Err(source.error(
            listed.span(),
            format!("{prefix}.members"),
            "the same address is listed with two ports; a DNS answer carries addresses only",
        ));
    }
    Ok(members)
}

/// Owner of the pool's SRV records: the service label (default `_https._tcp`) under the
/// pool's name.
fn srv_name(
    source: &Source<'_>,
    key: &Spanned<String>,
    pool: &PoolSection,
    prefix: &str,
    name: &Name,
) -> Result<Name, ConfigError> {
    let Some(label) = &pool.srv else {
        return Name::from_ascii(DEFAULT_SRV_SERVICE)
            .and_then(|service| service.append_domain(name))
            .map_err(|error| source.error(key.span(), prefix, error));
    };
    let field = format!("{prefix}.srv");
    let relative = Name::from_ascii(label.get_ref().trim())
        .ok()
        .filter(|n| !n.is_fqdn() && !n.is_root() && !n.iter().any(|label| label == b"*"))
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
    Ok(relative
        .append_domain(name)
        .map_err(|error| source.error(label.span(), &field, error))?
        .to_lowercase())
}

fn all_down(source: &Source<'_>, pool: &PoolSection, prefix: &str) -> Result<AllDown, ConfigError> {
    let Some(value) = &pool.all_down else {
        return Ok(AllDown::All);
    };
    match value.get_ref().as_str() {
        "all" => Ok(AllDown::All),
        "none" => Ok(AllDown::None),
        other => Err(source.error(
            value.span(),
            format!("{prefix}.all_down"),
            format!("\"{other}\" is not a policy (expected \"all\" or \"none\")"),
        )),
    }
}

/// `min_up` (default 0: only when none is up) and `max_answers` (default: every member).
fn answer_limits(
    source: &Source<'_>,
    pool: &PoolSection,
    prefix: &str,
    member_count: usize,
) -> Result<(usize, usize), ConfigError> {
    let min_up = match &pool.min_up {
        Some(value) => integer(
            source,
            value,
            &format!("{prefix}.min_up"),
            0..=member_count as i64,
        )?,
        None => 0,
    };
    let max_answers = match &pool.max_answers {
        Some(value) => integer(source, value, &format!("{prefix}.max_answers"), 1..=1000)?,
        None => member_count,
    };
    Ok((min_up, max_answers))
}

/// Members the operator took out of the answers, by address; each must be a member (on a
/// secondary zone, a drained address that is not in a copy is dropped with it).
fn drain(
    source: &Source<'_>,
    pool: &PoolSection,
    prefix: &str,
    port: u16,
    members: &[Member],
    data: Data,
) -> Result<Vec<IpAddr>, ConfigError> {
    let Some(list) = &pool.drain else {
        return Ok(Vec::new());
    };
    let addresses: HashSet<IpAddr> = members.iter().map(|m| m.address.ip()).collect();
    let mut drain = Vec::new();
    for (index, entry) in list.get_ref().iter().enumerate() {
        let address = parse_member(entry.get_ref(), port)
            .filter(|address| data == Data::Primary || addresses.contains(&address.ip()))
            .ok_or_else(|| {
                source.error(
                    entry.span(),
                    format!("{prefix}.drain[{index}]"),
                    format!(
                        "\"{}\" is not the address of a member of this pool",
                        entry.get_ref()
                    ),
                )
            })?;
        drain.push(address.ip());
    }
    Ok(drain)
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
    for member in pool.members() {
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
            if let Some(twin) = other.members().iter().find(|m| {
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

pub(super) fn collides_with_pool(record: &Record, pool: &Name, origin: &Name) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{HEAD, parse_text};
    use super::*;

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
        assert_eq!(
            pool.members()[0].address,
            "192.0.2.10:6443".parse().unwrap()
        );
        assert_eq!(
            pool.members()[1].address,
            "192.0.2.11:7443".parse().unwrap()
        );
        assert_eq!(
            pool.members()[2].address,
            "[2001:db8::10]:6443".parse().unwrap()
        );
        assert_eq!(
            pool.members()[0].host.to_string(),
            "ip-192-0-2-10.api.k8s.example.com."
        );
        assert_eq!(
            pool.members()[2].host.to_string(),
            "ip-2001-db8--10.api.k8s.example.com."
        );
        assert_eq!(
            pool.srv_name.to_string(),
            "_https._tcp.api.k8s.example.com."
        );
        assert_eq!(
            (pool.members()[0].weight, pool.members()[0].priority),
            (10, 0)
        );
        assert_eq!(
            (pool.ttl, pool.max_answers(), pool.all_down),
            (5, 3, AllDown::All)
        );
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
}
