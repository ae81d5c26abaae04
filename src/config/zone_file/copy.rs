//! A secondary zone's data from a copy of its primary's (a zone transfer, or the copy kept in
//! `state_dir`), checked by the rules a zone file's data keeps: the copy becomes the zone's SOA
//! and static records, and each pool's A/AAAA records become its members.
//!
//! The primary may be apidns, which transfers each pool as the A/AAAA records of the pool's
//! name and of each member's name, and the SRV records of the pool's SRV name; a member's name,
//! port, weight and priority are read back from those. A BIND or Knot primary usually holds the
//! pool name's A/AAAA records only: the members then get the pool's defaults and generated
//! names, as members added by an update do.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::pools::collides_with_pool;
use super::record_data::servable_type;
use super::records::check_record_fits;
use crate::config::model::{
    Member, MemberSource, PoolConfig, PoolParts, SecondaryZone, Soa, ZoneConfig,
    generated_member_host,
};

/// Why a copy cannot be served: the last good copy stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CopyError(String);

impl CopyError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A secondary zone's data as its primary sent it: the SOA, and every other record.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferredCopy {
    pub soa: Record,
    pub records: Vec<Record>,
}

/// The copy in force of each secondary zone, by origin: laid over every configuration put in
/// force, as discovered members are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransferredCopies(pub std::collections::BTreeMap<Name, TransferredCopy>);

impl TransferredCopies {
    /// Adds to `config.zones` each secondary zone whose copy makes a servable zone with the
    /// zone file's settings in force. One that does not (a reload changed a pool's `min_up`
    /// beyond the copy's members, say) is logged and left without data: SERVFAIL.
    pub fn lay_over(&self, config: &mut crate::config::Config) {
        for secondary in &config.secondaries {
            let Some(copy) = self.0.get(&secondary.origin) else {
                continue;
            };
            if config
                .zones
                .iter()
                .any(|zone| zone.origin == secondary.origin)
            {
                continue;
            }
            match zone_from_copy(secondary, &copy.soa, &copy.records) {
                Ok(zone) => config.zones.push(zone),
                Err(error) => {
                    tracing::error!(zone = %secondary.origin, %error, "the copy in force does not fit the zone file; the zone answers SERVFAIL until a copy that fits");
                }
            }
        }
    }
}

/// The zone `secondary` serves with `soa` and `records` (the SOA not among them) from its
/// primary.
pub fn zone_from_copy(
    secondary: &SecondaryZone,
    soa: &Record,
    records: &[Record],
) -> Result<ZoneConfig, CopyError> {
    let origin = &secondary.origin;
    let soa = soa_of(origin, soa)?;
    let mut addresses: HashMap<Name, Vec<IpAddr>> = HashMap::new();
    for record in records {
        if let Some(address) = address_of(record) {
            addresses
                .entry(record.name.to_lowercase())
                .or_default()
                .push(address);
        }
    }
    // Records the pools take (their names' addresses, their SRV records, their members' names'
    // addresses): everything else is static data.
    let mut taken: HashSet<(Name, RecordType)> = HashSet::new();
    let mut taken_member_names: HashSet<(Name, IpAddr)> = HashSet::new();
    let mut pools: Vec<PoolConfig> = Vec::with_capacity(secondary.pools.len());
    for parts in &secondary.pools {
        let pool = pool_from_copy(parts, records, &addresses)?;
        taken.insert((pool.name.clone(), RecordType::A));
        taken.insert((pool.name.clone(), RecordType::AAAA));
        taken.insert((pool.srv_name.clone(), RecordType::SRV));
        for member in pool.members() {
            taken_member_names.insert((member.host.clone(), member.address.ip()));
        }
        pools.push(pool);
    }

    let mut statics: Vec<Record> = Vec::new();
    let mut by_name: HashMap<Name, Vec<Record>> = HashMap::new();
    let mut has_apex_ns = false;
    for record in records {
        let name = record.name.to_lowercase();
        let record_type = record.record_type();
        if record_type == RecordType::SOA
            || taken.contains(&(name.clone(), record_type))
            || address_of(record).is_some_and(|a| taken_member_names.contains(&(name.clone(), a)))
        {
            continue;
        }
        if !origin.zone_of(&name) {
            return Err(CopyError(format!(
                "{name} {record_type} is not in zone {origin}"
            )));
        }
        servable_type(record_type).map_err(|error| CopyError(format!("{name}: {error}")))?;
        let mut record = record.clone();
        record.name = name.clone();
        let earlier = by_name.entry(name.clone()).or_default();
        check_record_fits(&record, earlier, origin)
            .map_err(|misfit| CopyError(misfit.to_string()))?;
        earlier.push(record.clone());
        for pool in &pools {
            if collides_with_pool(&record, &pool.name, origin) || name == pool.srv_name {
                return Err(CopyError(format!(
                    "{name} {record_type} is at a name of pool {}, which carries only its members' records",
                    pool.name
                )));
            }
            if let Some(member) = pool.members().iter().find(|m| m.host == name) {
                return Err(CopyError(format!(
                    "{name} {record_type} is at the name of member {} of pool {}",
                    member.address.ip(),
                    pool.name
                )));
            }
        }
        has_apex_ns |= &name == origin && record_type == RecordType::NS;
        statics.push(record);
    }
    if !has_apex_ns {
        return Err(CopyError(format!(
            "zone {origin} has no NS record at the apex"
        )));
    }
    Ok(ZoneConfig {
        file: secondary.file.clone(),
        data_files: Vec::new(),
        origin: origin.clone(),
        soa,
        records: statics,
        pools,
        update: None,
        transfer: None,
        primary: Some(secondary.primary.clone()),
    })
}

