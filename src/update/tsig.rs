//! The listener's half of an UPDATE: the checks that need no state (the header, the zone count,
//! the TSIG signature, RFC 8945) and the signed answer, kept within the client's size limit.
//! Nothing here waits: a verified update is handed to the writer by [`super::UpdateDoor`].

use hickory_proto::op::{Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable, BinEncoder};

use crate::config::TsigKey;
use crate::dns::tsig::{Signing, Verification, now, verify};

/// An encoded answer to an UPDATE, and its response code for metrics and logs.
#[derive(Debug, Clone)]
pub struct UpdateReply {
    pub bytes: Vec<u8>,
    pub rcode: ResponseCode,
}

/// What the listener's checks decided.
pub enum Checked {
    /// The answer is known without the writer: FORMERR, REFUSED, NOTAUTH, SERVFAIL.
    Answered(UpdateReply),
    /// A correctly signed update, for the writer to decide (boxed: it holds two messages).
    Verified(Box<Verified>),
}

/// An update whose signature checked out, and the answer it is waiting for.
pub struct Verified {
    pub message: Message,
    /// The key that signed it.
    pub key: TsigKey,
    pub answer: PendingAnswer,
}

/// The answer to a verified update, to be signed once the writer has decided.
pub struct PendingAnswer(Response);

impl PendingAnswer {
    /// The writer's verdict as the signed answer, within `limit` bytes.
    pub fn finish(self, code: ResponseCode, limit: u16) -> UpdateReply {
        self.0.finish(code, limit)
    }
}

/// The answer being built: the request's ID and zone section, and how to sign it.
struct Response {
    message: Message,
    time: u64,
    signing: Signing,
}

impl Response {
    /// The answer with `code`, signed as the request calls for, in at most `limit` bytes. The
    /// zone section is echoed when it fits (RFC 2136 section 3.8); when it does not, it is left
    /// out, and when even the signature does not fit, the answer is the header alone.
    fn finish(mut self, code: ResponseCode, limit: u16) -> UpdateReply {
        self.message.metadata.response_code = code;
        if let Some(bytes) = self
            .encode()
            .filter(|bytes| bytes.len() <= usize::from(limit))
        {
            return UpdateReply { bytes, rcode: code };
        }
        self.message.queries.clear();
        if let Some(bytes) = self
            .encode()
            .filter(|bytes| bytes.len() <= usize::from(limit))
        {
            return UpdateReply { bytes, rcode: code };
        }
        UpdateReply {
            bytes: header_only(self.message.id, code),
            rcode: code,
        }
    }

    /// The message, signed when the request calls for it; `None` when it cannot be encoded.
    fn encode(&self) -> Option<Vec<u8>> {
        let mut message = self.message.clone();
        let bytes = message.to_vec().ok()?;
        if !self.signing.is_signed() {
            return Some(bytes);
        }
        match self.signing.sign(self.message.id, self.time, &bytes) {
            Some(signature) => {
                message.set_signature(signature);
                message.to_vec().ok()
            }
            // An answer that cannot be signed still carries its response code.
            None => Some(bytes),
        }
    }
}

/// Checks an UPDATE message (`query`, whose header says opcode UPDATE) against `keys`. Every
/// answer it gives, and every answer a [`Verified`] gives, is at most `limit` bytes.
pub fn check(keys: &[TsigKey], query: &[u8], limit: u16) -> Checked {
    let id = query
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    let form_error = || {
        Checked::Answered(UpdateReply {
            bytes: header_only(id, ResponseCode::FormErr),
            rcode: ResponseCode::FormErr,
        })
    };
    // RFC 2136 section 3.1.1: exactly one zone. Checked on the header, before the message is
    // read, so that a header claiming many zones costs nothing and echoes nothing.
    let Ok(header) = Header::from_bytes(query) else {
        return form_error();
    };
    if header.counts.queries != 1 {
        return form_error();
    }
    let Ok(request) = Message::from_vec(query) else {
        return form_error();
    };
    let mut message = Message::new(request.id, MessageType::Response, OpCode::Update);
    message.queries = request.queries.clone();
    let time = now();
    let mut response = Response {
        message,
        time,
        signing: Signing::Unsigned,
    };
    let Some(signature) = request.signature() else {
        // RFC 2136 section 3.3: an unauthenticated update is refused.
        return Checked::Answered(response.finish(ResponseCode::Refused, limit));
    };
    let key = match verify(keys, query, signature, time) {
        Verification::Valid { key, signing } => {
            response.signing = signing;
            key
        }
        Verification::Rejected(signing) => {
            response.signing = signing;
            return Checked::Answered(response.finish(ResponseCode::NotAuth, limit));
        }
        Verification::Unusable => {
            return Checked::Answered(response.finish(ResponseCode::ServFail, limit));
        }
    };
    Checked::Verified(Box::new(Verified {
        message: request,
        key,
        answer: PendingAnswer(response),
    }))
}

/// An UPDATE answer of the header alone, no sections: 12 bytes, within any limit.
fn header_only(id: u16, code: ResponseCode) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Response, OpCode::Update);
    message.metadata.response_code = code;
    let header = Header {
        metadata: message.metadata,
        counts: Default::default(),
    };
    let mut buffer = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut buffer);
    // A 12-byte header always encodes into an unbounded buffer.
    let _ = header.emit(&mut encoder);
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An UPDATE header claiming `zones` zones, with that many zone entries (`.` SOA IN).
    fn update_with_zones(zones: u16) -> Vec<u8> {
        let mut bytes = vec![0x12, 0x34, 5 << 3, 0];
        bytes.extend_from_slice(&zones.to_be_bytes());
        bytes.extend_from_slice(&[0; 6]);
        for _ in 0..zones {
            bytes.extend_from_slice(&[0, 0, 6, 0, 1]);
        }
        bytes
    }

    fn answered(checked: Checked) -> UpdateReply {
        match checked {
            Checked::Answered(reply) => reply,
            Checked::Verified(_) => panic!("an unsigned update was verified"),
        }
    }

    #[test]
    fn a_zone_count_other_than_one_is_a_format_error_with_nothing_echoed() {
        for zones in [0, 2, 18] {
            let reply = answered(check(&[], &update_with_zones(zones), 512));
            assert_eq!(reply.rcode, ResponseCode::FormErr, "{zones} zones");
            assert_eq!(reply.bytes.len(), 12, "{zones} zones");
            assert_eq!(reply.bytes[..2], [0x12, 0x34]);
        }
        let reply = answered(check(&[], &update_with_zones(1), 512));
        assert_eq!(reply.rcode, ResponseCode::Refused);
    }

    #[test]
    fn an_echo_that_does_not_fit_is_left_out() {
        let reply = answered(check(&[], &update_with_zones(1), 512));
        assert_eq!(reply.bytes.len(), 12 + 5);
        let reply = answered(check(&[], &update_with_zones(1), 16));
        assert_eq!(reply.bytes.len(), 12);
    }
}
