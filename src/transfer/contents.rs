//! The records a zone transfer carries: the zone's data as configured, whatever the members'
//! health — the same RRsets that RFC 2136 prerequisites see.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};

use crate::config::{Member, PoolConfig, ZoneConfig};

/// The zone's records between the two SOAs of a transfer: static records, then each pool's
/// members as the A/AAAA records of the pool name and of each member's own name, and the SRV
/// records of the pool's SRV name (one per member name). A record that two sources make (two
/// pools sharing a member name) is carried once.
pub fn zone_records(zone: &ZoneConfig) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::with_capacity(zone.records.len());
    let mut seen: HashSet<(Name, RData)> = HashSet::new();
    let mut push = |record: Record| {
        if seen.insert((record.name.to_lowercase(), record.data.clone())) {
            records.push(record);
        }
    };
    for record in &zone.records {
        push(record.clone());
    }
    for pool in &zone.pools {
        for member in pool.members() {
            push(address_record(&pool.name, pool.ttl, member.address.ip()));
        }
        for member in pool.members() {
            push(address_record(&member.host, pool.ttl, member.address.ip()));
        }
        // One SRV record per member name, the first member's, as the pool answers it.
        let mut named: HashSet<&Name> = HashSet::new();
        for member in pool.members() {
            if named.insert(&member.host) {
                push(srv_record(pool, member));
            }
        }
    }
    records
}

fn address_record(owner: &Name, ttl: u32, address: IpAddr) -> Record {
    let data = match address {
        IpAddr::V4(ip) => RData::A(A(ip)),
        IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
    };
    Record::from_rdata(owner.clone(), ttl, data)
}

/// The SRV record a member's name gets.
fn srv_record(pool: &PoolConfig, member: &Member) -> Record {
    Record::from_rdata(
        pool.srv_name.clone(),
        pool.ttl,
        RData::SRV(SRV::new(
            member.priority,
            member.weight,
            member.address.port(),
            member.host.clone(),
        )),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::config::{ProbeSettings, parse_zone_text};

    #[test]
    fn every_configured_member_once_with_its_name_and_srv() {
        let zone = parse_zone_text(
            Path::new("zones/z.toml"),
            r#"
origin = "k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
[pool.api]
members = ["192.0.2.10", "192.0.2.11", "2001:db8::10"]
[pool.api2]
members = ["192.0.2.10"]
"#,
            &ProbeSettings::default(),
            7,
        )
        .expect("valid");
        let records = zone_records(&zone);
        let count = |name: &str, record_type: RecordType| {
            records
                .iter()
                .filter(|r| r.name.to_string() == name && r.record_type() == record_type)
                .count()
        };
        assert_eq!(count("api.k8s.example.com.", RecordType::A), 2);
        assert_eq!(count("api.k8s.example.com.", RecordType::AAAA), 1);
        assert_eq!(count("api2.k8s.example.com.", RecordType::A), 1);
        assert_eq!(count("ns1.k8s.example.com.", RecordType::A), 1);
        let srv = records
            .iter()
            .filter(|r| r.record_type() == RecordType::SRV)
            .count();
        assert_eq!(srv, 4);
        assert!(!records.iter().any(|r| r.record_type() == RecordType::SOA));
    }
}
