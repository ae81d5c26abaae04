//! Arbitrary bytes as a request received over TCP, through the route the server's edge takes
//! (`apidns::server::dispatch::route`) into the zone transfer answer (`apidns::transfer::answer`)
//! of a zone transferred to `xfr-key`, with a history of two serials so that IXFR can answer
//! with a difference. Never a panic; every message of the answer parses, fits a TCP message and
//! carries the request's ID; an accepted transfer is signed in every message, in a chain the
//! requester's key verifies (RFC 8945 section 5.3.1), and starts and ends with the zone's SOA.
//!
//! The first byte steers the rest, so that the fuzzer reaches the AXFR/IXFR serial handling
//! and not only the signature check: bit 0 signs the message (re-encoded) with `xfr-key`, the
//! key the zone is transferred to; bit 1 (without bit 0) signs it with `other-key`, a key the
//! server knows but the zone does not list. Otherwise the bytes after it are the request as
//! received.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use apidns::config::{Config, TsigKey};
use apidns::server::dispatch::{Route, route};
use apidns::transfer::{History, answer};
use apidns::zone::Snapshot;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, TSigVerifier, TSigner};
use libfuzzer_sys::fuzz_target;

const SIGN_WITH_TRANSFER_KEY: u8 = 1;
const SIGN_WITH_OTHER_KEY: u8 = 2;
/// The serial of the zone served, and of the older version the history also holds.
const SERIAL: u32 = 42;
const OLDER_SERIAL: u32 = 41;

/// Both keys, as the main file defines them (the secrets are base64).
const MAIN: &str = r#"
[server]
listen = ["127.0.0.1:53"]

[[tsig]]
name = "xfr-key"
algorithm = "hmac-sha256"
secret = "ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQtZnV6ei0xMjM="

[[tsig]]
name = "other-key"
algorithm = "hmac-sha256"
secret = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlcjE="
"#;

/// The kit's richest zone, transferred to `xfr-key`, at `serial`; `older` changes a record and
/// a member, so that the two versions differ.
fn config(serial: u32, older: bool) -> Config {
    let mut zone = testkit::zones::rich_zone()
        .replace("serial = 42", &format!("serial = {serial}"))
        .replacen(
            "origin = ",
            "transfer = { keys = [\"xfr-key\"] }\norigin = ",
            1,
        );
    if older {
        zone = zone
            .replace("apidns example zone", "an older zone")
            .replace("\"192.0.2.12\", ", "");
    }
    testkit::snapshot::config(
        MAIN,
        &[
            ("k8s.example.com.toml", &zone),
            ("inner.toml", testkit::zones::INNER_ZONE),
        ],
    )
}

struct Fixture {
    snapshot: Snapshot,
    history: History,
    keys: Vec<TsigKey>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // The history as the transfer task leaves it after seeing both serials (not written:
        // no state_dir).
        let history = History::load(None);
        history.record(&testkit::snapshot::all_up(&config(OLDER_SERIAL, true)));
        let current = config(SERIAL, false);
        let snapshot = testkit::snapshot::all_up(&current);
        history.record(&snapshot);
        Fixture {
            snapshot,
            history,
            keys: current.server.tsig_keys.clone(),
        }
    })
}

fn key(name: &str) -> &'static TsigKey {
    fixture()
        .keys
        .iter()
        .find(|key| key.name.to_ascii() == name)
        .unwrap_or_else(|| panic!("the fixture defines {name}"))
}

/// `body` re-encoded and signed now with `key`, and the verifier of the answer; `None` when
/// the bytes are no message or it cannot be signed.
fn signed(body: &[u8], key: &TsigKey) -> Option<(Vec<u8>, TSigVerifier)> {
    let mut message = Message::from_vec(body).ok()?;
    // A signature the body brought is replaced by ours.
    message.signature = None;
    let signer = TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        300,
    )
    .ok()?;
    let verifier = message.finalize(&signer, apidns::dns::tsig::now()).ok()??;
    Some((message.to_vec().ok()?, verifier))
}

fn is_soa(record: Option<&hickory_proto::rr::Record>) -> bool {
    record.is_some_and(|record| matches!(record.data, RData::SOA(_)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (request, mut verifier, transfer_key) = if flags & SIGN_WITH_TRANSFER_KEY != 0 {
        match signed(body, key("xfr-key.")) {
            Some((bytes, verifier)) => (bytes, Some(verifier), true),
            None => return,
        }
    } else if flags & SIGN_WITH_OTHER_KEY != 0 {
        match signed(body, key("other-key.")) {
            Some((bytes, verifier)) => (bytes, Some(verifier), false),
            None => return,
        }
    } else {
        (body.to_vec(), None, false)
    };
    // Only what the edge routes to the transfer code reaches it.
    if route(&request) != Route::Transfer {
        return;
    }
    let fixture = fixture();
    let peer: SocketAddr = ([192, 0, 2, 200], 53000).into();
    let transfer = answer(
        &fixture.snapshot,
        &fixture.history,
        &fixture.keys,
        &request,
        peer,
    );
    assert!(!transfer.messages.is_empty(), "an answer: {transfer:?}");
    let mut parsed = Vec::with_capacity(transfer.messages.len());
    for bytes in &transfer.messages {
        assert!(
            bytes.len() <= usize::from(u16::MAX),
            "{} bytes",
            bytes.len()
        );
        assert_eq!(bytes.get(..2), request.get(..2), "the request's ID");
        let message = Message::from_vec(bytes).expect("every message parses");
        assert_eq!(message.metadata.message_type, MessageType::Response);
        assert_eq!(message.metadata.response_code, transfer.rcode);
        parsed.push(message);
    }
    if verifier.is_none() {
        // Unsigned (or signed by the fuzzer, without the key): never transferred.
        assert_ne!(transfer.rcode, ResponseCode::NoError, "{transfer:?}");
    }
    if !transfer_key {
        assert_ne!(transfer.rcode, ResponseCode::NoError, "{transfer:?}");
    }
    if verifier.is_some() {
        // Our own signature always verifies: a NOTAUTH here would refuse an honest client.
        assert_ne!(transfer.rcode, ResponseCode::NotAuth, "{transfer:?}");
    }
    if transfer.rcode == ResponseCode::NoError {
        let verifier = verifier
            .as_mut()
            .expect("only a request signed with xfr-key is transferred");
        for (index, bytes) in transfer.messages.iter().enumerate() {
            assert!(
                parsed[index].signature().is_some(),
                "message {index} carries TSIG"
            );
            if let Err(error) = verifier.verify(bytes) {
                panic!("message {index} does not verify: {error}");
            }
        }
        let answers: Vec<_> = parsed
            .iter()
            .flat_map(|message| message.answers.iter())
            .collect();
        assert!(is_soa(answers.first().copied()), "starts with the SOA");
        assert!(is_soa(answers.last().copied()), "ends with the SOA");
        if let Some(RData::SOA(soa)) = answers.first().map(|record| &record.data) {
            assert_eq!(soa.serial, SERIAL, "the serial in force");
        }
    }
});
