//! Property tests over the same entry points the fuzz targets exercise (`fuzz/`), small enough to
//! run in every `cargo test`: `respond` on arbitrary and on mutated bytes, the UDP size limit,
//! the config parsers on arbitrary text, and consistent answers to well-formed random queries.

use std::path::Path;

use apidns::config::{ProbeSettings, parse_main_text, parse_zone_text};
use apidns::dns::{Transport, respond};
use apidns::zone::Snapshot;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

const MAIN: &str = testkit::zones::SNAPSHOT_MAIN;

/// Names the zone holds data at (its oracle for NOERROR versus NXDOMAIN).
const EXISTING: [&str; 5] = testkit::zones::PROPERTIES_EXISTING;

fn snapshot() -> &'static Snapshot {
    testkit::snapshot::properties()
}

/// The largest UDP answer the properties configure, varied per case.
const MAX_UDP: u16 = 1232;

/// What every reply to `query` must be; `max_udp` is the server's `max_udp_payload`.
fn check_reply(query: &[u8], transport: Transport, max_udp: u16) -> Result<(), TestCaseError> {
    testkit::reply::check_reply(snapshot(), query, transport, max_udp).map_err(TestCaseError::fail)
}

/// Well-formed queries to start mutations from.
fn seed_queries() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (name, record_type, edns) in [
        ("api.k8s.example.com.", RecordType::A, None),
        ("api.k8s.example.com.", RecordType::AAAA, Some(1232)),
        ("big.k8s.example.com.", RecordType::A, Some(4096)),
        ("k8s.example.com.", RecordType::NS, None),
        ("k8s.example.com.", RecordType::ANY, Some(512)),
        ("www.k8s.example.com.", RecordType::A, None),
        ("x.sub.k8s.example.com.", RecordType::A, None),
        ("nope.k8s.example.com.", RecordType::MX, None),
        ("example.org.", RecordType::A, None),
    ] {
        seeds.push(build_query(0x4242, name, record_type, edns));
    }
    seeds
}

fn build_query(id: u16, name: &str, record_type: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        record_type,
    ));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.edns = Some(opt);
    }
    message.to_vec().expect("encodable query")
}

/// A mutation of a seed query: (position, new byte) replacements, insertions and a cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seed_queries();
    (
        0..seeds.len(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        any::<Option<usize>>(),
    )
        .prop_map(move |(seed, replacements, insertions, cut)| {
            let mut bytes = seeds[seed].clone();
            for (position, byte) in replacements {
                let at = position % bytes.len();
                bytes[at] = byte;
            }
            for (position, byte) in insertions {
                let at = position % (bytes.len() + 1);
                bytes.insert(at, byte);
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes
        })
}

/// A DNS label: mostly names the zone knows, sometimes random ones, in random case.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["api", "ns1", "www", "sub", "big", "ns", "x", "k8s"])
            .prop_map(str::to_string),
        1 => "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?",
    ]
}

