//! What every reply of the query path must be, whatever the query: the one checker the property
//! tests and the fuzz targets share.

use apidns::dns::{Transport, respond};
use apidns::zone::Snapshot;
use hickory_proto::op::{Message, MessageType};

/// The largest UDP answer the server is configured for, as in the default configuration.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Answers `query` from `snapshot` with the server's `max_udp_payload` set to `max_udp`, and
/// checks the reply: none only for fragments of a header and for responses; otherwise a
/// parsable response with the query's ID and QR set, RA clear, and over UDP no larger than the
/// client accepts (512 without EDNS, the advertised size within [512, `max_udp`] with it).
pub fn check_reply(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp: u16,
) -> Result<(), String> {
    let Some(reply) = respond(snapshot, query, transport, max_udp) else {
        return ensure(query.len() < 12 || query[2] & 0x80 != 0, || {
            "a query with a whole header got no reply".to_string()
        });
    };
    let bytes = &reply.bytes;
    ensure(bytes.len() >= 12, || "a reply holds a header".to_string())?;
    ensure(query.len() >= 12 && query[2] & 0x80 == 0, || {
        "replied to a response".to_string()
    })?;
    ensure(bytes[..2] == query[..2], || {
        format!("the reply's ID {:02x?} is not the query's", &bytes[..2])
    })?;
    ensure(bytes[2] & 0x80 != 0, || {
        "the reply has QR clear".to_string()
    })?;
    ensure(bytes.len() <= usize::from(u16::MAX), || {
        format!("{} bytes", bytes.len())
    })?;
    let parsed = Message::from_vec(bytes)
        .map_err(|error| format!("unparsable reply {bytes:02x?}: {error}"))?;
    ensure(
        parsed.metadata.message_type == MessageType::Response,
        || "the reply is not a response".to_string(),
    )?;
    ensure(!parsed.metadata.recursion_available, || {
        "RA is never set".to_string()
    })?;
    if transport == Transport::Udp {
        let server_limit = max_udp.max(512);
        let limit = match Message::from_vec(query) {
            Ok(asked) => match asked.edns {
                Some(edns) => edns.max_payload().clamp(512, server_limit),
                None => 512,
            },
            // A reply without EDNS is for a client that may not have any.
            Err(_) if parsed.edns.is_none() => 512,
            // The query did not parse as a whole: only the server's own limit is known.
            Err(_) => server_limit,
        };
        ensure(bytes.len() <= usize::from(limit), || {
            format!("{} bytes > {limit}", bytes.len())
        })?;
    }
    Ok(())
}

fn ensure(holds: bool, failure: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(failure()) }
}
