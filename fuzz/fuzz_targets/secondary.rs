//! Arbitrary bytes as what a secondary zone reads from outside, steered by the first byte:
//!
//! - even: the copy kept in `state_dir/secondary/` (`apidns::transfer::secondary::state::read`),
//!   then the zone that copy makes for a secondary zone with a pool `api`
//!   (`apidns::config::zone_from_copy`). Reading never panics; a copy that reads is of our zone
//!   only; one that reads back as written (the only kind `state::write` keeps) reads back the
//!   same again; the zone made from it keeps the copy's serial.
//! - odd: a message at the server's edge for a secondary zone: a NOTIFY
//!   (`SecondaryDoor::answer`) and an UPDATE to forward (`SecondaryDoor::primary_of_update`),
//!   the sender being the primary when bit 1 is set. An answer is a NOTIFY response to the
//!   message's ID, NOERROR only from the primary, and fits in a 512-byte UDP datagram; only a
//!   signed message with one zone is ever forwarded.
#![no_main]

use std::net::SocketAddr;

use apidns::config::{ProbeSettings, TsigKey, parse_secondary_zone_text, zone_from_copy};
use apidns::transfer::secondary::SecondaryDoor;
use apidns::transfer::secondary::state;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use libfuzzer_sys::fuzz_target;

const ZONE_FILE: &str = r#"
origin = "k8s.example.com."
primary = { address = "127.0.0.2:53", key = "xfr-key" }

[pool.api]
ttl = 5
"#;

fn origin() -> Name {
    Name::from_ascii("k8s.example.com.").expect("the origin")
}

fn primary() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 53))
}

fn key() -> TsigKey {
    TsigKey {
        name: Name::from_ascii("xfr-key.").expect("a key name"),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: b"fuzz-secret-fuzz-secret-fuzz-123".to_vec(),
    }
}

fn kept_copy(bytes: &[u8]) {
    // The server reads the file with `read_to_string`: text that is not UTF-8 is refused whole.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let origin = origin();
    let Ok(copy) = state::read(text, &origin) else {
        return;
    };
    assert_eq!(copy.origin, origin);
    assert_eq!(copy.soa.name, origin, "the SOA is the apex's");
    for record in &copy.records {
        assert!(origin.zone_of(&record.name), "{record:?} outside the zone");
    }
    let written = state::render(&copy, primary());
    if let Ok(again) = state::read(&written, &origin)
        && again == copy
    {
        let third = state::read(&state::render(&again, primary()), &origin);
        assert_eq!(third.as_ref(), Ok(&copy), "a kept copy reads back the same");
    }
    let secondary = parse_secondary_zone_text(
        std::path::Path::new("zones/k8s.example.com.toml"),
        ZONE_FILE,
        &ProbeSettings::default(),
    )
    .expect("the harness's zone file is a secondary zone");
    match zone_from_copy(&secondary, &copy.soa, &copy.records) {
        Ok(zone) => assert_eq!(zone.soa.serial, copy.serial(), "the primary's serial"),
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

fn edge_message(from_primary: bool, bytes: &[u8]) {
    let (door, _wake) = SecondaryDoor::for_one_zone(origin(), primary(), Some(key()));
    let peer = if from_primary {
        SocketAddr::from(([127, 0, 0, 2], 4000))
    } else {
        SocketAddr::from(([127, 0, 0, 9], 4000))
    };
    if let Some(answer) = door.answer(bytes, peer) {
        assert!(answer.len() <= 512, "{} bytes over UDP", answer.len());
        let request = Message::from_vec(bytes).expect("an answered message parses");
        let reply = Message::from_vec(&answer).expect("our answer parses");
        assert_eq!(reply.id, request.id);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.op_code, OpCode::Notify);
        if reply.metadata.response_code == ResponseCode::NoError {
            assert!(from_primary, "NOERROR to a stranger's NOTIFY");
            assert!(
                request.signature().is_some(),
                "NOERROR to an unsigned NOTIFY"
            );
        }
    }
    if door.primary_of_update(bytes).is_some() {
        let request = Message::from_vec(bytes).expect("a forwarded message parses");
        assert_eq!(request.queries.len(), 1, "one zone");
        assert!(
            request.signature().is_some(),
            "only signed updates are forwarded"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        kept_copy(rest);
    } else {
        edge_message(selector & 2 != 0, rest);
    }
});
