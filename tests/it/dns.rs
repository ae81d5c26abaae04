//! DNS semantics of the real server, over real UDP and TCP sockets on loopback: flags, response
//! codes, sections, rotation, truncation, EDNS, malformed input, CNAMEs, delegations and TCP
//! connection handling.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use testkit::*;

/// Three IPv4 members and one IPv6 member, TTL 5.
const POOL: &str = r#"
[pool.api]
ttl = 5
members = ["127.0.10.10", "127.0.10.11", "127.0.10.12", "::1"]
"#;

const V4_MEMBERS: [&str; 3] = ["127.0.10.10", "127.0.10.11", "127.0.10.12"];

const APEX: &str = "k8s.example.com.";

fn start(zone: &str) -> TestServer {
    TestServer::start(ServerSpec::zone(zone))
}

fn pool_server() -> TestServer {
    start(&format!("{ZONE_HEAD}{POOL}"))
}

fn names(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.name.to_string()).collect()
}

fn data(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}

/// NOERROR with no answer and the zone's SOA (negative TTL) in authority: RFC 2308 NODATA.
fn assert_nodata(reply: &Message, what: &str) {
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{what}"
    );
    assert!(reply.metadata.authoritative, "{what}: AA");
    assert!(reply.answers.is_empty(), "{what}: {:?}", reply.answers);
    let (record, _) = authority_soa(reply).unwrap_or_else(|| panic!("{what}: SOA in authority"));
    assert_eq!(record.name.to_string(), APEX, "{what}");
    assert_eq!(record.ttl, 5, "{what}: negative TTL");
    assert_eq!(reply.authorities.len(), 1, "{what}");
}

fn assert_refused(reply: &Message, what: &str) {
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::Refused,
        "{what}"
    );
    assert!(!reply.metadata.authoritative, "{what}: AA must be clear");
    assert!(reply.answers.is_empty(), "{what}");
    assert!(reply.authorities.is_empty(), "{what}");
}

