//! What the zone-loading targets (`config_zone`, `config_records_file`) check of a zone the
//! loader accepted: served beside the kit's main configuration, its names answer parsable
//! replies, within 512 bytes over UDP.

use apidns::config::ZoneConfig;
use apidns::dns::{Transport, respond};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Asks for each of `record_types` at the zone's first names, over UDP and TCP.
pub fn check_zone_answers(zone: ZoneConfig, record_types: &[RecordType]) {
    let names: Vec<Name> = std::iter::once(zone.origin.clone())
        .chain(zone.records.iter().map(|record| record.name.clone()))
        .chain(zone.pools.iter().map(|pool| pool.name.clone()))
        .take(8)
        .collect();
    let mut config = testkit::snapshot::config(testkit::zones::SNAPSHOT_MAIN, &[]);
    config.zones.push(zone);
    let snapshot = testkit::snapshot::all_up(&config);
    for name in names {
        for &record_type in record_types {
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
}
