//! What the `respond_*` targets share: a realistic snapshot, and the checks every reply passes.

#![allow(dead_code)] // each target uses part of this

use std::path::Path;
use std::sync::{Arc, OnceLock};

use apidns::config::{Config, parse_main_text, parse_zone_text};
use apidns::dns::{Transport, respond};
use apidns::health::{Health, MemberStatus};
use apidns::zone::Snapshot;
use hickory_proto::op::{Message, MessageType};

/// The largest UDP answer the server is configured for, as in the default configuration.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

const MAIN: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
"#;

/// Every kind of data apidns serves: NS with glue, a delegation, CNAME chains and a loop, many
/// record types, a pool large enough to truncate, IPv6 members, and a second zone below.
const ZONE: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "@", type = "NS", value = "ns2" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "A", value = "192.0.2.54" },
  { name = "ns2", type = "AAAA", value = "2001:db8::54" },
  { name = "@", type = "TXT", value = "apidns example zone" },
  { name = "@", type = "MX", value = "10 mail" },
  { name = "@", type = "CAA", value = '0 issue "letsencrypt.org"' },
  { name = "mail", type = "A", value = "192.0.2.25" },
  { name = "k8s-api", type = "CNAME", value = "api" },
  { name = "loop1", type = "CNAME", value = "loop2" },
  { name = "loop2", type = "CNAME", value = "loop1" },
  { name = "dangling", type = "CNAME", value = "nowhere" },
  { name = "outside", type = "CNAME", value = "www.example.org." },
  { name = "_etcd._tcp", type = "SRV", value = "0 5 2379 ns1" },
  { name = "a.b.c.deep", type = "TXT", value = "empty non-terminals above" },
  { name = "sub", type = "NS", value = "ns.sub" },
  { name = "ns.sub", type = "A", value = "192.0.2.99" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 42
minimum = 5

[pool.api]
ttl = 5
members = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]

[pool.big]
members = [
  "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5",
  "198.51.100.6", "198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10",
  "198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15",
  "198.51.100.16", "198.51.100.17", "198.51.100.18", "198.51.100.19", "198.51.100.20",
  "198.51.100.21", "198.51.100.22", "198.51.100.23", "198.51.100.24", "198.51.100.25",
  "198.51.100.26", "198.51.100.27", "198.51.100.28", "198.51.100.29", "198.51.100.30",
  "198.51.100.31", "198.51.100.32", "198.51.100.33", "198.51.100.34", "198.51.100.35",
  "198.51.100.36", "198.51.100.37", "198.51.100.38", "198.51.100.39", "198.51.100.40",
  "198.51.100.41", "198.51.100.42", "198.51.100.43", "198.51.100.44", "198.51.100.45",
  "198.51.100.46", "198.51.100.47", "198.51.100.48", "198.51.100.49", "198.51.100.50",
  "198.51.100.51", "198.51.100.52", "198.51.100.53", "198.51.100.54", "198.51.100.55",
  "198.51.100.56", "198.51.100.57", "198.51.100.58", "198.51.100.59", "198.51.100.60",
  "198.51.100.61", "198.51.100.62", "198.51.100.63", "198.51.100.64", "198.51.100.65",
  "198.51.100.66", "198.51.100.67", "198.51.100.68", "198.51.100.69", "198.51.100.70",
  "198.51.100.71", "198.51.100.72", "198.51.100.73", "198.51.100.74", "198.51.100.75",
  "198.51.100.76", "198.51.100.77", "198.51.100.78", "198.51.100.79", "198.51.100.80",
]
"#;

const INNER_ZONE: &str = r#"
origin = "inner.k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1.k8s.example.com." },
  { name = "www", type = "A", value = "192.0.2.80" },
]
[soa]
mname = "ns1.k8s.example.com."
rname = "hostmaster.example.com."
serial = 1
"#;

/// The snapshot every `respond_*` run answers from, with every member up.
pub fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let path = Path::new("/etc/apidns/apidns.toml");
        let (server, probe) = parse_main_text(path, MAIN).expect("the fuzz main file is valid");
        let zones = [("k8s.example.com.toml", ZONE), ("inner.toml", INNER_ZONE)]
            .into_iter()
            .map(|(name, text)| {
                parse_zone_text(Path::new(name), text, &probe, 1)
                    .expect("the fuzz zone files are valid")
            })
            .collect();
        let config = Config {
            path: path.to_path_buf(),
            server,
            probe,
            zones,
        };
        Snapshot::build(&config, |_, _| Arc::new(MemberStatus::new(Health::Up)))
    })
}

/// The UDP size limit `respond` must keep to for `query`: 512 without EDNS, otherwise the
/// advertised size within [512, MAX_UDP_PAYLOAD]. `None` when the query does not parse as a
/// whole (its answer is then checked against the largest limit).
pub fn udp_limit(query: &[u8]) -> Option<usize> {
    let message = Message::from_vec(query).ok()?;
    Some(match &message.edns {
        Some(edns) => usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
        None => 512,
    })
}

/// Answers `query` and checks what every reply must be.
pub fn check_respond(query: &[u8], transport: Transport) {
    let Some(reply) = respond(snapshot(), query, transport, MAX_UDP_PAYLOAD) else {
        // Nothing is sent only for fragments of a header and for responses.
        assert!(
            query.len() < 12 || query[2] & 0x80 != 0,
            "a query with a whole header got no reply"
        );
        return;
    };
    let bytes = &reply.bytes;
    assert!(bytes.len() >= 12, "a reply holds a header");
    assert!(
        query.len() >= 12 && query[2] & 0x80 == 0,
        "replied to a non-query"
    );
    assert_eq!(bytes[..2], query[..2], "the reply's ID is the query's");
    assert!(bytes[2] & 0x80 != 0, "the reply has QR set");
    assert!(bytes.len() <= usize::from(u16::MAX));
    let parsed = Message::from_vec(bytes)
        .unwrap_or_else(|error| panic!("unparsable reply {bytes:02x?}: {error}"));
    assert_eq!(parsed.metadata.message_type, MessageType::Response);
    assert!(!parsed.metadata.recursion_available, "RA is never set");
    if transport == Transport::Udp {
        assert!(bytes.len() <= usize::from(MAX_UDP_PAYLOAD));
        if parsed.edns.is_none() {
            assert!(bytes.len() <= 512, "{} bytes without EDNS", bytes.len());
        }
        if let Some(limit) = udp_limit(query) {
            assert!(bytes.len() <= limit, "{} bytes > {limit}", bytes.len());
        }
    }
}