fn random_case(text: &str, flips: &[bool]) -> String {
    text.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_and_get_well_formed_replies(
        bytes in prop::collection::vec(any::<u8>(), 0..700),
        over_tcp in any::<bool>(),
    ) {
        let transport = if over_tcp { Transport::Tcp } else { Transport::Udp };
        check_reply(&bytes, transport, MAX_UDP)?;
    }

    #[test]
    fn mutated_queries_never_panic_and_get_well_formed_replies(bytes in mutated()) {
        check_reply(&bytes, Transport::Udp, MAX_UDP)?;
        check_reply(&bytes, Transport::Tcp, MAX_UDP)?;
    }

    #[test]
    fn a_udp_reply_never_exceeds_what_the_client_advertised(
        seed in 0..9usize,
        edns in prop::option::of(0u16..=65535),
        max_udp in 512u16..=4096,
    ) {
        let names = ["api", "big", "k8s", "www", "x.sub", "nope", "ns1"];
        let name = format!("{}.k8s.example.com.", names[seed % names.len()]);
        let name = name.strip_prefix("k8s.").unwrap_or(&name);
        for record_type in [RecordType::A, RecordType::AAAA, RecordType::ANY, RecordType::NS] {
            let query = build_query(7, name, record_type, edns);
            let reply = respond(snapshot(), &query, Transport::Udp, max_udp)
                .ok_or_else(|| TestCaseError::fail("a query gets a reply"))?;
            let limit = edns.map_or(512, |size| size.clamp(512, max_udp));
            prop_assert!(reply.bytes.len() <= usize::from(limit),
                "{name} {record_type}: {} bytes > {limit}", reply.bytes.len());
            check_reply(&query, Transport::Udp, max_udp)?;
        }
    }

    #[test]
    fn random_names_get_consistent_rcodes(
        labels in prop::collection::vec(label(), 0..4),
        suffix in prop::sample::select(vec!["k8s.example.com.", "example.com.", "example.org.", ""]),
        record_type in prop::sample::select(vec![
            RecordType::A, RecordType::AAAA, RecordType::NS, RecordType::TXT, RecordType::MX,
            RecordType::SOA, RecordType::ANY, RecordType::CNAME, RecordType::SRV,
            RecordType::Unknown(4242),
        ]),
        flips in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut name = labels.join(".");
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(suffix);
        if name.is_empty() {
            name.push('.');
        }
        let asked = random_case(&name, &flips);
        let query = build_query(9, &asked, record_type, None);
        let reply = respond(snapshot(), &query, Transport::Udp, MAX_UDP)
            .ok_or_else(|| TestCaseError::fail("a query gets a reply"))?;
        let parsed = Message::from_vec(&reply.bytes)
            .map_err(|error| TestCaseError::fail(format!("unparsable: {error}")))?;
        // The question comes back exactly as asked, case included.
        prop_assert_eq!(parsed.queries[0].name().to_ascii(), Name::from_ascii(&asked).unwrap().to_ascii());

        let lower = name.to_ascii_lowercase();
        let in_zone = lower == "k8s.example.com." || lower.ends_with(".k8s.example.com.");
        let delegated = lower == "sub.k8s.example.com." || lower.ends_with(".sub.k8s.example.com.");
        let rcode = parsed.metadata.response_code;
        if !in_zone {
            prop_assert_eq!(rcode, ResponseCode::Refused, "{}", name);
            prop_assert!(!parsed.metadata.authoritative);
        } else if delegated {
            prop_assert_eq!(rcode, ResponseCode::NoError, "{}", name);
            prop_assert!(!parsed.metadata.authoritative, "a referral: {}", name);
        } else if EXISTING.contains(&lower.as_str()) {
            prop_assert_eq!(rcode, ResponseCode::NoError, "{}", name);
            prop_assert!(parsed.metadata.authoritative);
        } else {
            prop_assert_eq!(rcode, ResponseCode::NXDomain, "{}", name);
            prop_assert!(parsed.metadata.authoritative);
        }
        // The same question in another case, over TCP, gets the same rcode.
        let again = build_query(10, &lower, record_type, None);
        let reply = respond(snapshot(), &again, Transport::Tcp, MAX_UDP)
            .ok_or_else(|| TestCaseError::fail("a query gets a reply"))?;
        prop_assert_eq!(reply.rcode, rcode);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics_the_config_parsers(text in "\\PC{0,400}") {
        let _ = parse_main_text(Path::new("/etc/apidns/apidns.toml"), &text);
        let _ = parse_zone_text(Path::new("zones/z.toml"), &text, &ProbeSettings::default(), 1);
    }

    #[test]
    fn mutated_config_text_never_panics_the_parsers(
        position in any::<usize>(),
        insert in "[\\[\\]{}=\",.:@a-z0-9 \n\\\\-]{0,12}",
        cut in any::<usize>(),
        zone in any::<bool>(),
    ) {
        let zone_text = testkit::zones::properties_zone();
        let base = if zone { zone_text.as_str() } else {
            "[server]\nlisten = [\"127.0.0.1:53\"]\ntcp_idle_timeout = \"1s\"\nuser = \"apidns\"\nrrl = { responses_per_second = 20, slip = 2, window = \"15s\" }\n[probe]\ninterval = \"1s\"\ntimeout = \"500ms\"\n"
        };
        let mut text = base.to_string();
        let mut at = position % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &insert);
        let mut end = cut % (text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if cut % 3 == 0 {
            text.truncate(end);
        }
        if zone {
            if let Ok(zone) = parse_zone_text(Path::new("zones/z.toml"), &text, &ProbeSettings::default(), 1) {
                // Whatever the parser accepts builds a snapshot that answers.
                let mut config = testkit::snapshot::config(MAIN, &[]);
                config.zones.push(zone);
                let snapshot = testkit::snapshot::all_up(&config);
                let query = build_query(1, "api.k8s.example.com.", RecordType::A, None);
                prop_assert!(respond(&snapshot, &query, Transport::Udp, MAX_UDP).is_some());
            }
        } else {
            let _ = parse_main_text(Path::new("/etc/apidns/apidns.toml"), &text);
        }
    }
}

/// Inputs the fuzzers found, kept as regression tests.
#[test]
fn fuzzer_findings_stay_fixed() {
    // respond_udp: a question whose compression pointer points into the header (offset 2).
    // It decodes, but echoing it made an unparsable answer; it is a format error now.
    let found: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01,
        0x00, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03,
        0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x30, 0x02, 0x02,
        0x03, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
        0x02, 0x02, 0xc0, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
        0x02, 0x02, 0x2a, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x6b, 0x34, 0x07, 0x73,
        0x65, 0x78, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x6b, 0x38, 0x73, 0x07, 0x65, 0x78, 0x61,
        0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x03, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x01, 0xfb, 0x01,
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        let reply = respond(snapshot(), found, transport, MAX_UDP).expect("a reply");
        assert_eq!(reply.rcode, ResponseCode::FormErr);
        assert_eq!(reply.bytes.len(), 12, "the header alone");
        Message::from_vec(&reply.bytes).expect("parsable");
    }
    // The smallest form of it.
    let mut minimal = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    minimal.extend_from_slice(&[0xc0, 0x02, 0, 1, 0, 1]);
    let reply = respond(snapshot(), &minimal, Transport::Udp, MAX_UDP).expect("a reply");
    assert_eq!(reply.rcode, ResponseCode::FormErr);
    // A legitimate pointer between two questions still reads (and is echoed intact).
    let mut two = vec![0, 8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0];
    two.extend_from_slice(b"\x03api\x03k8s\x07example\x03com\x00\x00\x01\x00\x01");
    two.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1]);
    let reply = respond(snapshot(), &two, Transport::Udp, MAX_UDP).expect("a reply");
    let parsed = Message::from_vec(&reply.bytes).expect("parsable");
    assert_eq!(parsed.queries.len(), 2);
}

