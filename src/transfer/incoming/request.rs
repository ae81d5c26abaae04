//! The requests a secondary sends its primary: AXFR, IXFR carrying our SOA (RFC 1995 section
//! 3), and the SOA query a refresh starts with; each signed when a key is given, with the
//! [`Chain`] that will verify the answer.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType, TSigner};

use super::copy::ZoneCopy;
use super::error::FetchError;
use super::verify::Chain;
use crate::config::TsigKey;
use crate::dns::tsig::FUDGE;

/// A request, encoded (not yet framed for TCP), and the chain its answer is verified with.
pub struct Request {
    pub id: u16,
    pub bytes: Vec<u8>,
    pub chain: Option<Chain>,
}

/// A request for `qtype` of `origin` with ID `id`, signed with `key` at `time` when given;
/// an IXFR carries `have`'s SOA in its authority section.
pub fn request(
    origin: &Name,
    qtype: RecordType,
    have: Option<&ZoneCopy>,
    key: Option<&TsigKey>,
    id: u16,
    time: u64,
) -> Result<Request, FetchError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.queries = vec![Query::query(origin.clone(), qtype)];
    if let Some(have) = have.filter(|_| qtype == RecordType::IXFR) {
        message.authorities = vec![have.soa.clone()];
    }
    let mut chain = None;
    if let Some(key) = key {
        let signer = TSigner::new(
            key.secret.clone(),
            key.algorithm.clone(),
            key.name.clone(),
            FUDGE,
        )
        .map_err(|error| FetchError::BadTsig(format!("the key cannot sign: {error}")))?;
        let (signature, _) = signer.sign_message(&message, time).map_err(|error| {
            FetchError::BadTsig(format!("the request cannot be signed: {error}"))
        })?;
        chain = Some(Chain::new(signer, signature.data.mac.clone()));
        message.set_signature(signature);
    }
    let bytes = message.to_vec().map_err(|error| {
        FetchError::Malformed(format!("the request cannot be encoded: {error}"))
    })?;
    Ok(Request { id, bytes, chain })
}
