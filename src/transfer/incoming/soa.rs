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

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::*;
    use crate::dns::tsig;
    use crate::transfer::incoming::test_support::{make_request, origin, soa};

    /// The answer to an unsigned SOA query `id`, as `edit` leaves it.
    fn answer(id: u16, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Response, OpCode::Query);
        message.metadata.authoritative = true;
        message.queries = vec![Query::query(origin(), RecordType::SOA)];
        message.answers = vec![soa(42)];
        edit(&mut message);
        message.to_vec().expect("encodes")
    }

    fn read(bytes: &[u8]) -> Result<SoaAnswer, FetchError> {
        soa_answer(bytes, 7, &origin(), None, tsig::now())
    }

    #[test]
    fn the_serial_of_an_authoritative_answer() {
        assert_eq!(read(&answer(7, |_| {})).ok(), Some(SoaAnswer::Serial(42)));
        let truncated = answer(7, |m| {
            m.metadata.truncation = true;
            m.answers.clear();
        });
        assert_eq!(read(&truncated).ok(), Some(SoaAnswer::Truncated));
    }

    #[test]
    fn answers_that_tell_no_serial() {
        let not_authoritative = answer(7, |m| m.metadata.authoritative = false);
        let other_zone = answer(7, |m| {
            m.queries = vec![Query::query(
                Name::from_ascii("example.org.").expect("a name"),
                RecordType::SOA,
            )]
        });
        let refused = answer(7, |m| m.metadata.response_code = ResponseCode::Refused);
        let no_soa = answer(7, |m| m.answers.clear());
        for (bytes, label) in [
            (answer(8, |_| {}), "malformed"),
            (not_authoritative, "not_authoritative"),
            (other_zone, "wrong_zone"),
            (refused, "refused"),
            (no_soa, "malformed"),
        ] {
            assert_eq!(read(&bytes).err().map(|e| e.label()), Some(label));
        }
    }

    #[test]
    fn a_signed_query_needs_a_signed_answer() {
        let request = make_request(RecordType::SOA, None, true);
        let mut chain = request.chain.expect("signed");
        let unsigned = answer(request.id, |_| {});
        assert!(matches!(
            soa_answer(
                &unsigned,
                request.id,
                &origin(),
                Some(&mut chain),
                tsig::now()
            ),
            Err(FetchError::BadTsig(_))
        ));
    }
}
