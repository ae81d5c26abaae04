//! What an authoritative server answers for one question, decided from a snapshot: the
//! records of each section and the response code. Wire format is `message`'s job.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use crate::zone::{Node, Snapshot, Zone, ZoneLookup};

/// CNAME chains longer than this are cut short; resolvers finish what is left.
const MAX_CNAME_CHAIN: usize = 8;

/// The sections of a response, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// AA: set on answers from our own zone data, clear on referrals and refusals.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// The served zone the question fell in, if any.
    pub zone: Option<Arc<str>>,
}

impl Answer {
    fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            zone: None,
        }
    }

    /// REFUSED: not ours to answer (another zone, another class, a zone transfer).
    pub fn refused() -> Self {
        Self::new(ResponseCode::Refused, false)
    }
}

/// Answers `name`/`record_type`/`class` from `snapshot`.
pub fn resolve(
    snapshot: &Snapshot,
    name: &LowerName,
    record_type: RecordType,
    class: DNSClass,
) -> Answer {
    if !matches!(class, DNSClass::IN | DNSClass::ANY) {
        return Answer::refused();
    }
    let Some(zone) = snapshot.find_zone(name) else {
        return Answer::refused();
    };
    if matches!(record_type, RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers: every apidns instance reads its own configuration.
        return Answer::refused();
    }

    let mut answer = Answer::new(ResponseCode::NoError, true);
    answer.zone = Some(zone.label.clone());
    let mut current = name.clone();
    let mut visited: Vec<LowerName> = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        match zone.lookup(&current) {
            ZoneLookup::Delegation(ns) => {
                let at_cut = ns
                    .first()
                    .is_some_and(|r| LowerName::new(&r.name) == current);
                if record_type == RecordType::DS && at_cut {
                    // DS lives on the parent side of a cut, and we hold none.
                    answer.authority.push(zone.negative_soa.clone());
                } else if answer.answers.is_empty() {
                    answer.authoritative = false;
                    answer.authority.extend_from_slice(ns);
                    answer.additional = glue(zone, ns);
                }
                return answer;
            }
            ZoneLookup::NxDomain => {
                // After a CNAME the rcode describes the last name in the chain (RFC 6604).
                answer.rcode = ResponseCode::NXDomain;
                answer.authority.push(zone.negative_soa.clone());
                return answer;
            }
            ZoneLookup::Node(node) => {
                if record_type != RecordType::CNAME
                    && let Some(cname) = node.rrset(RecordType::CNAME)
                {
                    answer.answers.extend_from_slice(cname);
                    visited.push(current.clone());
                    let target = match cname.first().map(|r| &r.data) {
                        Some(RData::CNAME(target)) => LowerName::new(&target.0),
                        _ => return answer,
                    };
                    // Follow the chain only inside this zone, and never around a loop.
                    if !zone.origin.zone_of(&target) || visited.contains(&target) {
                        return answer;
                    }
                    current = target;
                    continue;
                }
                if let Some(pool) = node
                    .srv_pool
                    .as_ref()
                    .filter(|_| matches!(record_type, RecordType::SRV | RecordType::ANY))
                {
                    // Health-checked SRV: the live members, with their addresses alongside.
                    let (records, additional) = pool.answer_srv();
                    if records.is_empty() {
                        answer.authority.push(zone.negative_soa.clone());
                    }
                    answer.answers.extend(records);
                    answer.additional = additional;
                    return answer;
                }
                let records = records_at(node, record_type);
                if records.is_empty() {
                    answer.authority.push(zone.negative_soa.clone());
                } else if record_type == RecordType::NS {
                    answer.additional = glue(zone, &records);
                }
                answer.answers.extend(records);
                return answer;
            }
        }
    }
    answer
}

/// The records of `record_type` at a node. ANY gets one record set (RFC 8482), not the node.
fn records_at(node: &Node, record_type: RecordType) -> Vec<Record> {
    if let Some(pool) = &node.pool {
        let wanted = match record_type {
            RecordType::ANY => [RecordType::A, RecordType::AAAA]
                .into_iter()
                .map(|family| pool.answer(family))
                .find(|records| !records.is_empty()),
            RecordType::A | RecordType::AAAA => Some(pool.answer(record_type)),
            _ => None,
        };
        if let Some(records) = wanted.filter(|records| !records.is_empty()) {
            return records;
        }
    }
    match record_type {
        RecordType::ANY => node.rrsets().next().map(<[Record]>::to_vec),
        _ => node.rrset(record_type).map(<[Record]>::to_vec),
    }
    .unwrap_or_default()
}

/// Addresses of the in-zone name servers among `ns`, for the additional section.
fn glue(zone: &Zone, ns: &[Record]) -> Vec<Record> {
    let mut additional = Vec::new();
    for record in ns {
        let RData::NS(target) = &record.data else {
            continue;
        };
        let target = LowerName::new(&target.0);
        if !zone.origin.zone_of(&target) {
            continue;
        }
        let Some(node) = zone.node(&target) else {
            continue;
        };
        for family in [RecordType::A, RecordType::AAAA] {
            if let Some(records) = node.rrset(family) {
                additional.extend_from_slice(records);
            }
            if let Some(pool) = &node.pool {
                additional.extend_from_slice(pool.live().records(family));
            }
        }
    }
    additional
}
