//! What the `respond_*` targets share, from the test kit (`testkit/`, built without its servers):
//! a realistic snapshot, and the checks every reply passes (the property tests use the same).

use apidns::dns::{Transport, size_limit};
use hickory_proto::op::Message;
pub use testkit::reply::MAX_UDP_PAYLOAD;
use testkit::reply::check_reply;

/// Answers `query` from the kit's richest snapshot and checks what every reply must be.
pub fn check_respond(query: &[u8], transport: Transport) {
    if let Err(failure) = check_reply(testkit::snapshot::rich(), query, transport, MAX_UDP_PAYLOAD)
    {
        panic!("{failure}");
    }
}

/// The UDP limit the client of `query` set (its EDNS size, within the server's bounds), when the
/// query parses; `None` when it does not (the classic 512 bytes then hold).
// Only respond_udp asks; the module is compiled into every respond_* target.
#[allow(dead_code)]
pub fn udp_limit(query: &[u8]) -> Option<usize> {
    let message = Message::from_vec(query).ok()?;
    let edns = message.edns.map(|edns| edns.max_payload());
    Some(usize::from(size_limit(
        Transport::Udp,
        edns,
        MAX_UDP_PAYLOAD,
    )))
}
