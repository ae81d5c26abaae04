//! From an authenticated UPDATE message to member changes: the prerequisites (RFC 2136
//! section 3.2) are checked against the zone as served, and the update section (section 3.4) is
//! checked against the policy (A/AAAA at pool names only) and simulated on the zone's pools.
//! Either every change is returned or an error code: nothing is applied here.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::journal::{self, Operation};
use crate::zone::{Zone, ZoneLookup};

/// One member added to or removed from a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub pool: Name,
    pub operation: Operation,
    pub address: IpAddr,
}

/// The changes `message` asks of `zone`, or the response code that refuses them all.
pub fn plan(message: &Message, zone: &Zone) -> Result<Vec<Change>, ResponseCode> {
    let origin = zone.config.origin.clone();
    check_prerequisites(&message.answers, zone, &origin)?;
    for record in &message.authorities {
        prescan(record, &origin)?;
    }

    let mut pools = zone.config.pools.clone();
    let mut changes = Vec::new();
    for record in &message.authorities {
        let name = record.name.to_lowercase();
        let pool = pools
            .iter_mut()
            .find(|pool| pool.name == name)
            .ok_or(ResponseCode::Refused)?;
        let (operation, address) = match (record.dns_class, &record.data) {
            (DNSClass::IN, RData::A(a)) => (Operation::Add, IpAddr::V4(a.0)),
            (DNSClass::IN, RData::AAAA(aaaa)) => (Operation::Add, IpAddr::V6(aaaa.0)),
            (DNSClass::NONE, RData::A(a)) => (Operation::Remove, IpAddr::V4(a.0)),
            (DNSClass::NONE, RData::AAAA(aaaa)) => (Operation::Remove, IpAddr::V6(aaaa.0)),
            _ => return Err(ResponseCode::Refused),
        };
        let changed =
            journal::apply(pool, operation, address).map_err(|_| ResponseCode::Refused)?;
        if !changed {
            continue;
        }
        if operation == Operation::Add {
            // The new member's generated name must not land on a name the zone already uses.
            let host = pool.members().last().map(|member| member.host.clone());
            if let Some(host) = host
                && zone.config.records.iter().any(|record| record.name == host)
            {
                return Err(ResponseCode::Refused);
            }
        }
        changes.push(Change {
            pool: pool.name.clone(),
            operation,
            address,
        });
    }
    Ok(changes)
}

/// RFC 2136 section 3.2.
fn check_prerequisites(
    prerequisites: &[Record],
    zone: &Zone,
    origin: &Name,
) -> Result<(), ResponseCode> {
    let mut expected: HashMap<(Name, RecordType), Vec<RData>> = HashMap::new();
    for record in prerequisites {
        let name = record.name.to_lowercase();
        if !origin.zone_of(&name) {
            return Err(ResponseCode::NotZone);
        }
        if record.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        let empty = matches!(record.data, RData::Update0(_));
        let record_type = record.record_type();
        match record.dns_class {
            DNSClass::ANY if !empty => return Err(ResponseCode::FormErr),
            DNSClass::ANY if record_type == RecordType::ANY => {
                if !in_use(zone, &name) {
                    return Err(ResponseCode::NXDomain);
                }
            }
            DNSClass::ANY => {
                if rrset(zone, &name, record_type).is_empty() {
                    return Err(ResponseCode::NXRRSet);
                }
            }
            DNSClass::NONE if !empty => return Err(ResponseCode::FormErr),
            DNSClass::NONE if record_type == RecordType::ANY => {
                if in_use(zone, &name) {
                    return Err(ResponseCode::YXDomain);
                }
            }
            DNSClass::NONE => {
                if !rrset(zone, &name, record_type).is_empty() {
                    return Err(ResponseCode::YXRRSet);
                }
            }
            DNSClass::IN if !empty => {
                expected
                    .entry((name, record_type))
                    .or_default()
                    .push(record.data.clone());
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    // Value-dependent: the RRset must be exactly the listed records, in any order.
    for ((name, record_type), mut wanted) in expected {
        let mut present = rrset(zone, &name, record_type);
        let key = |data: &RData| data.to_string();
        wanted.sort_by_key(key);
        wanted.dedup();
        present.sort_by_key(key);
        if wanted != present {
            return Err(ResponseCode::NXRRSet);
        }
    }
    Ok(())
}

/// RFC 2136 section 3.4.1: the update section's records are checked before anything is done.
fn prescan(record: &Record, origin: &Name) -> Result<(), ResponseCode> {
    if !origin.zone_of(&record.name.to_lowercase()) {
        return Err(ResponseCode::NotZone);
    }
    let record_type = record.record_type();
    let meta = matches!(
        record_type,
        RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
    );
    let empty = matches!(record.data, RData::Update0(_));
    match record.dns_class {
        DNSClass::IN if meta || empty => Err(ResponseCode::FormErr),
        DNSClass::ANY if record.ttl != 0 || !empty => Err(ResponseCode::FormErr),
        DNSClass::NONE if record.ttl != 0 || record_type == RecordType::ANY || meta => {
            Err(ResponseCode::FormErr)
        }
        DNSClass::IN | DNSClass::ANY | DNSClass::NONE => Ok(()),
        _ => Err(ResponseCode::FormErr),
    }
}

/// The data of the RRset `name`/`record_type` as served: static records and, at a pool name,
/// every configured member of the family (whatever its health).
fn rrset(zone: &Zone, name: &Name, record_type: RecordType) -> Vec<RData> {
    let ZoneLookup::Node(node) = zone.lookup(&LowerName::new(name)) else {
        return Vec::new();
    };
    let mut data: Vec<RData> = node
        .rrset(record_type)
        .map(|records| records.iter().map(|r| r.data.clone()).collect())
        .unwrap_or_default();
    if let Some(pool) = &node.pool {
        for member in &pool.members {
            let record = member.address_record(name, 0);
            if record.record_type() == record_type {
                data.push(record.data);
            }
        }
    }
    data
}

/// A name is in use when it owns at least one record (an empty non-terminal is not).
fn in_use(zone: &Zone, name: &Name) -> bool {
    match zone.lookup(&LowerName::new(name)) {
        ZoneLookup::Node(node) => {
            node.rrsets().next().is_some() || node.pool.is_some() || node.srv_pool.is_some()
        }
        _ => false,
    }
}

/// The zone an update names, when the zone section is well formed (one SOA question, class IN).
pub fn zone_name(message: &Message) -> Result<Name, ResponseCode> {
    match message.queries.as_slice() {
        [zone] if zone.query_type() == RecordType::SOA && zone.query_class() == DNSClass::IN => {
            Ok(zone.name().to_lowercase())
        }
        _ => Err(ResponseCode::FormErr),
    }
}
