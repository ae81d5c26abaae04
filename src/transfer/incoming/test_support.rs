//! Records, keys and signed answers for the unit tests of this module: the answers are made by
//! the primary side's own signing ([`crate::transfer::outgoing::sign_all`]), so that both
//! directions are tested against each other.

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::copy::ZoneCopy;
use super::error::FetchError;
use super::request::{Request, request};
use super::stream::{Received, Reception};
use crate::config::TsigKey;
use crate::dns::tsig::{self, Signing, Verification};
use crate::transfer::outgoing::sign_all;

pub const ORIGIN: &str = "k8s.example.com.";

pub fn origin() -> Name {
    name(ORIGIN)
}

pub fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a name")
}

pub fn key() -> TsigKey {
    TsigKey {
        name: name("xfr-key."),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: b"secret-secret-secret-secret12345".to_vec(),
    }
}

pub fn soa(serial: u32) -> Record {
    Record::from_rdata(
        origin(),
        60,
        RData::SOA(SOA::new(
            name("ns1.k8s.example.com."),
            name("hostmaster.k8s.example.com."),
            serial,
            3600,
            600,
            86400,
            5,
        )),
    )
}

pub fn a(owner: &str, address: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::A(A::from(std::net::Ipv4Addr::from(address))),
    )
}

pub fn txt(owner: &str, text: &str) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::TXT(TXT::new(vec![text.to_string()])),
    )
}

/// A copy at `serial` holding `records`.
pub fn copy(serial: u32, records: Vec<Record>) -> ZoneCopy {
    ZoneCopy::new(origin(), soa(serial), records).expect("an SOA")
}

/// A request for `qtype` from `have`, signed with [`key`] when `signed`.
pub fn make_request(qtype: RecordType, have: Option<&ZoneCopy>, signed: bool) -> Request {
    let key = key();
    request(
        &origin(),
        qtype,
        have,
        signed.then_some(&key),
        0x1234,
        tsig::now(),
    )
    .expect("a request")
}

/// The primary's answer to `request` carrying `records`, in as many messages as the primary
/// side makes of them, each signed in a chain when the request is signed.
pub fn answer(request: &Request, records: &[Record]) -> Vec<Vec<u8>> {
    let message = Message::from_vec(&request.bytes).expect("the request parses");
    let signing = match message.signature() {
        None => Signing::Unsigned,
        Some(signature) => match tsig::verify(&[key()], &request.bytes, signature, tsig::now()) {
            Verification::Valid { signing, .. } => signing,
            _ => panic!("our own request verifies"),
        },
    };
    sign_all(&message, records, &signing, tsig::now())
}

/// What a [`Reception`] of `messages`, the answer to `request`, makes of them, applied to
/// `have`.
pub fn receive(
    request: Request,
    qtype: RecordType,
    have: Option<&ZoneCopy>,
    messages: &[Vec<u8>],
) -> Result<Received, FetchError> {
    let mut reception = Reception::new(
        origin(),
        qtype,
        request.id,
        have.map(ZoneCopy::serial),
        request.chain,
    );
    for message in messages {
        reception.receive(message, tsig::now())?;
    }
    reception.finish(have)
}

/// `count` TXT records of about 100 bytes each: enough of them span several messages.
pub fn many_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|index| txt(&format!("r{index}.{ORIGIN}"), &"x".repeat(80)))
        .collect()
}
