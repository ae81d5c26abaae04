//! Arbitrary bytes as the messages of a primary's answer to our AXFR or IXFR request, through
//! what a secondary makes of them (`apidns::transfer::incoming::stream::Reception`: parsing,
//! the TSIG chain, the end of the transfer, an IXFR applied to our copy). Never a panic; a
//! copy that comes out is of our zone only: its SOA at the apex, every record inside the zone,
//! no SOA among them, in canonical order without duplicates; an incremental answer starts from
//! our copy. An answer whose every message the harness signed in a correct chain is never
//! refused for its TSIG.
//!
//! Layout: the first byte steers the rest. Bit 0: the request is signed with `xfr-key` and
//! the harness signs the messages as a primary would (each message re-encoded; the first over
//! the request's MAC, the next ones over the previous MAC and the unsigned messages between,
//! RFC 8945 section 5.3.1). Bit 1: the request is an IXFR from a copy at serial 41, else an
//! AXFR. Then messages, each as a flag byte (bit 0: the harness leaves it unsigned), a
//! two-byte length and the message; its ID is set to the request's, so that the fuzzer gets
//! past the ID check.
#![no_main]

use apidns::config::TsigKey;
use apidns::dns::tsig::{self, FUDGE};
use apidns::transfer::incoming::FetchError;
use apidns::transfer::incoming::ZoneCopy;
use apidns::transfer::incoming::request::request;
use apidns::transfer::incoming::stream::{Progress, Received, Reception};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, make_tsig_record};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigResponseContext, TSigner};
use libfuzzer_sys::fuzz_target;

const SIGNED: u8 = 1;
const IXFR: u8 = 2;
const LEAVE_UNSIGNED: u8 = 1;
const REQUEST_ID: u16 = 0x5a5a;

fn origin() -> Name {
    Name::from_ascii("k8s.example.com.").expect("the origin")
}

fn key() -> TsigKey {
    TsigKey {
        name: Name::from_ascii("xfr-key.").expect("a key name"),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: b"fuzz-secret-fuzz-secret-fuzz-123".to_vec(),
    }
}

fn signer() -> TSigner {
    let key = key();
    TSigner::new(key.secret, key.algorithm, key.name, FUDGE).expect("the key signs")
}

/// Our copy, at serial 41: two members of `api` and the apex SOA.
fn have() -> ZoneCopy {
    let origin = origin();
    let soa = Record::from_rdata(
        origin.clone(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.k8s.example.com.").expect("a name"),
            Name::from_ascii("hostmaster.k8s.example.com.").expect("a name"),
            41,
            3600,
            600,
            86400,
            5,
        )),
    );
    let api = Name::from_ascii("api.k8s.example.com.").expect("a name");
    let records = [[192, 0, 2, 11], [192, 0, 2, 12]]
        .map(|address| {
            Record::from_rdata(
                api.clone(),
                60,
                RData::A(A::from(std::net::Ipv4Addr::from(address))),
            )
        })
        .to_vec();
    ZoneCopy::new(origin, soa, records).expect("an SOA")
}

/// The messages of `data`: (leave unsigned, bytes), the ID set to the request's.
fn messages(mut data: &[u8]) -> Vec<(bool, Vec<u8>)> {
    let mut messages = Vec::new();
    while let [flags, high, low, rest @ ..] = data {
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        let mut message = rest[..length].to_vec();
        if let Some(id) = message.get_mut(..2) {
            id.copy_from_slice(&REQUEST_ID.to_be_bytes());
        }
        messages.push((flags & LEAVE_UNSIGNED != 0, message));
        data = &rest[length..];
    }
    messages
}