/// Issue 19: no error answer of any kind, to a query or an update, is larger than the client's
/// limit, however many questions (or zones) the message carries. Messages go where the server's
/// edge sends them: UPDATE to `apidns::update`, everything else to `apidns::dns`.
mod size_limit_at_the_edge {
    use super::{MAX_UDP, snapshot};

    use apidns::config::TsigKey;
    use apidns::dns::{Transport, respond, size_limit};
    use apidns::server::dispatch::{Route, route};
    use apidns::update::{Checked, answer_without_writer, tsig};
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{Name, RecordType, TSigner};
    use proptest::prelude::*;

    fn key() -> TsigKey {
        TsigKey {
            name: Name::from_ascii("ops-key.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"secret-secret-secret-secret12345".to_vec(),
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// How a generated message is signed.
    #[derive(Debug, Clone, Copy)]
    enum Signing {
        None,
        /// With the server's key: a signature that verifies.
        Known,
        /// With a key the server does not have, under a long name (a large BADKEY answer).
        Unknown,
    }

    /// A message of `opcode` with `questions` as its question (or zone) section.
    fn message(
        opcode: OpCode,
        questions: &[(Name, RecordType)],
        edns: Option<u16>,
        signing: Signing,
    ) -> Vec<u8> {
        let mut message = Message::new(0x5151, MessageType::Query, opcode);
        for (name, record_type) in questions {
            message.add_query(Query::query(name.clone(), *record_type));
        }
        if let Some(size) = edns {
            let mut opt = Edns::new();
            opt.set_max_payload(size);
            message.edns = Some(opt);
        }
        let signer = match signing {
            Signing::None => None,
            Signing::Known => {
                let key = key();
                TSigner::new(key.secret, key.algorithm, key.name, 300).ok()
            }
            Signing::Unknown => {
                let name = Name::from_ascii(format!(
                    "{}.{}.{}.",
                    "k".repeat(63),
                    "e".repeat(63),
                    "y".repeat(63)
                ))
                .unwrap();
                TSigner::new(
                    b"another-secret".to_vec(),
                    TsigAlgorithm::HmacSha512,
                    name,
                    300,
                )
                .ok()
            }
        };
        if let Some(signer) = signer {
            message.finalize(&signer, now()).expect("signs");
        }
        message.to_vec().expect("encodes")
    }

    /// The answers the edge gives to `query` (an update that verifies gets every verdict the
    /// writer can give), with the limit each must keep to.
    fn answers(query: &[u8], transport: Transport) -> Vec<(Vec<u8>, ResponseCode)> {
        let client_edns = Message::from_vec(query)
            .ok()
            .and_then(|message| message.edns.map(|edns| edns.max_payload()));
        match route(query) {
            // Over UDP a transfer request is answered as a query; over TCP `transfer::` tests it.
            // With no secondary zone here, a NOTIFY is the answering code's too.
            Route::Answer | Route::Transfer | Route::Notify => {
                respond(snapshot(), query, transport, MAX_UDP)
                    .map(|reply| vec![(reply.bytes, reply.rcode)])
                    .unwrap_or_default()
            }
            Route::Update => {
                // As the listener does: an update's answer has no OPT, so 512 over UDP.
                let limit = size_limit(transport, None, MAX_UDP);
                assert!(limit <= size_limit(transport, client_edns, MAX_UDP));
                let keys = [key()];
                let mut all = vec![answer_without_writer(&keys, query, limit)];
                if matches!(tsig::check(&keys, query, limit), Checked::Verified(_)) {
                    for code in [
                        ResponseCode::NoError,
                        ResponseCode::FormErr,
                        ResponseCode::ServFail,
                        ResponseCode::NotImp,
                        ResponseCode::Refused,
                        ResponseCode::NotAuth,
                        ResponseCode::NotZone,
                        ResponseCode::NXRRSet,
                    ] {
                        // A verified update's answer is finished once; check it again for each.
                        if let Checked::Verified(verified) = tsig::check(&keys, query, limit) {
                            all.push(verified.answer.finish(code, limit));
                        }
                    }
                }
                all.into_iter()
                    .map(|reply| (reply.bytes, reply.rcode))
                    .collect()
            }
        }
    }

    fn check(query: &[u8], transport: Transport) -> Result<(), TestCaseError> {
        let client_edns = Message::from_vec(query)
            .ok()
            .and_then(|message| message.edns.map(|edns| edns.max_payload()));
        let limit = usize::from(size_limit(transport, client_edns, MAX_UDP));
        for (bytes, rcode) in answers(query, transport) {
            prop_assert!(
                bytes.len() <= limit,
                "{rcode}: {} bytes > {limit}",
                bytes.len()
            );
            let parsed = Message::from_vec(&bytes)
                .map_err(|error| TestCaseError::fail(format!("unparsable {rcode}: {error}")))?;
            prop_assert_eq!(parsed.metadata.id, 0x5151);
            prop_assert_eq!(parsed.metadata.response_code, rcode);
            if transport == Transport::Udp && parsed.edns.is_none() {
                prop_assert!(
                    bytes.len() <= 512,
                    "{rcode}: {} bytes without OPT",
                    bytes.len()
                );
            }
        }
        Ok(())
    }

    fn name() -> impl Strategy<Value = Name> {
        prop::collection::vec("[a-z0-9]{1,63}", 1..5)
            .prop_filter_map("fits in 255 bytes", |labels| {
                Name::from_ascii(format!("{}.", labels.join("."))).ok()
            })
    }

    fn opcode() -> impl Strategy<Value = OpCode> {
        prop_oneof![
            Just(OpCode::Query),
            Just(OpCode::Update),
            Just(OpCode::Notify),
            Just(OpCode::Status),
        ]
    }

    fn signing() -> impl Strategy<Value = Signing> {
        prop_oneof![
            Just(Signing::None),
            Just(Signing::Known),
            Just(Signing::Unknown)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn no_answer_to_many_questions_or_zones_exceeds_the_limit(
            opcode in opcode(),
            questions in prop::collection::vec(
                (name(), prop_oneof![Just(RecordType::SOA), Just(RecordType::A), Just(RecordType::ANY)]),
                0..24,
            ),
            edns in prop::option::of(prop_oneof![0u16..600, Just(1232u16), Just(4096u16)]),
            signing in signing(),
            over_tcp in any::<bool>(),
        ) {
            let query = message(opcode, &questions, edns, signing);
            let transport = if over_tcp { Transport::Tcp } else { Transport::Udp };
            check(&query, transport)?;
        }

        #[test]
        fn a_single_zone_update_gets_every_verdict_within_the_limit(
            zone in name(),
            edns in prop::option::of(0u16..2000),
            signing in signing(),
        ) {
            let query = message(OpCode::Update, &[(zone, RecordType::SOA)], edns, signing);
            check(&query, Transport::Udp)?;
            check(&query, Transport::Tcp)?;
        }
    }

    /// The fuzzer's finding in issue 19, rebuilt: an UPDATE claiming 18 zones, with 18 zone
    /// entries, over UDP without OPT, was answered REFUSED with every zone echoed (555 bytes).
    #[test]
    fn eighteen_zones_get_a_header_only_format_error() {
        let zones: Vec<_> = (0..18)
            .map(|i| {
                let name = Name::from_ascii(format!("z{i:02}{}.k8s.example.com.", "a".repeat(20)))
                    .unwrap();
                (name, RecordType::SOA)
            })
            .collect();
        for signing in [Signing::None, Signing::Known, Signing::Unknown] {
            let query = message(OpCode::Update, &zones, None, signing);
            for transport in [Transport::Udp, Transport::Tcp] {
                let all = answers(&query, transport);
                assert_eq!(all.len(), 1, "decided before the writer");
                let (bytes, rcode) = &all[0];
                assert_eq!(*rcode, ResponseCode::FormErr);
                assert_eq!(bytes.len(), 12, "the header alone");
            }
        }
        // One zone, signed with the server's key: it verifies, and every verdict is signed.
        let zone = [(
            Name::from_ascii("k8s.example.com.").unwrap(),
            RecordType::SOA,
        )];
        let query = message(OpCode::Update, &zone, None, Signing::Known);
        let all = answers(&query, Transport::Udp);
        assert_eq!(all.len(), 9, "verified, then every verdict");
        for (bytes, _) in &all {
            assert!(Message::from_vec(bytes).unwrap().signature().is_some());
        }
    }
}