/// The copy's SOA, at the apex.
fn soa_of(origin: &Name, record: &Record) -> Result<Soa, CopyError> {
    let RData::SOA(soa) = &record.data else {
        return Err(CopyError(format!(
            "the copy starts with {} {}, not an SOA",
            record.name,
            record.record_type()
        )));
    };
    if &record.name.to_lowercase() != origin {
        return Err(CopyError(format!(
            "the copy's SOA is at {}, not at the zone's apex {origin}",
            record.name
        )));
    }
    // A negative timer is nonsense in a SOA (RFC 1035 reads them unsigned); zero is safe.
    let timer = |value: i32| u32::try_from(value).unwrap_or(0);
    Ok(Soa {
        mname: soa.mname.to_lowercase(),
        rname: soa.rname.to_lowercase(),
        serial: soa.serial,
        refresh: timer(soa.refresh),
        retry: timer(soa.retry),
        expire: timer(soa.expire),
        minimum: soa.minimum,
        ttl: record.ttl,
    })
}

/// One pool of the copy: its settings from the file, its members from the copy's A/AAAA records
/// at the pool's name. A member named by one of the pool's SRV records takes that record's
/// name, port, weight and priority.
fn pool_from_copy(
    parts: &PoolParts,
    records: &[Record],
    addresses: &HashMap<Name, Vec<IpAddr>>,
) -> Result<PoolConfig, CopyError> {
    let srv: Vec<&hickory_proto::rr::rdata::SRV> = records
        .iter()
        .filter(|r| r.name.to_lowercase() == parts.srv_name)
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv),
            _ => None,
        })
        .collect();
    let mut members: Vec<Member> = Vec::new();
    for &address in addresses.get(&parts.name).into_iter().flatten() {
        if members.iter().any(|m| m.address.ip() == address) {
            continue;
        }
        let named = srv.iter().find(|srv| {
            addresses
                .get(&srv.target.to_lowercase())
                .is_some_and(|at| at.contains(&address))
        });
        let member = match named {
            Some(srv) => Member {
                address: SocketAddr::new(address, srv.port),
                host: srv.target.to_lowercase(),
                weight: srv.weight,
                priority: srv.priority,
                source: MemberSource::Transferred,
            },
            None => {
                let socket = SocketAddr::new(address, parts.new_member.port);
                Member {
                    address: socket,
                    host: generated_member_host(socket, &parts.new_member.domain)
                        .map_err(|error| CopyError(error.to_string()))?,
                    weight: parts.new_member.weight,
                    priority: parts.new_member.priority,
                    source: MemberSource::Transferred,
                }
            }
        };
        members.push(member);
    }
    let mut parts = parts.clone();
    // A drained address that left the pool is no longer drained.
    parts
        .drain
        .retain(|ip| members.iter().any(|m| m.address.ip() == *ip));
    parts.members = members;
    PoolConfig::new(parts).map_err(|error| CopyError(error.to_string()))
}