/// The server still answers an ordinary query after whatever the test threw at it.
fn assert_still_serving(server: &TestServer) {
    let reply = udp(server.addr(), &query(API, RecordType::A, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
}

// 1. AA, pool answers, RA ------------------------------------------------------------------

#[test]
fn pool_answer_is_authoritative_with_every_member_and_the_pool_ttl() {
    let server = pool_server();
    for (transport, reply) in [
        ("udp", udp(server.addr(), &query(API, RecordType::A, None))),
        ("tcp", tcp(server.addr(), &query(API, RecordType::A, None))),
    ] {
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative, "{transport}: AA");
        assert!(!reply.metadata.truncation, "{transport}");
        assert_eq!(sorted(addresses(&reply)), V4_MEMBERS, "{transport}");
        assert_eq!(types(&reply.answers), [RecordType::A; 3], "{transport}");
        assert!(reply.answers.iter().all(|r| r.ttl == 5), "{transport}");
        assert!(
            names(&reply.answers).iter().all(|n| n == API),
            "{transport}"
        );
        assert!(reply.answers.iter().all(|r| r.dns_class == DNSClass::IN));
        assert!(reply.authorities.is_empty(), "{transport}");
    }

    let reply = udp(server.addr(), &query(API, RecordType::AAAA, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(addresses(&reply), ["::1"]);
    assert_eq!(types(&reply.answers), [RecordType::AAAA]);
    assert_eq!(reply.answers[0].ttl, 5);
}

#[test]
fn recursion_available_is_never_set() {
    let server = pool_server();
    let notify = {
        let mut m = Message::new(4242, MessageType::Query, OpCode::Notify);
        m.add_query(Query::query(
            Name::from_ascii(APEX).unwrap(),
            RecordType::SOA,
        ));
        m
    };
    let two_questions = {
        let mut m = query(API, RecordType::A, None);
        m.add_query(Query::query(
            Name::from_ascii(APEX).unwrap(),
            RecordType::NS,
        ));
        m
    };
    let cases = [
        (ResponseCode::NoError, query(API, RecordType::A, None)),
        (
            ResponseCode::NoError,
            query(API, RecordType::AAAA, Some(1232)),
        ),
        (ResponseCode::NoError, query(API, RecordType::TXT, None)),
        (
            ResponseCode::NXDomain,
            query("nope.k8s.example.com.", RecordType::A, None),
        ),
        (
            ResponseCode::Refused,
            query("example.org.", RecordType::A, None),
        ),
        (ResponseCode::NotImp, notify),
        (ResponseCode::FormErr, two_questions),
    ];
    for (rcode, mut message) in cases {
        message.metadata.recursion_desired = true;
        for (transport, reply) in [
            ("udp", udp(server.addr(), &message)),
            ("tcp", tcp(server.addr(), &message)),
        ] {
            assert_eq!(reply.metadata.response_code, rcode, "{transport}");
            assert!(
                !reply.metadata.recursion_available,
                "{rcode} over {transport}: RA must be clear"
            );
            assert!(reply.metadata.recursion_desired, "{rcode}: RD is copied");
        }
    }
}

// 2. Rotation -------------------------------------------------------------------------------

#[test]
fn successive_queries_rotate_the_members() {
    let server = pool_server();
    let orders: Vec<Vec<String>> = (0..3)
        .map(|_| addresses(&udp(server.addr(), &query(API, RecordType::A, None))))
        .collect();
    let distinct: BTreeSet<&Vec<String>> = orders.iter().collect();
    assert_eq!(distinct.len(), 3, "three different orders: {orders:?}");
    let firsts: BTreeSet<&str> = orders.iter().map(|order| order[0].as_str()).collect();
    assert_eq!(
        firsts,
        V4_MEMBERS.into_iter().collect(),
        "each member leads once in 3 queries: {orders:?}"
    );
    for order in &orders {
        assert_eq!(sorted(order.clone()), V4_MEMBERS, "same set every time");
    }
    // TCP queries share the rotation.
    let over_tcp = addresses(&tcp(server.addr(), &query(API, RecordType::A, None)));
    assert_eq!(sorted(over_tcp), V4_MEMBERS);
}

#[test]
fn max_answers_limits_the_count_but_rotates_through_every_member() {
    let server = start(&format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmax_answers = 2\nmembers = [\"127.0.10.10\", \"127.0.10.11\", \"127.0.10.12\"]\n"
    ));
    let mut seen = BTreeSet::new();
    let mut firsts = BTreeSet::new();
    for _ in 0..3 {
        let reply = udp(server.addr(), &query(API, RecordType::A, None));
        let found = addresses(&reply);
        assert_eq!(found.len(), 2, "max_answers = 2: {found:?}");
        assert_ne!(found[0], found[1]);
        firsts.insert(found[0].clone());
        seen.extend(found);
    }
    assert_eq!(seen, V4_MEMBERS.into_iter().map(String::from).collect());
    assert_eq!(firsts.len(), 3, "each member leads once: {firsts:?}");
}

// 3. NXDOMAIN -------------------------------------------------------------------------------

#[test]
fn nxdomain_carries_the_soa_with_the_negative_ttl() {
    let server = pool_server();
    for name in [
        "nope.k8s.example.com.",
        "x.api.k8s.example.com.",
        "a.b.c.k8s.example.com.",
    ] {
        let reply = udp(server.addr(), &query(name, RecordType::A, None));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert!(reply.metadata.authoritative, "{name}: AA");
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(reply.authorities.len(), 1, "{name}");
        let (record, soa) = authority_soa(&reply).expect("SOA in authority");
        assert_eq!(record.name.to_string(), APEX);
        assert_eq!(record.ttl, 5, "min(SOA TTL 60, minimum 5)");
        assert_eq!(soa.serial, 42);
        assert_eq!(soa.minimum, 5);
        assert_eq!(soa.mname.to_string(), "ns1.k8s.example.com.");
        assert_eq!(soa.rname.to_string(), "hostmaster.example.com.");
    }

    // The SOA itself, asked for, keeps its own TTL.
    let reply = udp(server.addr(), &query(APEX, RecordType::SOA, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(types(&reply.answers), [RecordType::SOA]);
    assert_eq!(reply.answers[0].ttl, 60);
}

#[test]
fn negative_ttl_is_the_soa_ttl_when_that_is_smaller() {
    let zone =
        format!("{ZONE_HEAD}{POOL}").replace("minimum = 5\nttl = 60", "minimum = 900\nttl = 30");
    let server = start(&zone);
    let reply = udp(
        server.addr(),
        &query("nope.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let (record, soa) = authority_soa(&reply).expect("SOA in authority");
    assert_eq!((record.ttl, soa.minimum), (30, 900));
}

// 4. NODATA ---------------------------------------------------------------------------------

/// A TCP listener that accepts and drops connections, so that a health probe of it succeeds.
struct UpMember {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UpMember {
    fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback listener");
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if listener.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Self { address, stop }
    }
}

impl Drop for UpMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn aaaa_on_an_ipv4_only_pool_is_nodata_whatever_all_down_says() {
    let up = [UpMember::start("127.0.0.20"), UpMember::start("127.0.0.21")];
    let server = start(&format!(
        "{ZONE_HEAD}
[pool.api]
members = [\"127.0.10.10\", \"127.0.10.11\"]
all_down = \"all\"

[pool.strict]
members = [\"{}\", \"{}\"]
all_down = \"none\"
",
        up[0].address, up[1].address
    ));
    let strict = "strict.k8s.example.com.";
    // With health checks, wait for the listeners to be probed up (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while a_sorted(server.addr(), strict) != ["127.0.0.20", "127.0.0.21"] {
        assert!(
            Instant::now() < deadline,
            "strict pool never answered its members"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (name, members) in [
        (API, ["127.0.10.10", "127.0.10.11"]),
        (strict, ["127.0.0.20", "127.0.0.21"]),
    ] {
        let reply = udp(server.addr(), &query(name, RecordType::AAAA, None));
        assert_nodata(&reply, name);
        let reply = udp(server.addr(), &query(name, RecordType::A, None));
        assert_eq!(sorted(addresses(&reply)), members, "{name}: A is answered");
    }
}

#[test]
fn txt_at_a_pool_name_is_nodata() {
    let server = pool_server();
    for record_type in [RecordType::TXT, RecordType::MX, RecordType::CNAME] {
        let reply = udp(server.addr(), &query(API, record_type, None));
        assert_nodata(&reply, &format!("{record_type} at the pool"));
    }
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let server = start(&zone_with_records(&[
        r#"{ name = "a.b", type = "TXT", value = "leaf" }"#,
    ]));
    for record_type in [RecordType::A, RecordType::TXT, RecordType::AAAA] {
        let reply = udp(
            server.addr(),
            &query("b.k8s.example.com.", record_type, None),
        );
        assert_nodata(&reply, &format!("b {record_type}"));
    }
    let leaf = udp(
        server.addr(),
        &query("a.b.k8s.example.com.", RecordType::TXT, None),
    );
    assert_eq!(data(&leaf.answers), ["leaf"]);
    let sibling = udp(
        server.addr(),
        &query("c.b.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(sibling.metadata.response_code, ResponseCode::NXDomain);
}

// 5. REFUSED --------------------------------------------------------------------------------

#[test]
fn names_outside_every_served_zone_are_refused() {
    let server = pool_server();
    for name in [
        "example.org.",
        "example.com.",
        "com.",
        ".",
        "www.example.com.",
        "k8s.example.com.evil.",
    ] {
        let message = query(name, RecordType::A, None);
        assert_refused(&udp(server.addr(), &message), name);
        assert_refused(&tcp(server.addr(), &message), name);
    }
}

// 6. Case ------------------------------------------------------------------------------------

#[test]
fn lookup_ignores_case_and_echoes_the_question_exactly() {
    let server = pool_server();
    let asked = "ApI.K8s.ExAmPlE.cOm.";
    let message = query(asked, RecordType::A, None);
    let bytes = message.to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
    assert_eq!(reply.queries.len(), 1);
    assert_eq!(reply.queries[0].name().to_string(), asked);
    // Byte for byte: the question section follows the 12-byte header in both messages.
    let question = 12..12 + asked.len() + 1 + 4;
    assert_eq!(raw[question.clone()], bytes[question]);

    let reply = udp(
        server.addr(),
        &query("NoPe.K8S.example.COM.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.queries[0].name().to_string(), "NoPe.K8S.example.COM.");
    let reply = udp(
        server.addr(),
        &query("K8S.EXAMPLE.COM.", RecordType::NS, None),
    );
    assert_eq!(reply.answers.len(), 2);
}

// 7. NS and delegations --------------------------------------------------------------------

#[test]
fn ns_at_the_apex_lists_both_servers_with_glue() {
    let server = pool_server();
    let reply = udp(server.addr(), &query(APEX, RecordType::NS, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(types(&reply.answers), [RecordType::NS; 2]);
    assert_eq!(
        sorted(data(&reply.answers)),
        ["ns1.k8s.example.com.", "ns2.k8s.example.com."]
    );
    assert!(names(&reply.answers).iter().all(|n| n == APEX));
    let glue: BTreeSet<(String, RecordType, String)> = reply
        .additionals
        .iter()
        .map(|r| (r.name.to_string(), r.record_type(), r.data.to_string()))
        .collect();
    let expected: BTreeSet<(String, RecordType, String)> = [
        ("ns1.k8s.example.com.", RecordType::A, "192.0.2.53"),
        ("ns2.k8s.example.com.", RecordType::A, "192.0.2.54"),
        ("ns2.k8s.example.com.", RecordType::AAAA, "2001:db8::54"),
    ]
    .into_iter()
    .map(|(n, t, d)| (n.to_string(), t, d.to_string()))
    .collect();
    assert_eq!(glue, expected);
}

#[test]
fn delegation_below_the_apex_is_a_referral_with_glue() {
    let server = start(&zone_with_records(&[
        r#"{ name = "sub", type = "NS", value = "ns.sub" }"#,
        r#"{ name = "ns.sub", type = "A", value = "192.0.2.99" }"#,
    ]));
    for (name, record_type) in [
        ("x.sub.k8s.example.com.", RecordType::A),
        ("deep.x.sub.k8s.example.com.", RecordType::AAAA),
        ("sub.k8s.example.com.", RecordType::NS),
        ("sub.k8s.example.com.", RecordType::A),
    ] {
        let reply = udp(server.addr(), &query(name, record_type, None));
        let what = format!("{name} {record_type}");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{what}"
        );
        assert!(
            !reply.metadata.authoritative,
            "{what}: a referral is not authoritative"
        );
        assert!(reply.answers.is_empty(), "{what}: {:?}", reply.answers);
        assert_eq!(types(&reply.authorities), [RecordType::NS], "{what}");
        assert_eq!(
            reply.authorities[0].name.to_string(),
            "sub.k8s.example.com."
        );
        assert_eq!(data(&reply.authorities), ["ns.sub.k8s.example.com."]);
        assert_eq!(types(&reply.additionals), [RecordType::A], "{what}: glue");
        assert_eq!(
            reply.additionals[0].name.to_string(),
            "ns.sub.k8s.example.com."
        );
        assert_eq!(data(&reply.additionals), ["192.0.2.99"]);
    }

    // DS belongs to the parent side of the cut: we answer it, authoritatively, with NODATA.
    let reply = udp(
        server.addr(),
        &query("sub.k8s.example.com.", RecordType::DS, None),
    );
    assert_nodata(&reply, "DS at the cut");
}

// 8. Truncation -----------------------------------------------------------------------------

/// `[pool.<name>]` with members `<prefix>.1` to `<prefix>.<count>`. The prefixes used are
/// documentation networks (RFC 5737): never routed, so no probe can find one of them up.
fn big_pool(name: &str, prefix: &str, count: usize) -> String {
    let members: Vec<String> = (1..=count).map(|i| format!("\"{prefix}.{i}\"")).collect();
    format!(
        "\n[pool.{name}]\nttl = 5\nmembers = [{}]\n",
        members.join(", ")
    )
}

/// 60 members (~1 KB answer) at `mid`, 100 members (~1.6 KB answer) at `big`, and `POOL`.
fn truncation_zone() -> String {
    format!(
        "{ZONE_HEAD}{POOL}{}{}",
        big_pool("mid", "127.51.100", 60),
        big_pool("big", "127.0.113", 100)
    )
}

const MID: &str = "mid.k8s.example.com.";
const BIG: &str = "big.k8s.example.com.";

fn assert_truncated(raw: &[u8], limit: usize, what: &str) -> Message {
    assert!(raw.len() <= limit, "{what}: {} bytes > {limit}", raw.len());
    let reply = parse_reply(raw);
    assert!(reply.metadata.truncation, "{what}: TC");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{what}"
    );
    assert!(reply.answers.is_empty(), "{what}: answer section is empty");
    assert!(reply.authorities.is_empty(), "{what}");
    assert_eq!(reply.queries.len(), 1, "{what}: question kept");
    reply
}

#[test]
fn large_udp_answer_without_edns_is_truncated_to_an_empty_answer() {
    let server = start(&truncation_zone());
    for name in [MID, BIG] {
        let bytes = query(name, RecordType::A, None).to_vec().unwrap();
        let raw = udp_raw(server.addr(), &bytes).expect("a reply");
        let reply = assert_truncated(&raw, 512, name);
        assert!(
            reply.edns.is_none(),
            "{name}: no OPT without one in the query"
        );
    }
}

#[test]
fn small_answer_fits_in_512_bytes_without_edns() {
    let server = start(&truncation_zone());
    let bytes = query(API, RecordType::A, None).to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    assert!(raw.len() <= 512);
    let reply = parse_reply(&raw);
    assert!(!reply.metadata.truncation);
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
}

#[test]
fn udp_answers_are_capped_at_max_udp_payload_whatever_the_client_offers() {
    let server = start(&truncation_zone());
    // ~1 KB: fits the default 1232 when the client offers 4096 (or 1232).
    for offered in [4096, 1232] {
        let bytes = query(MID, RecordType::A, Some(offered)).to_vec().unwrap();
        let raw = udp_raw(server.addr(), &bytes).expect("a reply");
        assert!(raw.len() > 512 && raw.len() <= 1232, "{} bytes", raw.len());
        let reply = parse_reply(&raw);
        assert!(!reply.metadata.truncation, "offered {offered}");
        assert_eq!(addresses(&reply).len(), 60);
        assert_eq!(reply.edns.as_ref().map(Edns::max_payload), Some(1232));
    }
    // ~1.6 KB: more than the server's 1232, so truncated although the client offers 4096.
    let bytes = query(BIG, RecordType::A, Some(4096)).to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    let reply = assert_truncated(&raw, 1232, "big with EDNS 4096");
    assert_eq!(reply.edns.as_ref().map(Edns::max_payload), Some(1232));
    // A client offering less than 512 still gets 512.
    let bytes = query(API, RecordType::A, Some(100)).to_vec().unwrap();
    let reply = parse_reply(&udp_raw(server.addr(), &bytes).expect("a reply"));
    assert!(!reply.metadata.truncation);
    assert_eq!(addresses(&reply).len(), 3);
}

#[test]
fn raised_max_udp_payload_lets_a_large_answer_through() {
    let mut spec = ServerSpec::zone(&truncation_zone());
    spec.server_extra = "max_udp_payload = 4096".to_string();
    let server = TestServer::start(spec);
    let bytes = query(BIG, RecordType::A, Some(4096)).to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    assert!(raw.len() > 1232 && raw.len() <= 4096, "{} bytes", raw.len());
    let reply = parse_reply(&raw);
    assert!(!reply.metadata.truncation);
    assert_eq!(addresses(&reply).len(), 100);
    assert_eq!(reply.edns.as_ref().map(Edns::max_payload), Some(4096));
    // The client's smaller buffer still wins.
    let bytes = query(BIG, RecordType::A, Some(1232)).to_vec().unwrap();
    assert_truncated(
        &udp_raw(server.addr(), &bytes).expect("a reply"),
        1232,
        "1232",
    );
    let bytes = query(BIG, RecordType::A, None).to_vec().unwrap();
    assert_truncated(
        &udp_raw(server.addr(), &bytes).expect("a reply"),
        512,
        "no EDNS",
    );
}

#[test]
fn tcp_returns_every_member_of_a_large_pool() {
    let server = start(&truncation_zone());
    for edns in [None, Some(1232)] {
        let reply = tcp(server.addr(), &query(BIG, RecordType::A, edns));
        assert!(!reply.metadata.truncation);
        let expected: BTreeSet<String> = (1..=100).map(|i| format!("127.0.113.{i}")).collect();
        let found: BTreeSet<String> = addresses(&reply).into_iter().collect();
        assert_eq!(found, expected);
        assert_eq!(reply.answers.len(), 100);
    }
}

/// Twenty NS at the apex (the two of `ZONE_HEAD` and `ns10`..`ns27`), each with an address,
/// and a delegation `sub` to twenty servers below it, each with glue: either answer's NS records
/// fit in 512 bytes, their addresses do not.
fn many_servers_zone() -> String {
    let mut records = Vec::new();
    for i in 10..28 {
        records.push(format!(r#"{{ name = "@", type = "NS", value = "ns{i}" }}"#));
        records.push(format!(
            r#"{{ name = "ns{i}", type = "A", value = "192.0.2.{i}" }}"#
        ));
    }
    for i in 10..30 {
        records.push(format!(
            r#"{{ name = "sub", type = "NS", value = "ns{i}.sub" }}"#
        ));
        records.push(format!(
            r#"{{ name = "ns{i}.sub", type = "A", value = "127.51.100.{i}" }}"#
        ));
    }
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    zone_with_records(&records)
}

#[test]
fn additional_data_that_does_not_fit_is_left_out_without_tc() {
    let server = start(&many_servers_zone());
    let bytes = query(APEX, RecordType::NS, None).to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let reply = parse_reply(&raw);
    // RFC 2181 section 9: TC is not set because extra information does not fit.
    assert!(!reply.metadata.truncation, "the NS answer itself fits");
    assert!(reply.metadata.authoritative);
    assert_eq!(types(&reply.answers), [RecordType::NS; 20]);
    let servers: BTreeSet<String> = data(&reply.answers).into_iter().collect();
    for glue in &reply.additionals {
        assert!(servers.contains(&glue.name.to_string()), "{glue}");
    }
    // Over TCP, every address comes along.
    let reply = tcp(server.addr(), &query(APEX, RecordType::NS, None));
    assert_eq!(reply.answers.len(), 20);
    assert_eq!(reply.additionals.len(), 21, "20 A and ns2's AAAA");
}

#[test]
fn referral_whose_glue_does_not_fit_is_truncated() {
    let server = start(&many_servers_zone());
    let name = "x.sub.k8s.example.com.";
    let bytes = query(name, RecordType::A, None).to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    // RFC 9471: glue for name servers below the cut must be complete, or TC set.
    let reply = assert_truncated(&raw, 512, "referral");
    assert!(!reply.metadata.authoritative);
    // With room for it, the referral comes whole.
    let reply = udp(server.addr(), &query(name, RecordType::A, Some(1232)));
    assert!(!reply.metadata.truncation);
    assert!(!reply.metadata.authoritative);
    assert_eq!(types(&reply.authorities), [RecordType::NS; 20]);
    assert_eq!(types(&reply.additionals), [RecordType::A; 20]);
}

// 9. EDNS -----------------------------------------------------------------------------------

#[test]
fn opt_is_in_the_response_exactly_when_the_query_had_one() {
    let server = pool_server();
    for name in [API, "nope.k8s.example.com.", "example.org."] {
        let plain = udp(server.addr(), &query(name, RecordType::A, None));
        assert!(plain.edns.is_none(), "{name}: no OPT asked, none given");
        assert!(plain.additionals.is_empty(), "{name}");
        let with = udp(server.addr(), &query(name, RecordType::A, Some(1232)));
        let edns = with.edns.as_ref().unwrap_or_else(|| panic!("{name}: OPT"));
        assert_eq!(edns.version(), 0);
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(
            plain.metadata.response_code, with.metadata.response_code,
            "{name}"
        );
        let over_tcp = tcp(server.addr(), &query(name, RecordType::A, Some(4096)));
        assert!(over_tcp.edns.is_some(), "{name}: OPT over TCP");
    }
}

#[test]
fn edns_version_1_gets_badvers_with_an_opt() {
    let server = pool_server();
    let mut message = query(API, RecordType::A, Some(1232));
    message.edns.as_mut().unwrap().set_version(1);
    let bytes = message.to_vec().unwrap();
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.id, message.metadata.id);
    // 16 is both BADVERS (RFC 6891) and TSIG's BADSIG (RFC 8945); hickory decodes it as BADSIG.
    assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");
    let edns = reply.edns.as_ref().expect("BADVERS travels in an OPT");
    assert_eq!(edns.version(), 0, "we speak version 0");
    assert_eq!(edns.rcode_high(), 1, "16 >> 4");
    assert_eq!(raw[3] & 0x0f, 0, "the header holds the low 4 bits of 16");
    assert!(reply.answers.is_empty());
    assert!(!reply.metadata.authoritative);
    let over_tcp = tcp(server.addr(), &message);
    assert_eq!(
        u16::from(over_tcp.metadata.response_code),
        16,
        "BADVERS over TCP"
    );
    assert!(over_tcp.edns.is_some());
    assert_still_serving(&server);
}

#[test]
fn unknown_edns_option_is_ignored() {
    let server = pool_server();
    let mut message = query(API, RecordType::A, Some(1232));
    message
        .edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(65001, vec![1, 2, 3, 4]));
    let reply = udp(server.addr(), &message);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
    let edns = reply.edns.as_ref().expect("OPT");
    assert_eq!(edns.version(), 0);
}

/// An OPT record in wire format: root owner, type 41, class = payload size, TTL 0, no options.
const RAW_OPT: [u8; 11] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];

#[test]
fn two_opt_records_are_a_format_error() {
    let server = pool_server();
    let message = query(API, RecordType::A, Some(1232));
    let mut bytes = message.to_vec().unwrap();
    assert_eq!(bytes[10..12], [0, 1], "one additional record");
    bytes[11] = 2;
    bytes.extend_from_slice(&RAW_OPT);
    for reply in [
        parse_reply(&udp_raw(server.addr(), &bytes).expect("a reply")),
        {
            let mut stream = tcp_connect(server.addr());
            tcp_send(&mut stream, &bytes);
            parse_reply(&tcp_read(&mut stream).expect("a reply"))
        },
    ] {
        assert_eq!(reply.metadata.id, message.metadata.id);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert!(reply.answers.is_empty());
        assert!(!reply.metadata.authoritative);
    }
    assert_still_serving(&server);
}

// 10. Malformed input -----------------------------------------------------------------------

#[test]
fn question_counts_other_than_one_are_format_errors() {
    let server = pool_server();
    // QDCOUNT = 0, RD set.
    let raw = udp_raw(server.addr(), &raw_header(0x1234, 0x0100, [0, 0, 0, 0])).expect("reply");
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.queries.is_empty() && reply.answers.is_empty());

    // QDCOUNT = 2.
    let mut message = query(API, RecordType::A, None);
    message.add_query(Query::query(
        Name::from_ascii(APEX).unwrap(),
        RecordType::NS,
    ));
    for reply in [udp(server.addr(), &message), tcp(server.addr(), &message)] {
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert!(reply.answers.is_empty());
        assert!(!reply.metadata.authoritative);
    }
    assert_still_serving(&server);
}

#[test]
fn garbage_after_a_valid_header_is_a_format_error() {
    let server = pool_server();
    let bodies: [&[u8]; 7] = [
        // Nothing at all after a header that announces a question.
        &[],
        // A compression pointer pointing forward, past the end.
        &[0xc0, 0xff, 0x00, 0x01, 0x00, 0x01],
        // A compression pointer pointing at itself (offset 12): a loop.
        &[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01],
        // A label type that does not exist (0b01).
        &[0x41, b'a', 0x00, 0x00, 0x01, 0x00, 0x01],
        // A label longer than the packet.
        &[0x3f, b'a', b'b', b'c'],
        // Random bytes.
        &[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03],
        // A good name cut off before its type and class.
        &[3, b'a', b'p', b'i', 0],
    ];
    for (index, body) in bodies.iter().enumerate() {
        let id = 0x4000 + index as u16;
        let mut bytes = raw_header(id, 0x0000, [1, 0, 0, 0]);
        bytes.extend_from_slice(body);
        let raw = udp_raw(server.addr(), &bytes).unwrap_or_else(|| panic!("body {index}: reply"));
        let reply = parse_reply(&raw);
        assert_eq!(reply.metadata.id, id, "body {index}");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::FormErr,
            "body {index}"
        );
        assert_eq!(raw.len(), 12, "body {index}: the header alone");
    }
    assert_still_serving(&server);
}

#[test]
fn short_packets_and_responses_get_no_reply() {
    let server = pool_server();
    for length in [0, 1, 5, 11] {
        let bytes = vec![0x42; length];
        assert_eq!(
            udp_reply_before_sentinel(server.addr(), &bytes),
            None,
            "{length}-byte packet"
        );
    }
    // A well-formed message with QR=1 (a response, perhaps spoofed to start a loop).
    let mut response = query(API, RecordType::A, None);
    response.metadata.message_type = MessageType::Response;
    let bytes = response.to_vec().unwrap();
    assert_eq!(
        udp_reply_before_sentinel(server.addr(), &bytes),
        None,
        "QR=1"
    );
    // Also a bare header with QR=1.
    let header = raw_header(7, 0x8000, [0, 0, 0, 0]);
    assert_eq!(udp_reply_before_sentinel(server.addr(), &header), None);
    // The same check sees a reply when there is one: it cannot pass by not looking.
    let answered = query(API, RecordType::A, None).to_vec().unwrap();
    assert!(udp_reply_before_sentinel(server.addr(), &answered).is_some());
    assert_still_serving(&server);
}

// 11. Opcodes -------------------------------------------------------------------------------

#[test]
fn opcodes_other_than_query_get_notimp() {
    let server = pool_server();
    for op_code in [
        OpCode::Status,
        OpCode::Notify,
        OpCode::Unknown(3),
        OpCode::Unknown(15),
    ] {
        let mut message = Message::new(0x5151, MessageType::Query, op_code);
        message.add_query(Query::query(
            Name::from_ascii(APEX).unwrap(),
            RecordType::SOA,
        ));
        for reply in [udp(server.addr(), &message), tcp(server.addr(), &message)] {
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NotImp,
                "{op_code}"
            );
            assert_eq!(reply.metadata.op_code, op_code, "{op_code}: opcode echoed");
            assert!(!reply.metadata.authoritative, "{op_code}");
            assert!(reply.answers.is_empty(), "{op_code}");
        }
    }
    // UPDATE is implemented (tests/it/update.rs); unsigned, it is refused (RFC 2136 section 3.3).
    let mut update = Message::new(0x5151, MessageType::Query, OpCode::Update);
    update.add_query(Query::query(
        Name::from_ascii(APEX).unwrap(),
        RecordType::SOA,
    ));
    for reply in [udp(server.addr(), &update), tcp(server.addr(), &update)] {
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        assert_eq!(reply.metadata.op_code, OpCode::Update);
    }
    assert_still_serving(&server);
}

// 12. ANY -------------------------------------------------------------------------------------

#[test]
fn any_returns_a_single_rrset() {
    let server = start(&format!(
        "{}{POOL}",
        zone_with_records(&[r#"{ name = "@", type = "TXT", value = "hello" }"#])
    ));
    let reply = udp(server.addr(), &query(API, RecordType::ANY, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(
        types(&reply.answers),
        [RecordType::A; 3],
        "the A records only"
    );
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);

    // The apex holds NS, SOA and TXT: ANY gets one of them (RFC 8482), not all.
    let reply = udp(server.addr(), &query(APEX, RecordType::ANY, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(!reply.answers.is_empty());
    let kinds: BTreeSet<RecordType> = types(&reply.answers).into_iter().collect();
    assert_eq!(kinds.len(), 1, "one RRset: {:?}", reply.answers);
    assert!(reply.answers.iter().all(|r| r.name.to_string() == APEX));
    let whole = udp(server.addr(), &query(APEX, *kinds.first().unwrap(), None));
    assert_eq!(whole.answers.len(), reply.answers.len(), "the whole RRset");
}

// 13. Zone transfers --------------------------------------------------------------------------

#[test]
fn zone_transfers_are_refused() {
    let server = pool_server();
    let axfr = query(APEX, RecordType::AXFR, None);
    assert_refused(&tcp(server.addr(), &axfr), "AXFR over TCP");
    assert_refused(&udp(server.addr(), &axfr), "AXFR over UDP");
    let ixfr = query(APEX, RecordType::IXFR, None);
    assert_refused(&tcp(server.addr(), &ixfr), "IXFR over TCP");
    assert_refused(&udp(server.addr(), &ixfr), "IXFR over UDP");
    assert_still_serving(&server);
}

// 14. CNAME -----------------------------------------------------------------------------------

fn cname_zone() -> String {
    format!(
        "{}{POOL}",
        zone_with_records(&[
            r#"{ name = "alias", type = "CNAME", value = "api" }"#,
            r#"{ name = "dangling", type = "CNAME", value = "missing" }"#,
            r#"{ name = "l1", type = "CNAME", value = "l2" }"#,
            r#"{ name = "l2", type = "CNAME", value = "l1" }"#,
            r#"{ name = "ext", type = "CNAME", value = "www.example.org." }"#,
        ])
    )
}

#[test]
fn cname_to_a_pool_is_followed() {
    let server = start(&cname_zone());
    let reply = udp(
        server.addr(),
        &query("alias.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(
        types(&reply.answers),
        [
            RecordType::CNAME,
            RecordType::A,
            RecordType::A,
            RecordType::A
        ]
    );
    assert_eq!(reply.answers[0].name.to_string(), "alias.k8s.example.com.");
    assert_eq!(reply.answers[0].data.to_string(), API);
    assert_eq!(reply.answers[0].ttl, 300, "the zone's TTL");
    assert!(names(&reply.answers[1..]).iter().all(|n| n == API));
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);

    let reply = udp(
        server.addr(),
        &query("alias.k8s.example.com.", RecordType::AAAA, None),
    );
    assert_eq!(types(&reply.answers), [RecordType::CNAME, RecordType::AAAA]);
    assert_eq!(addresses(&reply), ["::1"]);
}

#[test]
fn cname_to_a_missing_name_is_nxdomain_with_the_cname() {
    let server = start(&cname_zone());
    let reply = udp(
        server.addr(),
        &query("dangling.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.metadata.authoritative);
    assert_eq!(types(&reply.answers), [RecordType::CNAME]);
    assert_eq!(data(&reply.answers), ["missing.k8s.example.com."]);
    let (record, _) = authority_soa(&reply).expect("SOA in authority");
    assert_eq!(record.ttl, 5);
}

#[test]
fn cname_loop_ends_with_a_reply() {
    let server = start(&cname_zone());
    for transport in ["udp", "tcp"] {
        let message = query("l1.k8s.example.com.", RecordType::A, None);
        let reply = match transport {
            "udp" => udp(server.addr(), &message),
            _ => tcp(server.addr(), &message),
        };
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{transport}"
        );
        assert!(!reply.answers.is_empty(), "{transport}");
        assert!(reply.answers.len() <= 8, "{transport}: {:?}", reply.answers);
        assert!(
            reply
                .answers
                .iter()
                .all(|r| r.record_type() == RecordType::CNAME),
            "{transport}"
        );
        assert_eq!(
            names(&reply.answers)[..2],
            ["l1.k8s.example.com.", "l2.k8s.example.com."]
        );
    }
    assert_still_serving(&server);
}

#[test]
fn cname_out_of_zone_is_answered_alone() {
    let server = start(&cname_zone());
    let reply = udp(
        server.addr(),
        &query("ext.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(types(&reply.answers), [RecordType::CNAME]);
    assert_eq!(data(&reply.answers), ["www.example.org."]);
    assert!(reply.authorities.is_empty());
}

#[test]
fn asking_for_the_cname_returns_the_cname_itself() {
    let server = start(&cname_zone());
    for (name, target) in [
        ("alias.k8s.example.com.", API),
        ("dangling.k8s.example.com.", "missing.k8s.example.com."),
        ("l1.k8s.example.com.", "l2.k8s.example.com."),
    ] {
        let reply = udp(server.addr(), &query(name, RecordType::CNAME, None));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(types(&reply.answers), [RecordType::CNAME], "{name}");
        assert_eq!(data(&reply.answers), [target], "{name}");
    }
}

// 15. Static record types ---------------------------------------------------------------------

#[test]
fn static_records_of_each_type_are_answered() {
    let server = start(&format!(
        "{}{POOL}",
        zone_with_records(&[
            r#"{ name = "@", type = "MX", value = "10 mail" }"#,
            r#"{ name = "@", type = "MX", value = "20 mx.example.net." }"#,
            r#"{ name = "mail", type = "A", value = "192.0.2.25" }"#,
            r#"{ name = "@", type = "TXT", value = "v=spf1 -all" }"#,
            r#"{ name = "multi", type = "TXT", value = "\"part one\" \"part two\"", ttl = 60 }"#,
            r#"{ name = "_https._tcp", type = "SRV", value = "0 5 443 api" }"#,
            r#"{ name = "10.rev", type = "PTR", value = "api" }"#,
            r#"{ name = "@", type = "CAA", value = "0 issue \"letsencrypt.org\"" }"#,
        ])
    ));
    let ask = |name: &str, record_type: RecordType| {
        let reply = udp(server.addr(), &query(name, record_type, None));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.metadata.authoritative, "{name}");
        assert!(
            reply.answers.iter().all(|r| r.record_type() == record_type),
            "{name}: {:?}",
            reply.answers
        );
        reply.answers
    };

    let mut mx: Vec<(u16, String)> = ask(APEX, RecordType::MX)
        .iter()
        .map(|r| match &r.data {
            RData::MX(mx) => (mx.preference, mx.exchange.to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    mx.sort();
    assert_eq!(
        mx,
        [
            (10, "mail.k8s.example.com.".to_string()),
            (20, "mx.example.net.".to_string())
        ]
    );

    let txt = ask(APEX, RecordType::TXT);
    assert_eq!(txt.len(), 1);
    assert_eq!(txt[0].ttl, 300);
    match &txt[0].data {
        RData::TXT(txt) => assert_eq!(&*txt.txt_data, [b"v=spf1 -all".to_vec().into_boxed_slice()]),
        other => panic!("{other:?}"),
    }
    let multi = ask("multi.k8s.example.com.", RecordType::TXT);
    assert_eq!(multi[0].ttl, 60, "the record's own TTL");
    match &multi[0].data {
        RData::TXT(txt) => {
            let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
            assert_eq!(strings, [&b"part one"[..], &b"part two"[..]]);
        }
        other => panic!("{other:?}"),
    }

    let srv = ask("_https._tcp.k8s.example.com.", RecordType::SRV);
    match &srv[..] {
        [
            Record {
                data: RData::SRV(srv),
                ..
            },
        ] => {
            assert_eq!((srv.priority, srv.weight, srv.port), (0, 5, 443));
            assert_eq!(srv.target.to_string(), API);
        }
        other => panic!("{other:?}"),
    }

    let ptr = ask("10.rev.k8s.example.com.", RecordType::PTR);
    assert_eq!(data(&ptr), [API]);

    let caa = ask(APEX, RecordType::CAA);
    match &caa[..] {
        [
            Record {
                data: RData::CAA(caa),
                ..
            },
        ] => {
            assert!(!caa.issuer_critical);
            assert_eq!(caa.tag, "issue");
            assert_eq!(caa.value, b"letsencrypt.org");
        }
        other => panic!("{other:?}"),
    }

    let mail = ask("mail.k8s.example.com.", RecordType::A);
    assert_eq!(data(&mail), ["192.0.2.25"]);
}

#[test]
fn txt_values_are_split_into_whole_strings() {
    // 254 ASCII bytes, then a 2-byte character across the 255-byte boundary of a TXT string.
    let value = format!("{}é{}", "a".repeat(254), "b".repeat(300));
    let server = start(&zone_with_records(&[
        &format!(r#"{{ name = "long", type = "TXT", value = "{value}" }}"#),
        r#"{ name = "empty", type = "TXT", value = "" }"#,
    ]));
    for (transport, reply) in [
        (
            "udp",
            udp(
                server.addr(),
                &query("long.k8s.example.com.", RecordType::TXT, Some(1232)),
            ),
        ),
        (
            "tcp",
            tcp(
                server.addr(),
                &query("long.k8s.example.com.", RecordType::TXT, None),
            ),
        ),
    ] {
        assert!(!reply.metadata.truncation, "{transport}");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{transport}"
        );
        let [
            Record {
                data: RData::TXT(txt),
                ..
            },
        ] = &reply.answers[..]
        else {
            panic!("{transport}: one TXT record: {:?}", reply.answers);
        };
        assert!(txt.txt_data.len() > 1, "{transport}: split");
        let mut joined = Vec::new();
        for string in &txt.txt_data {
            assert!(
                std::str::from_utf8(string).is_ok(),
                "{transport}: whole characters"
            );
            joined.extend_from_slice(string);
        }
        assert_eq!(joined, value.as_bytes(), "{transport}");
    }

    // An empty value is one empty string: TXT data holds at least one (RFC 1035 3.3.14).
    let reply = udp(
        server.addr(),
        &query("empty.k8s.example.com.", RecordType::TXT, None),
    );
    match &reply.answers[..] {
        [
            Record {
                data: RData::TXT(txt),
                ..
            },
        ] => assert_eq!(txt.txt_data.len(), 1),
        other => panic!("one TXT record: {other:?}"),
    }
}

// 16. IPv6 transport ----------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apidns_has_ipv6_loopback),
    ignore = "this machine has no IPv6 loopback (::1): enable IPv6 on lo to run it"
)]
fn queries_over_ipv6_loopback() {
    assert!(ipv6_loopback_available(), "::1 went away since the build");
    let mut spec = ServerSpec::zone(&format!("{ZONE_HEAD}{POOL}"));
    spec.ipv6 = true;
    let server = TestServer::start(spec);
    let v6 = *server
        .addresses
        .iter()
        .find(|address| address.is_ipv6())
        .expect("the server listens on ::1");
    assert!(v6.ip().is_loopback());
    for reply in [
        udp(v6, &query(API, RecordType::A, None)),
        tcp(v6, &query(API, RecordType::A, None)),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
    }
    assert_eq!(
        addresses(&udp(v6, &query(API, RecordType::AAAA, None))),
        ["::1"]
    );
    // IPv4 keeps working beside it.
    assert_still_serving(&server);
}

// 17. TCP ---------------------------------------------------------------------------------------

#[test]
fn pipelined_queries_on_one_connection_are_all_answered() {
    let server = pool_server();
    let queries = [
        query(API, RecordType::A, None),
        query(API, RecordType::AAAA, Some(1232)),
        query("nope.k8s.example.com.", RecordType::A, None),
        query(APEX, RecordType::NS, None),
        query("example.org.", RecordType::A, None),
        query(APEX, RecordType::SOA, None),
    ];
    let mut stream = tcp_connect(server.addr());
    // All in one write: the server must split the stream into messages itself.
    let mut framed = Vec::new();
    for message in &queries {
        let bytes = message.to_vec().unwrap();
        framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        framed.extend_from_slice(&bytes);
    }
    stream.write_all(&framed).unwrap();
    let mut replies = Vec::new();
    for _ in &queries {
        replies.push(parse_reply(
            &tcp_read(&mut stream).expect("a reply per query"),
        ));
    }
    // RFC 7766 allows any order; match replies to queries by ID.
    for message in &queries {
        let reply = replies
            .iter()
            .find(|r| r.metadata.id == message.metadata.id)
            .unwrap_or_else(|| panic!("no reply for {}", message.queries[0]));
        assert_eq!(reply.queries, message.queries);
    }
    let by_id = |id: u16| replies.iter().find(|r| r.metadata.id == id).unwrap();
    assert_eq!(sorted(addresses(by_id(queries[0].metadata.id))), V4_MEMBERS);
    assert_eq!(
        by_id(queries[2].metadata.id).metadata.response_code,
        ResponseCode::NXDomain
    );
    assert_eq!(
        by_id(queries[4].metadata.id).metadata.response_code,
        ResponseCode::Refused
    );
    // The connection stays open for more.
    tcp_send(
        &mut stream,
        &query(API, RecordType::A, None).to_vec().unwrap(),
    );
    assert!(tcp_read(&mut stream).is_some());
}

#[test]
fn zero_length_message_closes_only_that_connection() {
    let server = pool_server();
    let mut bystander = tcp_connect(server.addr());
    let mut offender = tcp_connect(server.addr());
    tcp_send(
        &mut offender,
        &query(API, RecordType::A, None).to_vec().unwrap(),
    );
    assert!(tcp_read(&mut offender).is_some(), "served before");
    offender.write_all(&[0, 0]).unwrap();
    assert!(
        wait_closed(&mut offender, Duration::from_secs(3)).is_some(),
        "the server closes a connection that sends a zero-length message"
    );
    tcp_send(
        &mut bystander,
        &query(API, RecordType::A, None).to_vec().unwrap(),
    );
    let reply = parse_reply(&tcp_read(&mut bystander).expect("the other client is served"));
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
    assert_eq!(
        sorted(addresses(&tcp(
            server.addr(),
            &query(API, RecordType::A, None)
        ))),
        V4_MEMBERS
    );
    assert_still_serving(&server);
}

#[test]
fn idle_tcp_connections_are_closed_after_the_idle_timeout() {
    let mut spec = ServerSpec::zone(&format!("{ZONE_HEAD}{POOL}"));
    spec.server_extra = "tcp_idle_timeout = \"300ms\"".to_string();
    let server = TestServer::start(spec);

    // A connection that never sends anything.
    let mut silent = tcp_connect(server.addr());
    // One that is served, then goes quiet.
    let mut quiet = tcp_connect(server.addr());
    tcp_send(
        &mut quiet,
        &query(API, RecordType::A, None).to_vec().unwrap(),
    );
    assert!(tcp_read(&mut quiet).is_some());

    let waited = wait_closed(&mut quiet, Duration::from_secs(5))
        .expect("the server closes an idle connection within a few seconds");
    assert!(
        waited >= Duration::from_millis(100),
        "not before the timeout: {waited:?}"
    );
    assert!(
        wait_closed(&mut silent, Duration::from_secs(5)).is_some(),
        "a connection that never sent a query is closed too"
    );
    // New connections are still welcome.
    let reply = tcp(server.addr(), &query(API, RecordType::A, None));
    assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
}

// 18. Classes -----------------------------------------------------------------------------------

#[test]
fn chaos_class_is_refused() {
    let server = pool_server();
    for (name, record_type) in [
        ("version.bind.", RecordType::TXT),
        ("hostname.bind.", RecordType::TXT),
        (API, RecordType::A),
    ] {
        let message = query_in_class(name, record_type, DNSClass::CH);
        let reply = udp(server.addr(), &message);
        assert_refused(&reply, &format!("{name} CH"));
        assert_eq!(reply.queries[0].query_class(), DNSClass::CH);
        assert_refused(
            &tcp(server.addr(), &message),
            &format!("{name} CH over tcp"),
        );
    }
    assert_still_serving(&server);
}

// UDP worker sockets ----------------------------------------------------------------------------

#[test]
fn a_second_server_on_the_same_address_fails_with_a_clear_error() {
    // The workers' sockets share the port with SO_REUSEPORT, which must not let a second
    // instance silently take a share of the queries.
    let first = pool_server();
    let dir = TempDir::new("second");
    dir.write("zones/k8s.example.com.toml", &format!("{ZONE_HEAD}{POOL}"));
    let config = dir.write(
        "apidns.toml",
        &format!(
            "[server]\nlisten = [\"{}\"]\nzones = \"zones\"\n",
            first.addr()
        ),
    );
    let mut second = std::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second server did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {}", first.addr())) && stderr.contains("in use"),
        "{stderr}"
    );
    assert_still_serving(&first);
}

#[test]
fn clients_on_many_ports_are_all_answered() {
    // The kernel spreads clients over the worker sockets by address and port: every socket
    // of the group must be served.
    let server = pool_server();
    for _ in 0..64 {
        let reply = udp(server.addr(), &query(API, RecordType::A, None));
        assert_eq!(sorted(addresses(&reply)), V4_MEMBERS);
    }
}
