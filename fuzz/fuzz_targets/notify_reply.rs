//! Arbitrary bytes as the answer to a NOTIFY apidns sent (built and signed as
//! `apidns::transfer::notify` builds it), through the acknowledgement check
//! (`apidns::transfer::notify::acknowledged`). Never a panic; only a NOERROR response with the
//! NOTIFY's ID, signed with the key over the NOTIFY's MAC, counts as acknowledged, and such a
//! response always does.
//!
//! The first byte steers the rest, since the fuzzer cannot make a MAC: bit 0 signs the message
//! after it (re-encoded) as the secondary holding the key would (`apidns::dns::tsig`, the
//! server's own response signing); bit 1 gives it the NOTIFY's ID. Otherwise the bytes after
//! it are the answer as received.
#![no_main]

use std::sync::OnceLock;

use apidns::config::TsigKey;
use apidns::dns::tsig::{self, Verification};
use apidns::transfer::notify::acknowledged;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};
use libfuzzer_sys::fuzz_target;

const SIGN: u8 = 1;
const NOTIFY_ID: u8 = 2;
/// The ID of the NOTIFY answered (apidns picks one at random per send).
const ID: u16 = 0x4e4f;

fn key() -> &'static TsigKey {
    static KEY: OnceLock<TsigKey> = OnceLock::new();
    KEY.get_or_init(|| TsigKey {
        name: Name::from_ascii("xfr-key.").expect("a valid key name"),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: b"fuzz-secret-fuzz-secret-fuzz-123".to_vec(),
    })
}

/// The NOTIFY for serial 42 of the zone, as `notify` sends it.
fn notify() -> Message {
    let origin = Name::from_ascii("k8s.example.com.").expect("a valid name");
    let soa = Record::from_rdata(
        origin.clone(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.k8s.example.com.").expect("a valid name"),
            Name::from_ascii("hostmaster.example.com.").expect("a valid name"),
            42,
            3600,
            600,
            86400,
            5,
        )),
    );
    let mut message = Message::new(ID, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.queries = vec![Query::query(origin, RecordType::SOA)];
    message.answers = vec![soa];
    message
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let key = key();
    let signer = TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        tsig::FUDGE,
    )
    .expect("the key signs");
    let time = tsig::now();
    let mut request = notify();
    let (signature, verifier) = signer.sign_message(&request, time).expect("signed");
    let mut verifier = verifier.expect("a verifier for the answer");
    request.set_signature(signature);
    let request = request.to_vec().expect("the NOTIFY encodes");

    let mut signed_by_key = false;
    let reply = if flags & (SIGN | NOTIFY_ID) != 0 {
        let Ok(mut message) = Message::from_vec(body) else {
            return;
        };
        if flags & NOTIFY_ID != 0 {
            message.metadata.id = ID;
        }
        message.signature = None;
        let Ok(mut bytes) = message.to_vec() else {
            return;
        };
        if flags & SIGN != 0 {
            // The secondary's side: it verifies the NOTIFY and signs its answer over its MAC.
            let parsed = Message::from_vec(&request).expect("the NOTIFY parses");
            let signature = parsed.signature().expect("the NOTIFY is signed");
            let Verification::Valid { signing, .. } =
                tsig::verify(std::slice::from_ref(key), &request, signature, time)
            else {
                panic!("the NOTIFY's own signature verifies");
            };
            let Some(record) = signing.sign(ID, time, &bytes) else {
                return;
            };
            if tsig::append(&mut bytes, &record).is_none() {
                return;
            }
            signed_by_key = true;
        }
        bytes
    } else {
        body.to_vec()
    };

    let verdict = acknowledged(&reply, ID, &mut verifier);
    let parsed = Message::from_vec(&reply).ok();
    let honest = signed_by_key
        && parsed.as_ref().is_some_and(|message| {
            message.metadata.id == ID
                && message.metadata.message_type == MessageType::Response
                && message.metadata.response_code == ResponseCode::NoError
        });
    match verdict {
        Ok(code) => {
            assert!(signed_by_key, "acknowledged without the key's signature");
            assert_eq!(code, ResponseCode::NoError);
            assert!(honest, "acknowledged: {parsed:?}");
        }
        Err(why) => assert!(
            !honest,
            "a correct acknowledgement refused ({why}): {parsed:?}"
        ),
    }
});
