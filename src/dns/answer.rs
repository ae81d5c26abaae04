//! What an authoritative server answers for one question, decided from a snapshot: the
//! records of each section and the response code. Wire format is `message`'s job.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

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

    /// SERVFAIL: a secondary zone with no copy it can vouch for (none yet, or expired).
    pub fn unavailable() -> Self {
        Self::new(ResponseCode::ServFail, false)
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
        if snapshot.is_unavailable(name) {
            return Answer::unavailable();
        }
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
        // A wildcard's records are answered as the question's name's own (RFC 4592 §3.3.1).
        let (node, owner) = match zone.lookup(&current) {
            ZoneLookup::Delegation(ns) => {
                return referral(zone, ns, &current, record_type, answer);
            }
            ZoneLookup::NxDomain => {
                // After a CNAME the rcode describes the last name in the chain (RFC 6604).
                answer.rcode = ResponseCode::NXDomain;
                answer.authority.push(zone.negative_soa.clone());
                return answer;
            }
            ZoneLookup::Node(node) => (node, None),
            ZoneLookup::Wildcard(node) => (node, Some(Name::from(&current))),
        };
        if record_type != RecordType::CNAME
            && let Some(cname) = node.rrset(RecordType::CNAME)
        {
            answer
                .answers
                .extend(owned_by(cname.to_vec(), owner.as_ref()));
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
        return answer_at_node(zone, node, owner.as_ref(), record_type, answer);
    }
    answer
}

/// The answer at a delegation: the NS records and their glue (AA clear), unless a CNAME chain
/// led here, or the question is the DS at the cut itself, which lives on the parent side and
/// which we hold none of.
fn referral(
    zone: &Zone,
    ns: &[Record],
    current: &LowerName,
    record_type: RecordType,
    mut answer: Answer,
) -> Answer {
    let at_cut = ns
        .first()
        .is_some_and(|r| LowerName::new(&r.name) == *current);
    if record_type == RecordType::DS && at_cut {
        answer.authority.push(zone.negative_soa.clone());
    } else if answer.answers.is_empty() {
        answer.authoritative = false;
        answer.authority.extend_from_slice(ns);
        answer.additional = glue(zone, ns);
    }
    answer
}

