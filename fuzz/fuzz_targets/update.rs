//! Arbitrary UPDATE messages through the path the server's edge takes: the TSIG check
//! (`apidns::update::tsig::check`) and, for an update that verifies, what the writer decides
//! (the zone named, then `apidns::update::plan` against a real zone), answered within the size
//! limit. Never a panic; every answer parses, carries the update's ID and fits.
//!
//! The first byte steers the rest, so that the fuzzer reaches the plan and not only the
//! signature check: bit 0 signs the message with the test key (as a client holding it would),
//! bit 1 sets the zone section to the fixture's zone, bit 2 answers over TCP instead of UDP.
//! The bytes after it are the message (as received when not signed, or re-encoded and signed).
//!
//! `APIDNS_FUZZ_TRACE=1` prints each input's response code and whether the plan was reached:
//! how to see that the seeds still get past the signature (`target/.../update seeds/update/*`).
#![no_main]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use apidns::config::TsigKey;
use apidns::dns::{Transport, size_limit};
use apidns::update::{Checked, UpdateReply, plan, tsig, zone_name};
use apidns::zone::Snapshot;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RecordType, TSigner};
use libfuzzer_sys::fuzz_target;
use testkit::reply::MAX_UDP_PAYLOAD;

const SIGN: u8 = 1;
const FIXTURE_ZONE: u8 = 2;
const OVER_TCP: u8 = 4;

/// The key the server holds and the fuzzer signs with.
fn key() -> &'static TsigKey {
    static KEY: OnceLock<TsigKey> = OnceLock::new();
    KEY.get_or_init(|| TsigKey {
        name: Name::from_ascii("ops-key.").expect("a valid key name"),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: b"fuzz-secret-fuzz-secret-fuzz-123".to_vec(),
    })
}

/// Whether to print each verdict (see the module's documentation); read once.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("APIDNS_FUZZ_TRACE").is_some())
}

fn snapshot() -> &'static Snapshot {
    testkit::snapshot::rich()
}

/// `body` as an UPDATE, with the zone section the flags ask for, signed now with the test key;
/// `None` when the bytes are no message or it cannot be signed.
fn signed(body: &[u8], fixture_zone: bool) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(body).ok()?;
    message.metadata.message_type = MessageType::Query;
    message.metadata.op_code = OpCode::Update;
    // A signature the body brought is replaced by ours.
    message.signature = None;
    if fixture_zone {
        let mut zone = Query::query(Name::from_ascii("k8s.example.com.").ok()?, RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.queries = vec![zone];
    }
    let key = key();
    let signer = TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        300,
    )
    .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    message.finalize(&signer, now).ok()?;
    message.to_vec().ok()
}

/// What the writer decides for a verified update, short of journaling it: the zone it names
/// must be served here, and the plan must accept its prerequisites and changes.
fn verdict(message: &Message) -> ResponseCode {
    let name = match zone_name(message) {
        Ok(name) => name,
        Err(code) => return code,
    };
    let Some(zone) = snapshot()
        .zones()
        .iter()
        .find(|zone| Name::from(&zone.origin) == name)
    else {
        return ResponseCode::NotAuth;
    };
    let planned = plan(message, zone);
    if tracing() {
        eprintln!("plan reached: {planned:?}");
    }
    match planned {
        Ok(changes) => {
            for change in &changes {
                assert!(
                    zone.config
                        .pools
                        .iter()
                        .any(|pool| pool.name == change.pool),
                    "a change to a pool the zone does not have: {change:?}"
                );
            }
            ResponseCode::NoError
        }
        Err(code) => code,
    }
}

fn check_answer(reply: &UpdateReply, query: &[u8], limit: u16) {
    assert!(
        reply.bytes.len() <= usize::from(limit),
        "{} bytes > {limit}: {}",
        reply.bytes.len(),
        reply.rcode
    );
    assert_eq!(
        reply.bytes.get(..2),
        query.get(..2),
        "the reply's ID is the update's"
    );
    let parsed = Message::from_vec(&reply.bytes).expect("a parsable answer");
    assert_eq!(parsed.metadata.response_code, reply.rcode);
    assert_eq!(parsed.metadata.message_type, MessageType::Response);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let signed_query;
    let query = if flags & SIGN != 0 {
        match signed(body, flags & FIXTURE_ZONE != 0) {
            Some(bytes) => {
                signed_query = bytes;
                &signed_query[..]
            }
            None => return,
        }
    } else {
        body
    };
    let transport = if flags & OVER_TCP != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    // As the listener does: an update's answer carries no OPT, so 512 bytes over UDP.
    let limit = size_limit(transport, None, MAX_UDP_PAYLOAD);
    if query.len() < 12 {
        return;
    }
    match tsig::check(std::slice::from_ref(key()), query, limit) {
        Checked::Answered(reply) => {
            if tracing() {
                eprintln!("answered before the writer: {}", reply.rcode);
            }
            check_answer(&reply, query, limit);
        }
        Checked::Verified(verified) => {
            let code = verdict(&verified.message);
            let reply = verified.answer.finish(code, limit);
            check_answer(&reply, query, limit);
        }
    }
});
