//! The answer to an AXFR (RFC 5936) or IXFR (RFC 1995) request over TCP: the zone's SOA, its
//! configured records ([`super::contents`]) and the SOA again, in as many messages as it takes,
//! each signed with the requester's TSIG key (RFC 8945 section 5.3.1).
//!
//! IXFR is answered with the difference from the requester's serial to the current one when the
//! [`History`] holds both, with the SOA alone when the requester already has the current serial,
//! and otherwise with the whole zone in AXFR form, as RFC 1995 section 4 allows.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::make_tsig_record;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tracing::info;

use super::contents::zone_records;
use super::history::History;
use crate::config::TsigKey;
use crate::dns::tsig::{self, Signing, Verification};
use crate::zone::{Snapshot, Zone};

/// Bytes of records (as encoded without name compression) put in one message. A TCP message
/// holds at most 65,535 bytes; this leaves room for the question, the TSIG record and any
/// record that starts just under the budget (a record holds at most about 65,000 bytes of data,
/// but the zone's records are addresses, SRV and short static data).
const RECORD_BUDGET: usize = 32 * 1024;

/// The answer to one transfer request.
#[derive(Debug)]
pub struct Transfer {
    /// The messages to send in order, each encoded and signed (not yet framed for TCP).
    pub messages: Vec<Vec<u8>>,
    pub rcode: ResponseCode,
    /// AXFR or IXFR, as asked; `None` when the question could not be read.
    pub qtype: Option<RecordType>,
    /// The zone transferred or refused, for metrics.
    pub zone: Option<Arc<str>>,
    /// The TSIG key the request was signed with (as it named it, known or not); `None` when it
    /// was not signed. For the query log.
    pub key: Option<Name>,
}

/// Answers the transfer request `request` (a QUERY for AXFR or IXFR) from `peer`, with the
/// zones of `snapshot`, the versions in `history` and the server's TSIG `keys`.
pub fn answer(
    snapshot: &Snapshot,
    history: &History,
    keys: &[TsigKey],
    request: &[u8],
    peer: SocketAddr,
) -> Transfer {
    let id = request
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    let Ok(message) = Message::from_vec(request) else {
        return refusal(
            &Message::new(id, MessageType::Query, OpCode::Query),
            ResponseCode::FormErr,
            &Signing::Unsigned,
            None,
        );
    };
    let qtype = match message.queries.as_slice() {
        [question] if question.query_class() == DNSClass::IN => question.query_type(),
        _ => return refusal(&message, ResponseCode::FormErr, &Signing::Unsigned, None),
    };
    let time = tsig::now();
    let (key, signing) = match message.signature() {
        None => {
            info!(%peer, %qtype, "zone transfer refused: the request is not signed");
            return refusal(
                &message,
                ResponseCode::Refused,
                &Signing::Unsigned,
                Some(qtype),
            );
        }
        Some(signature) => match tsig::verify(keys, request, signature, time) {
            Verification::Valid { key, signing } => (key, signing),
            Verification::Rejected(signing) => {
                info!(%peer, %qtype, key = %signature.name, "zone transfer refused: bad TSIG signature, key or time");
                return refusal(&message, ResponseCode::NotAuth, &signing, Some(qtype));
            }
            Verification::Unusable => {
                return refusal(
                    &message,
                    ResponseCode::ServFail,
                    &Signing::Unsigned,
                    Some(qtype),
                );
            }
        },
    };
    let Some(zone) = zone_at(snapshot, &message) else {
        info!(%peer, %qtype, key = %key.name, "zone transfer refused: not a zone served here");
        return refusal(&message, ResponseCode::Refused, &signing, Some(qtype));
    };
    let allowed = zone
        .config
        .transfer
        .as_ref()
        .is_some_and(|policy| policy.keys.contains(&key.name));
    if !allowed {
        info!(zone = %zone.label, %peer, %qtype, key = %key.name, "zone transfer refused: the zone is not transferred to this key");
        let mut refused = refusal(&message, ResponseCode::Refused, &signing, Some(qtype));
        refused.zone = Some(zone.label.clone());
        return refused;
    }
    let records = records_to_send(zone, history, &message, qtype);
    let messages = sign_all(&message, &records, &signing, time);
    info!(zone = %zone.label, %peer, %qtype, key = %key.name, serial = zone.config.soa.serial, records = records.len(), messages = messages.len(), "zone transferred");
    Transfer {
        messages,
        rcode: ResponseCode::NoError,
        qtype: Some(qtype),
        zone: Some(zone.label.clone()),
        key: Some(key.name.clone()),
    }
}

/// The served zone whose apex the question names.
fn zone_at<'a>(snapshot: &'a Snapshot, message: &Message) -> Option<&'a Zone> {
    let name = LowerName::new(message.queries.first()?.name());
    snapshot.find_zone(&name).filter(|zone| zone.origin == name)
}

