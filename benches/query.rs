//! The query path without sockets: bytes in, bytes out through `apidns::dns::respond`, against a
//! snapshot of the example zone's shape (the test kit's `EXAMPLE_ZONE`), every member up.
//!
//! `cargo bench --bench query` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use apidns::dns::cookie::{ClientCookie, CookieSecrets};
use apidns::dns::{Extensions, Transport, respond, respond_into, respond_into_with};
use hickory_proto::rr::rdata::opt::EdnsOption;

/// A query as a stub resolver sends it: RD set, and EDNS with a 1232-byte buffer.
fn query_bytes(name: &str, record_type: RecordType) -> Vec<u8> {
    let mut message = Message::new(0x2b2b, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        record_type,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.edns = Some(edns);
    message.to_vec().expect("encode the query")
}

fn bench_respond(c: &mut Criterion) {
    let snapshot = testkit::snapshot::example();
    let cases = [
        (
            "pool A",
            "api.k8s.example.com.",
            RecordType::A,
            ResponseCode::NoError,
            3,
        ),
        (
            "pool AAAA",
            "api.k8s.example.com.",
            RecordType::AAAA,
            ResponseCode::NoError,
            1,
        ),
        (
            "NXDOMAIN",
            "nope.k8s.example.com.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "static A",
            "ns1.k8s.example.com.",
            RecordType::A,
            ResponseCode::NoError,
            1,
        ),
        (
            "CNAME to pool",
            "k8s-api.k8s.example.com.",
            RecordType::A,
            ResponseCode::NoError,
            4,
        ),
    ];

    let mut group = c.benchmark_group("respond");
    group.throughput(Throughput::Elements(1));
    for (label, name, record_type, rcode, answers) in cases {
        let query = query_bytes(name, record_type);
        // Benchmark the answer the server really gives, not a shortcut through an error path.
        let reply = respond(&snapshot, &query, Transport::Udp, 1232).expect("a reply");
        let reply = Message::from_vec(&reply.bytes).expect("a parsable reply");
        assert_eq!(reply.metadata.response_code, rcode, "{label}");
        assert_eq!(reply.answers.len(), answers, "{label}");
        assert!(reply.edns.is_some(), "{label}");

        group.bench_function(label, |b| {
            b.iter(|| {
                respond(
                    black_box(&snapshot),
                    black_box(&query),
                    Transport::Udp,
                    1232,
                )
            })
        });
    }
    // What the UDP workers do: answer into a buffer kept from one query to the next.
    let query = query_bytes("api.k8s.example.com.", RecordType::A);
    let mut buffer = Vec::with_capacity(512);
    group.bench_function("pool A into a kept buffer", |b| {
        b.iter(|| {
            respond_into(
                black_box(&snapshot),
                black_box(&query),
                Transport::Udp,
                1232,
                &mut buffer,
            )
            .map(|answered| answered.rcode)
        })
    });
    bench_cookies(&mut group, &snapshot);
    group.finish();
}

/// The fast path with DNS cookies (RFC 7873), as a listener calls it: no cookie, a client
/// cookie alone (one SipHash-2-4 to make the server cookie), and a valid server cookie returned
/// (one more to verify it).
fn bench_cookies(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    snapshot: &apidns::zone::Snapshot,
) {
    let secrets = CookieSecrets {
        current: [7; 16],
        previous: Some([9; 16]),
    };
    let client_ip = "192.0.2.99".parse().expect("an address");
    let extensions = Extensions {
        cookies: Some(&secrets),
        client: Some(client_ip),
        ..Default::default()
    };
    let client = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let server = secrets.answer(
        &ClientCookie::read(&client).expect("a client cookie"),
        client_ip,
        now,
    );
    let cases: [(&str, Option<&[u8]>); 3] = [
        ("pool A, cookies on, no cookie", None),
        ("pool A, client cookie", Some(&client)),
        ("pool A, valid server cookie", Some(&server)),
    ];
    for (label, cookie) in cases {
        let mut message = Message::from_vec(&query_bytes("api.k8s.example.com.", RecordType::A))
            .expect("a query");
        if let (Some(cookie), Some(edns)) = (cookie, message.edns.as_mut()) {
            edns.options_mut()
                .insert(EdnsOption::Unknown(10, cookie.to_vec()));
        }
        let query = message.to_vec().expect("encodes");
        let mut buffer = Vec::with_capacity(512);
        // The fast path answers it (a general-path answer would measure something else).
        let answered = apidns::dns::fast::answer_with(
            snapshot,
            &query,
            Transport::Udp,
            1232,
            &extensions,
            &mut buffer,
        )
        .expect("the fast path answers");
        assert_eq!(answered.address_proven, cookie.is_some_and(|c| c.len() > 8));
        group.bench_function(label, |b| {
            b.iter(|| {
                respond_into_with(
                    black_box(snapshot),
                    black_box(&query),
                    Transport::Udp,
                    1232,
                    &extensions,
                    &mut buffer,
                )
                .map(|answered| answered.rcode)
            })
        });
        // What the same query cost before the fast path answered cookies: the general path.
        let general = format!("{label}, general path");
        group.bench_function(general.as_str(), |b| {
            b.iter(|| {
                apidns::dns::respond_general_with(
                    black_box(snapshot),
                    black_box(&query),
                    Transport::Udp,
                    1232,
                    &extensions,
                )
                .map(|reply| reply.rcode)
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_respond
}
criterion_main!(benches);
