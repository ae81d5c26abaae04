//! The query path without sockets: bytes in, bytes out through `apidns::dns::respond`, against a
//! snapshot built from a configuration loaded the way `apidns serve` loads it.
//!
//! `cargo bench --bench query` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use apidns::dns::{Transport, respond, respond_into};
use apidns::health::{Health, MemberStatus};
use apidns::zone::Snapshot;

const MAIN_FILE: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\nzones = \"zones\"\n";

/// The shape of the example zone in `zones/`: NS with glue, static data, a CNAME to the pool,
/// and a pool of three IPv4 members and one IPv6 member.
const ZONE_FILE: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@",   type = "NS", value = "ns1" },
  { name = "@",   type = "NS", value = "ns2" },
  { name = "ns1", type = "A",  value = "192.0.2.53" },
  { name = "ns2", type = "A",  value = "192.0.2.54" },
  { name = "@",   type = "TXT", value = "apidns example zone" },
  { name = "k8s-api", type = "CNAME", value = "api" },
]

[soa]
mname = "ns1"
rname = "hostmaster.example.com."
minimum = 5

[pool.api]
ttl = 5
port = 6443
members = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]
all_down = "all"
"#;

/// The configuration directory, removed when the benchmark is done with it.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn write() -> Self {
        let dir = std::env::temp_dir().join(format!("apidns-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("zones")).expect("create the config directory");
        std::fs::write(dir.join("apidns.toml"), MAIN_FILE).expect("write apidns.toml");
        std::fs::write(dir.join("zones/k8s.example.com.toml"), ZONE_FILE)
            .expect("write the zone file");
        Self(dir)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every member up, as after a probe round in which all of them answered.
fn snapshot() -> Snapshot {
    let dir = ConfigDir::write();
    let config = apidns::config::load(&dir.0.join("apidns.toml")).expect("a valid configuration");
    Snapshot::build(&config, |_, _| Arc::new(MemberStatus::new(Health::Up)))
}

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
    let snapshot = snapshot();
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
