//! Arbitrary text as a zone file: the parser returns a zone or a located error and never panics,
//! and a zone it accepts builds into a snapshot that answers a few questions.
#![no_main]

use std::path::Path;

use apidns::config::{ProbeSettings, parse_zone_text};
use apidns::dns::{Transport, respond};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let probe = ProbeSettings::default();
    let zone = match parse_zone_text(Path::new("zones/fuzz.toml"), &text, &probe, 1) {
        Ok(zone) => zone,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let origin = zone.origin.clone();
    let names: Vec<Name> = std::iter::once(origin.clone())
        .chain(zone.records.iter().map(|record| record.name.clone()))
        .chain(zone.pools.iter().map(|pool| pool.name.clone()))
        .take(8)
        .collect();
    let mut config = testkit::snapshot::config(testkit::zones::SNAPSHOT_MAIN, &[]);
    config.zones.push(zone);
    let snapshot = testkit::snapshot::all_up(&config);
    for name in names {
        for record_type in [
            RecordType::A,
            RecordType::NS,
            RecordType::ANY,
            RecordType::TXT,
        ] {
            let mut query = Message::new(1, MessageType::Query, OpCode::Query);
            query.add_query(Query::query(name.clone(), record_type));
            let Ok(bytes) = query.to_vec() else {
                continue;
            };
            for transport in [Transport::Udp, Transport::Tcp] {
                let reply =
                    respond(&snapshot, &bytes, transport, 1232).expect("a query gets a reply");
                Message::from_vec(&reply.bytes).expect("a parsable reply");
                if transport == Transport::Udp {
                    assert!(reply.bytes.len() <= 512);
                }
            }
        }
    }
});