/// The answer at an existing (or wildcard-synthesized, `owner` set) node that is not a CNAME:
/// health-checked SRV, the pool's live addresses, or static data; NODATA carries the SOA.
fn answer_at_node(
    zone: &Zone,
    node: &Node,
    owner: Option<&Name>,
    record_type: RecordType,
    mut answer: Answer,
) -> Answer {
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
    let records = owned_by(records_at(node, record_type), owner);
    if records.is_empty() {
        answer.authority.push(zone.negative_soa.clone());
    } else if record_type == RecordType::NS {
        answer.additional = glue(zone, &records);
    }
    answer.answers.extend(records);
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

/// `records` with `owner` as their owner name when they come from a wildcard; as they are
/// otherwise.
fn owned_by(mut records: Vec<Record>, owner: Option<&Name>) -> Vec<Record> {
    if let Some(owner) = owner {
        for record in &mut records {
            record.name = owner.clone();
        }
    }
    records
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, parse_main_text, parse_zone_text};
    use crate::zone::{Health, MemberStatus};

    /// Wildcards at the apex and below an empty non-terminal, empty non-terminals without one,
    /// a wildcard CNAME, a pool with named members, and a delegation.
    const ZONE: &str = r#"
origin = "wild.test."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "*", type = "A", value = "192.0.2.1" },
  { name = "*", type = "TXT", value = "wild" },
  { name = "www", type = "A", value = "192.0.2.80" },
  { name = "a.b.deep", type = "AAAA", value = "2001:db8::a" },
  { name = "*.deep", type = "AAAA", value = "2001:db8::d" },
  { name = "e.f.ent", type = "A", value = "192.0.2.70" },
  { name = "*.cn", type = "CNAME", value = "www" },
  { name = "sub", type = "NS", value = "ns.sub" },
  { name = "ns.sub", type = "A", value = "192.0.2.99" },
]
[soa]
mname = "ns1"
rname = "hostmaster.wild.test."
serial = 1
[pool.api]
members = [{ name = "cp1", address = "192.0.2.10" }]
"#;

    fn snapshot() -> Snapshot {
        let path = Path::new("/etc/apidns/apidns.toml");
        let (server, probe) =
            parse_main_text(path, "[server]\nlisten = [\"127.0.0.1:53\"]\n").expect("main");
        let zone = parse_zone_text(Path::new("zones/wild.toml"), ZONE, &probe, 1).expect("zone");
        let config = Config {
            path: path.to_path_buf(),
            server,
            probe,
            zones: vec![zone],
            secondaries: Vec::new(),
        };
        Snapshot::build(&config, |_, _| Arc::new(MemberStatus::new(Health::Up)))
    }

    fn lower(name: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(name).expect("a valid name"))
    }

    fn encloser(snapshot: &Snapshot, name: &str) -> String {
        let name = lower(name);
        let zone = snapshot.find_zone(&name).expect("in the zone");
        zone.closest_encloser(&name)
            .expect("the origin at least")
            .to_string()
    }

    fn ask(snapshot: &Snapshot, name: &str, record_type: RecordType) -> Answer {
        resolve(snapshot, &lower(name), record_type, DNSClass::IN)
    }

    fn answered(answer: &Answer) -> Vec<String> {
        answer.answers.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn closest_encloser_is_the_longest_existing_ancestor() {
        let snapshot = snapshot();
        assert_eq!(encloser(&snapshot, "x.wild.test."), "wild.test.");
        assert_eq!(encloser(&snapshot, "x.y.wild.test."), "wild.test.");
        // Empty non-terminals exist.
        assert_eq!(encloser(&snapshot, "x.deep.wild.test."), "deep.wild.test.");
        assert_eq!(
            encloser(&snapshot, "x.b.deep.wild.test."),
            "b.deep.wild.test."
        );
        assert_eq!(
            encloser(&snapshot, "x.f.ent.wild.test."),
            "f.ent.wild.test."
        );
        // So do pool, member and SRV names.
        assert_eq!(encloser(&snapshot, "x.api.wild.test."), "api.wild.test.");
        assert_eq!(
            encloser(&snapshot, "x.cp1.api.wild.test."),
            "cp1.api.wild.test."
        );
        assert_eq!(
            encloser(&snapshot, "x._tcp.api.wild.test."),
            "_tcp.api.wild.test."
        );
    }

    #[test]
    fn a_wildcard_answers_with_the_question_as_owner() {
        let snapshot = snapshot();
        for name in ["nope.wild.test.", "a.b.c.wild.test.", "*.x.wild.test."] {
            let answer = ask(&snapshot, name, RecordType::A);
            assert_eq!(answer.rcode, ResponseCode::NoError, "{name}");
            assert!(answer.authoritative, "{name}");
            assert_eq!(answered(&answer), [format!("{name} 300 IN A 192.0.2.1")]);
        }
        // Another type at a synthesized name: NODATA, with the SOA.
        let answer = ask(&snapshot, "nope.wild.test.", RecordType::MX);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
        assert_eq!(types(&answer.authority), [RecordType::SOA]);
        // Below an empty non-terminal with a wildcard child: that wildcard, not the apex's.
        let answer = ask(&snapshot, "q.deep.wild.test.", RecordType::AAAA);
        assert_eq!(
            answered(&answer),
            ["q.deep.wild.test. 300 IN AAAA 2001:db8::d"]
        );
        assert!(
            ask(&snapshot, "q.deep.wild.test.", RecordType::A)
                .answers
                .is_empty()
        );
    }

    #[test]
    fn existing_names_block_the_wildcard() {
        let snapshot = snapshot();
        // An existing name with other types: NODATA.
        for (name, record_type) in [
            ("www.wild.test.", RecordType::TXT),
            ("deep.wild.test.", RecordType::A),
            ("b.deep.wild.test.", RecordType::A),
            ("f.ent.wild.test.", RecordType::A),
            ("ent.wild.test.", RecordType::TXT),
            ("cp1.api.wild.test.", RecordType::TXT),
            ("api.wild.test.", RecordType::TXT),
            ("_https._tcp.api.wild.test.", RecordType::A),
            ("_tcp.api.wild.test.", RecordType::A),
        ] {
            let answer = ask(&snapshot, name, record_type);
            assert_eq!(answer.rcode, ResponseCode::NoError, "{name}");
            assert!(answer.answers.is_empty(), "{name}: {:?}", answered(&answer));
        }
        // Below an existing name without a wildcard child: NXDOMAIN, not the apex wildcard.
        for name in [
            "x.www.wild.test.",
            "x.b.deep.wild.test.",
            "x.f.ent.wild.test.",
            "x.ent.wild.test.",
            "x.api.wild.test.",
            "x.cp1.api.wild.test.",
            "x._tcp.api.wild.test.",
            "*.www.wild.test.",
        ] {
            let answer = ask(&snapshot, name, RecordType::A);
            assert_eq!(answer.rcode, ResponseCode::NXDomain, "{name}");
            assert_eq!(types(&answer.authority), [RecordType::SOA], "{name}");
            assert!(answer.authoritative, "{name}");
        }
    }

    #[test]
    fn a_wildcard_cname_is_synthesized_and_followed() {
        let snapshot = snapshot();
        let answer = ask(&snapshot, "x.cn.wild.test.", RecordType::A);
        assert_eq!(
            answered(&answer),
            [
                "x.cn.wild.test. 300 IN CNAME www.wild.test.",
                "www.wild.test. 300 IN A 192.0.2.80"
            ]
        );
        let answer = ask(&snapshot, "x.cn.wild.test.", RecordType::CNAME);
        assert_eq!(
            answered(&answer),
            ["x.cn.wild.test. 300 IN CNAME www.wild.test."]
        );
    }

    #[test]
    fn delegations_stop_wildcards() {
        let snapshot = snapshot();
        for name in ["x.sub.wild.test.", "ns.sub.wild.test.", "sub.wild.test."] {
            let answer = ask(&snapshot, name, RecordType::A);
            assert_eq!(answer.rcode, ResponseCode::NoError, "{name}");
            assert!(!answer.authoritative, "{name}");
            assert!(answer.answers.is_empty(), "{name}");
            assert_eq!(types(&answer.authority), [RecordType::NS], "{name}");
        }
    }

    fn types(records: &[Record]) -> Vec<RecordType> {
        records.iter().map(Record::record_type).collect()
    }
}