/// SOA, the zone, SOA; or, for an IXFR (RFC 1995 section 4): the SOA alone to a client that
/// already has this serial (or a newer one), or the difference from the client's version when
/// the history holds it (current SOA, old SOA, deleted records, current SOA, added records,
/// current SOA).
fn records_to_send(
    zone: &Zone,
    history: &History,
    message: &Message,
    qtype: RecordType,
) -> Vec<Record> {
    let serial = zone.config.soa.serial;
    if qtype == RecordType::IXFR {
        let client_serial = message
            .authorities
            .iter()
            .find_map(|record| match &record.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
        if let Some(client) = client_serial {
            if !serial_greater(serial, client) {
                return vec![zone.soa.clone()];
            }
            if let Some(difference) = history.difference(&zone.config.origin, client, serial) {
                let mut records =
                    Vec::with_capacity(difference.deleted.len() + difference.added.len() + 4);
                records.push(zone.soa.clone());
                records.push(difference.from_soa);
                records.extend(difference.deleted);
                records.push(zone.soa.clone());
                records.extend(difference.added);
                records.push(zone.soa.clone());
                return records;
            }
        }
    }
    let mut records = Vec::with_capacity(zone.config.records.len() + 2);
    records.push(zone.soa.clone());
    records.extend(zone_records(&zone.config));
    records.push(zone.soa.clone());
    records
}

/// Serial number arithmetic (RFC 1982): `a` is newer than `b`.
fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

/// `records` split into messages of at most [`RECORD_BUDGET`] bytes of records, the question
/// in the first only (RFC 5936 section 2.2), each signed: the first over the request's MAC, each
/// following one over the MAC of the one before (RFC 8945 section 5.3.1).
pub(crate) fn sign_all(
    request: &Message,
    records: &[Record],
    signing: &Signing,
    time: u64,
) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut previous_mac: Option<Vec<u8>> = None;
    for (index, chunk) in chunks(records).into_iter().enumerate() {
        let mut message = response(request, ResponseCode::NoError);
        if index > 0 {
            message.queries.clear();
        }
        message.answers = chunk.to_vec();
        let Ok(mut bytes) = message.to_vec() else {
            // Records that came out of a checked configuration always encode; stop rather
            // than send a transfer with a hole in it.
            return messages;
        };
        let signature = match (&previous_mac, signing) {
            (Some(previous), Signing::Signed { signer, .. }) => {
                sign_following(signer, previous, &bytes, request.id, time)
            }
            _ => signing.sign(request.id, time, &bytes),
        };
        if let Some(signature) = signature {
            previous_mac = Some(signature.data.mac.clone());
            let _ = tsig::append(&mut bytes, &signature);
        }
        messages.push(bytes);
    }
    messages
}

/// The TSIG record of a message after the first (RFC 8945 section 5.3.1): the MAC covers the
/// previous MAC, the message, and only the timers of the TSIG variables.
fn sign_following(
    signer: &TSigner,
    previous_mac: &[u8],
    message: &[u8],
    id: u16,
    time: u64,
) -> Option<Box<Record<TSIG>>> {
    let mut tbs = Vec::with_capacity(2 + previous_mac.len() + message.len() + 8);
    let mut encoder = BinEncoder::new(&mut tbs);
    encoder
        .emit_u16(u16::try_from(previous_mac.len()).ok()?)
        .ok()?;
    encoder.emit_vec(previous_mac).ok()?;
    encoder.emit_vec(message).ok()?;
    encoder.emit_u16((time >> 32) as u16).ok()?;
    encoder.emit_u32(time as u32).ok()?;
    encoder.emit_u16(signer.fudge()).ok()?;
    let mac = signer.sign(&tbs).ok()?;
    let data = TSIG::new(
        signer.algorithm().clone(),
        time,
        signer.fudge(),
        mac,
        id,
        None,
        Vec::new(),
    );
    Some(Box::new(make_tsig_record(
        signer.signer_name().clone(),
        data,
    )))
}

/// `records` in runs of at most [`RECORD_BUDGET`] bytes (at least one record per run).
fn chunks(records: &[Record]) -> Vec<&[Record]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, record) in records.iter().enumerate() {
        let length = record.to_bytes().map_or(RECORD_BUDGET, |bytes| bytes.len());
        if index > start && size + length > RECORD_BUDGET {
            runs.push(&records[start..index]);
            start = index;
            size = 0;
        }
        size += length;
    }
    if start < records.len() {
        runs.push(&records[start..]);
    }
    runs
}

/// The response skeleton: the request's ID and question, AA set.
fn response(request: &Message, code: ResponseCode) -> Message {
    let mut message = Message::new(request.id, MessageType::Response, OpCode::Query);
    message.metadata.authoritative = code == ResponseCode::NoError;
    message.metadata.response_code = code;
    message.queries = request.queries.clone();
    message
}

/// A one-message answer without records, signed as `signing` says.
fn refusal(
    request: &Message,
    code: ResponseCode,
    signing: &Signing,
    qtype: Option<RecordType>,
) -> Transfer {
    let message = response(request, code);
    let mut bytes = message.to_vec().unwrap_or_default();
    if let Some(signature) = signing.sign(request.id, tsig::now(), &bytes) {
        let _ = tsig::append(&mut bytes, &signature);
    }
    Transfer {
        messages: vec![bytes],
        rcode: code,
        qtype,
        zone: None,
        key: request.signature().map(|signature| signature.name.clone()),
    }
}