fn address_of(record: &Record) -> Option<IpAddr> {
    match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, SRV};

    use super::super::testing::parse_secondary_text;
    use super::*;

    const ZONE: &str = "origin = \"k8s.example.com.\"\nprimary = { address = \"127.0.0.1:53\" }\n[pool.api]\nport = 6443\n";

    fn name(text: &str) -> Name {
        Name::from_str(text).expect("a name")
    }

    fn soa() -> Record {
        let data = SOA::new(
            name("ns1.k8s.example.com."),
            name("hostmaster.k8s.example.com."),
            42,
            60,
            10,
            600,
            5,
        );
        Record::from_rdata(name("k8s.example.com."), 300, RData::SOA(data))
    }

    fn a(owner: &str, address: &str) -> Record {
        Record::from_rdata(name(owner), 5, RData::A(A(address.parse().expect("v4"))))
    }

    fn head() -> Vec<Record> {
        vec![
            Record::from_rdata(
                name("k8s.example.com."),
                300,
                RData::NS(NS(name("ns1.k8s.example.com."))),
            ),
            a("ns1.k8s.example.com.", "192.0.2.53"),
        ]
    }

    #[test]
    fn a_bind_style_copy_gives_members_the_pool_defaults() {
        let secondary = parse_secondary_text(ZONE).expect("valid");
        let mut records = head();
        records.push(a("api.k8s.example.com.", "192.0.2.10"));
        records.push(a("API.k8s.example.com.", "192.0.2.11"));
        let zone = zone_from_copy(&secondary, &soa(), &records).expect("servable");
        assert_eq!(zone.soa.serial, 42);
        assert_eq!(zone.soa.refresh, 60);
        assert_eq!(zone.records.len(), 2, "{:?}", zone.records);
        let members = zone.pools[0].members();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].address, "192.0.2.10:6443".parse().unwrap());
        assert_eq!(
            members[1].host.to_string(),
            "ip-192-0-2-11.api.k8s.example.com."
        );
        assert_eq!(members[0].source, MemberSource::Transferred);
        assert!(zone.primary.is_some());
    }

    #[test]
    fn an_apidns_copy_gives_members_their_names_ports_and_weights() {
        let secondary = parse_secondary_text(ZONE).expect("valid");
        let mut records = head();
        records.push(a("api.k8s.example.com.", "192.0.2.10"));
        records.push(a("cp1.api.k8s.example.com.", "192.0.2.10"));
        records.push(Record::from_rdata(
            name("_https._tcp.api.k8s.example.com."),
            5,
            RData::SRV(SRV::new(1, 20, 7443, name("cp1.api.k8s.example.com."))),
        ));
        let zone = zone_from_copy(&secondary, &soa(), &records).expect("servable");
        let member = &zone.pools[0].members()[0];
        assert_eq!(member.address, "192.0.2.10:7443".parse().unwrap());
        assert_eq!(member.host.to_string(), "cp1.api.k8s.example.com.");
        assert_eq!((member.priority, member.weight), (1, 20));
        assert_eq!(
            zone.records.len(),
            2,
            "member and SRV records are the pool's"
        );
    }

    #[test]
    fn copies_that_break_the_zone_rules_are_refused() {
        let secondary = parse_secondary_text(ZONE).expect("valid");
        let with = |extra: Vec<Record>| {
            let mut records = head();
            records.extend(extra);
            zone_from_copy(&secondary, &soa(), &records)
        };
        let no_members = with(Vec::new()).unwrap_err();
        assert!(no_members.0.contains("no members"), "{no_members}");
        let cname = with(vec![
            a("api.k8s.example.com.", "192.0.2.10"),
            Record::from_rdata(
                name("api.k8s.example.com."),
                5,
                RData::CNAME(CNAME(name("elsewhere.example."))),
            ),
        ])
        .unwrap_err();
        assert!(cname.0.contains("pool"), "{cname}");
        let outside = with(vec![
            a("api.k8s.example.com.", "192.0.2.10"),
            a("www.example.org.", "192.0.2.1"),
        ])
        .unwrap_err();
        assert!(outside.0.contains("not in zone"), "{outside}");
        let no_ns = zone_from_copy(
            &secondary,
            &soa(),
            &[a("api.k8s.example.com.", "192.0.2.10")],
        )
        .unwrap_err();
        assert!(no_ns.0.contains("no NS record"), "{no_ns}");
        let not_soa = zone_from_copy(&secondary, &head()[0], &head()).unwrap_err();
        assert!(not_soa.0.contains("not an SOA"), "{not_soa}");
        let min_up = parse_secondary_text(&format!("{ZONE}min_up = 2\n")).expect("valid");
        let mut records = head();
        records.push(a("api.k8s.example.com.", "192.0.2.10"));
        let error = zone_from_copy(&min_up, &soa(), &records).unwrap_err();
        assert!(error.0.contains("min_up"), "{error}");
    }
}
