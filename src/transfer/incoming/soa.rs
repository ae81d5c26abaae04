//! The answer to the SOA query a refresh starts with (RFC 1035 section 4.3.5, RFC 1996): the
//! primary's serial, from an authoritative, correctly signed answer about our zone.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::error::FetchError;
use super::verify::Chain;

/// What the SOA answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaAnswer {
    Serial(u32),
    /// TC set (over UDP): ask again over TCP.
    Truncated,
}

/// Reads `bytes`, the answer to the SOA query `id` for `origin`, verified by `chain` when the
/// query was signed, at `now` (seconds since the epoch).
pub fn soa_answer(
    bytes: &[u8],
    id: u16,
    origin: &Name,
    chain: Option<&mut Chain>,
    now: u64,
) -> Result<SoaAnswer, FetchError> {
    let message = Message::from_vec(bytes)
        .map_err(|error| FetchError::Malformed(format!("the answer does not parse: {error}")))?;
    if message.metadata.id != id
        || message.metadata.message_type != MessageType::Response
        || message.metadata.op_code != OpCode::Query
    {
        return Err(FetchError::Malformed(
            "not the response to our query".to_string(),
        ));
    }
    if let Some(chain) = chain {
        chain.verify(bytes, &message, now)?;
        chain.finish()?;
    }
    if message.metadata.response_code != ResponseCode::NoError {
        return Err(FetchError::Refused(message.metadata.response_code));
    }
    if message.metadata.truncation {
        return Ok(SoaAnswer::Truncated);
    }
    match message.queries.as_slice() {
        [question] if question.name() == origin && question.query_type() == RecordType::SOA => {}
        [question] => return Err(FetchError::WrongZone(question.name().clone())),
        _ => {
            return Err(FetchError::Malformed(
                "the answer does not repeat our question".to_string(),
            ));
        }
    }
    if !message.metadata.authoritative {
        return Err(FetchError::NotAuthoritative);
    }
    message
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) if &record.name == origin => Some(SoaAnswer::Serial(soa.serial)),
            _ => None,
        })
        .ok_or_else(|| FetchError::Malformed("the answer holds no SOA of the zone".to_string()))
}
