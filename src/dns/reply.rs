//! What both answering paths (the general path in `message` and the fast path in `fast`) share:
//! the transport, the size limit it sets, and the summary of an answer. Kept apart so that the
//! two paths depend on this file and not on each other.

use std::borrow::Cow;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// The smallest UDP size every DNS client accepts (RFC 1035).
pub const CLASSIC_UDP_SIZE: u16 = 512;

/// The transport a query came over: it decides how large the answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// An encoded response and what it was, for metrics and query logs.
#[derive(Debug, Clone)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub rcode: ResponseCode,
    /// The question's type, when the query had exactly one readable question.
    pub qtype: Option<RecordType>,
    /// The served zone the question fell in.
    pub zone: Option<Arc<str>>,
    /// The query returned a valid server cookie (RFC 7873): its source address is proven.
    pub address_proven: bool,
}

impl Reply {
    pub(super) fn bare(bytes: Vec<u8>, rcode: ResponseCode) -> Self {
        Self {
            bytes,
            rcode,
            qtype: None,
            zone: None,
            address_proven: false,
        }
    }
}

/// What an answer was, when its bytes went into the caller's buffer (see [`respond_into`]).
/// The fast path borrows the zone's name from the snapshot; the general path owns a copy.
#[derive(Debug, Clone)]
pub struct Answered<'s> {
    pub rcode: ResponseCode,
    /// The question's type, when the query had exactly one readable question.
    pub qtype: Option<RecordType>,
    /// The served zone the question fell in.
    pub zone: Option<Cow<'s, Arc<str>>>,
    /// The query returned a valid server cookie (RFC 7873): its source address is proven.
    pub address_proven: bool,
}

impl Answered<'_> {
    /// The owned form, with `bytes` as the answer.
    pub fn into_reply(self, bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            rcode: self.rcode,
            qtype: self.qtype,
            zone: self.zone.map(Cow::into_owned),
            address_proven: self.address_proven,
        }
    }
}

/// The largest answer the client accepts: 512 bytes over UDP without EDNS, the client's EDNS
/// size within [512, `max_udp_payload`] with it, and a whole message over TCP.
pub fn size_limit(
    transport: Transport,
    client_edns_size: Option<u16>,
    max_udp_payload: u16,
) -> u16 {
    match (transport, client_edns_size) {
        (Transport::Tcp, _) => u16::MAX,
        (Transport::Udp, None) => CLASSIC_UDP_SIZE,
        (Transport::Udp, Some(size)) => {
            size.clamp(CLASSIC_UDP_SIZE, max_udp_payload.max(CLASSIC_UDP_SIZE))
        }
    }
}
