//! The query path without sockets: bytes in, bytes out through `apidns::dns::respond`, against a
//! snapshot of the example zone's shape (the test kit's `EXAMPLE_ZONE`), every member up.
//!
//! `cargo bench --bench query` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use apidns::dns::{Transport, respond, respond_into};

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
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_respond
}
criterion_main!(benches);
