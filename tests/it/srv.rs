//! Health-checked SRV records and member names, over UDP and TCP, against the real server.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use testkit::backend::Backend;
use testkit::*;

const SRV: &str = "_https._tcp.api.k8s.example.com.";

fn start(pool_body: &str) -> TestServer {
    let mut spec = ServerSpec::zone(&format!("{ZONE_HEAD}\n[pool.api]\nttl = 5\n{pool_body}\n"));
    spec.probe = FAST_PROBE.to_string();
    TestServer::start(spec)
}

/// (priority, weight, port, target) of each SRV record in the answer, in order.
fn srv_records(reply: &hickory_proto::op::Message) -> Vec<(u16, u16, u16, String)> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.priority, srv.weight, srv.port, srv.target.to_string())),
            _ => None,
        })
        .collect()
}

fn targets(reply: &hickory_proto::op::Message) -> Vec<String> {
    let mut t: Vec<String> = srv_records(reply).into_iter().map(|s| s.3).collect();
    t.sort();
    t
}

#[test]
fn srv_lists_live_members_with_their_addresses() {
    let a = Backend::start("127.0.40.1");
    let b = Backend::start("127.0.40.2");
    let server = start(&format!(
        "weight = 7\nmembers = [\n  {{ name = \"cp1\", address = \"{}\" }},\n  {{ name = \"cp2\", address = \"{}\", weight = 3, priority = 1 }},\n]",
        a.member(),
        b.member()
    ));
    let reply = udp(server.addr(), &query(SRV, RecordType::SRV, Some(1232)));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    let mut records = srv_records(&reply);
    records.sort_by_key(|r| r.3.clone());
    assert_eq!(
        records,
        [
            (
                0,
                7,
                a.address.port(),
                "cp1.api.k8s.example.com.".to_string()
            ),
            (
                1,
                3,
                b.address.port(),
                "cp2.api.k8s.example.com.".to_string()
            ),
        ]
    );
    assert!(reply.answers.iter().all(|r| r.ttl == 5));
    let mut glue: Vec<(String, String)> = reply
        .additionals
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(ip) => Some((r.name.to_string(), ip.0.to_string())),
            _ => None,
        })
        .collect();
    glue.sort();
    assert_eq!(
        glue,
        [
            ("cp1.api.k8s.example.com.".to_string(), a.ip()),
            ("cp2.api.k8s.example.com.".to_string(), b.ip()),
        ],
        "targets' addresses in the additional section"
    );

    // Same rotation as the address answers.
    let first = srv_records(&udp(server.addr(), &query(SRV, RecordType::SRV, None)))[0]
        .3
        .clone();
    let second = srv_records(&udp(server.addr(), &query(SRV, RecordType::SRV, None)))[0]
        .3
        .clone();
    assert_ne!(first, second, "SRV order rotates");

    // Over TCP too.
    assert_eq!(
        targets(&tcp(server.addr(), &query(SRV, RecordType::SRV, None))).len(),
        2
    );

    // A dead member leaves the SRV answer; its own name still answers.
    b.kill();
    assert!(eventually(Duration::from_secs(5), || {
        targets(&udp(server.addr(), &query(SRV, RecordType::SRV, None)))
            == ["cp1.api.k8s.example.com."]
    }));
    assert_eq!(
        a_sorted(server.addr(), "cp2.api.k8s.example.com."),
        ["127.0.40.2"]
    );
    assert_eq!(
        a_sorted(server.addr(), "CP1.api.k8s.example.com."),
        [a.ip()]
    );
}

#[test]
fn unnamed_members_get_generated_names_and_dual_stack_names_carry_both() {
    let a = Backend::start("127.0.41.1");
    let server = start(&format!(
        "members = [\"{}\", {{ name = \"cp9\", address = \"127.0.41.9\" }}, {{ name = \"cp9\", address = \"::1\" }}]",
        a.member()
    ));
    assert_eq!(
        a_sorted(server.addr(), "ip-127-0-41-1.api.k8s.example.com."),
        [a.ip()]
    );
    assert_eq!(
        a_sorted(server.addr(), "cp9.api.k8s.example.com."),
        ["127.0.41.9"]
    );
    let aaaa = udp(
        server.addr(),
        &query("cp9.api.k8s.example.com.", RecordType::AAAA, None),
    );
    assert_eq!(addresses(&aaaa), ["::1"]);
    // Only the live member is in the SRV answer.
    let reply = udp(server.addr(), &query(SRV, RecordType::SRV, None));
    assert_eq!(targets(&reply), ["ip-127-0-41-1.api.k8s.example.com."]);
}

#[test]
fn srv_follows_the_all_down_policy() {
    let a = Backend::start("127.0.42.1");
    let address = a.member();
    drop(a);
    let none = start(&format!("all_down = \"none\"\nmembers = [\"{address}\"]"));
    let reply = udp(none.addr(), &query(SRV, RecordType::SRV, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty(), "NODATA");
    assert_eq!(types(&reply.authorities), [RecordType::SOA]);

    let all = start(&format!("members = [\"{address}\"]"));
    let reply = udp(all.addr(), &query(SRV, RecordType::SRV, None));
    assert_eq!(
        targets(&reply),
        ["ip-127-0-42-1.api.k8s.example.com."],
        "all down: answer all"
    );
}

#[test]
fn a_large_srv_answer_is_truncated_over_udp_and_complete_over_tcp() {
    let members: Vec<String> = (1..=40)
        .map(|i| format!("{{ name = \"node{i:02}\", address = \"127.0.43.{i}\" }}"))
        .collect();
    let server = start(&format!("members = [{}]", members.join(", ")));
    let reply = udp(server.addr(), &query(SRV, RecordType::SRV, None));
    assert!(
        reply.metadata.truncation,
        "40 SRV records do not fit in 512 bytes"
    );
    assert!(reply.answers.is_empty());
    let reply = tcp(server.addr(), &query(SRV, RecordType::SRV, None));
    assert!(!reply.metadata.truncation);
    assert_eq!(srv_records(&reply).len(), 40);
    assert_eq!(reply.additionals.len(), 40, "every target's address");
}

#[test]
fn other_types_at_the_srv_name_are_nodata_and_any_gets_the_srv() {
    let a = Backend::start("127.0.44.1");
    let server = start(&format!("members = [\"{}\"]", a.member()));
    let reply = udp(server.addr(), &query(SRV, RecordType::A, None));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    let reply = udp(server.addr(), &query(SRV, RecordType::ANY, None));
    assert_eq!(types(&reply.answers), [RecordType::SRV]);
    // The service's parent label exists as an empty non-terminal.
    let reply = udp(
        server.addr(),
        &query("_tcp.api.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
}