/// `message` re-encoded without a signature and signed as the next of a chain at `previous_mac`
/// (the request's MAC for the first), with the unsigned messages `between` (RFC 8945 section
/// 5.3.1); `None` when it does not parse or encode.
fn sign(message: &[u8], previous_mac: &[u8], between: &[u8], first: bool) -> Option<Vec<u8>> {
    let mut parsed = Message::from_vec(message).ok()?;
    parsed.signature = None;
    let mut bytes = parsed.to_vec().ok()?;
    let time = tsig::now();
    let signer = signer();
    let record = if first {
        TSigResponseContext::new(REQUEST_ID, time, signer, previous_mac.to_vec(), None)
            .sign(&bytes)
            .ok()?
    } else {
        let mut tbs = Vec::new();
        tbs.extend_from_slice(&u16::try_from(previous_mac.len()).ok()?.to_be_bytes());
        tbs.extend_from_slice(previous_mac);
        tbs.extend_from_slice(between);
        tbs.extend_from_slice(&bytes);
        tbs.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
        tbs.extend_from_slice(&(time as u32).to_be_bytes());
        tbs.extend_from_slice(&FUDGE.to_be_bytes());
        let mac = signer.sign(&tbs).ok()?;
        let data = TSIG::new(
            signer.algorithm().clone(),
            time,
            FUDGE,
            mac,
            REQUEST_ID,
            None,
            Vec::new(),
        );
        Box::new(make_tsig_record(signer.signer_name().clone(), data))
    };
    tsig::append(&mut bytes, &record)?;
    Some(bytes)
}

/// What every copy that comes out must be.
fn check_copy(copy: &ZoneCopy) {
    let origin = origin();
    assert_eq!(copy.origin, origin);
    assert!(matches!(copy.soa.data, RData::SOA(_)), "{copy:?}");
    assert_eq!(copy.soa.name, origin);
    for record in &copy.records {
        assert!(origin.zone_of(&record.name), "{record:?} outside the zone");
        assert_ne!(record.record_type(), RecordType::SOA, "{record:?}");
    }
    for pair in copy.records.windows(2) {
        assert!(pair[0] <= pair[1], "canonical order");
        assert!(pair[0] != pair[1], "no duplicates");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let signed = flags & SIGNED != 0;
    let have = (flags & IXFR != 0).then(have);
    let qtype = if have.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let key = key();
    let Ok(ask) = request(
        &origin(),
        qtype,
        have.as_ref(),
        signed.then_some(&key),
        REQUEST_ID,
        tsig::now(),
    ) else {
        panic!("our own request encodes");
    };
    let request_mac = Message::from_vec(&ask.bytes)
        .ok()
        .and_then(|message| message.signature().map(|record| record.data.mac.clone()))
        .unwrap_or_default();
    let mut reception = Reception::new(
        origin(),
        qtype,
        ask.id,
        have.as_ref().map(ZoneCopy::serial),
        ask.chain,
    );

    // The harness's own chain: what it signed so far.
    let mut previous_mac = request_mac;
    let mut between = Vec::new();
    let mut signed_first = false;
    let mut all_signed_by_us = signed;
    let mut outcome = Ok(Progress::More);
    for (leave_unsigned, message) in messages(rest) {
        let bytes = if signed && !(leave_unsigned && signed_first) {
            match sign(&message, &previous_mac, &between, !signed_first) {
                Some(bytes) => {
                    previous_mac = Message::from_vec(&bytes)
                        .ok()
                        .and_then(|m| m.signature().map(|record| record.data.mac.clone()))
                        .unwrap_or_default();
                    between.clear();
                    signed_first = true;
                    bytes
                }
                None => {
                    all_signed_by_us = false;
                    message
                }
            }
        } else {
            between.extend_from_slice(&message);
            message
        };
        outcome = reception.receive(&bytes, tsig::now());
        if let Err(FetchError::BadTsig(why)) = &outcome {
            // Only messages the harness could not sign, or an unsigned last run, may fail it.
            assert!(
                !all_signed_by_us || why.contains("last message") || why.contains("99"),
                "a correct chain refused: {why}"
            );
        }
        if outcome
            .as_ref()
            .map_or(true, |progress| *progress == Progress::Done)
        {
            break;
        }
    }
    if !matches!(outcome, Ok(Progress::Done)) {
        return;
    }
    match reception.finish(have.as_ref()) {
        Ok(Received::Full(copy)) => check_copy(&copy),
        Ok(Received::Incremental(copy)) => {
            assert!(have.is_some(), "differences without a copy");
            check_copy(&copy);
        }
        Ok(Received::UpToDate { .. }) => assert!(have.is_some(), "up to date without a copy"),
        Err(_) => {}
    }
});
